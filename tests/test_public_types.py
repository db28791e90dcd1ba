"""Public parameters have public types: every name an annotation of the public API uses
is the standard library's, a dependency's, or public in this package."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import typing
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

import pytest

import flask_cf_access
import flask_cf_access.onward
import flask_cf_access.testing

PUBLIC_MODULES: tuple[ModuleType, ...] = (
    flask_cf_access,
    flask_cf_access.onward,
    flask_cf_access.testing,
)

#: The packages whose own types a public signature may name, besides the
#: standard library's: those a user of this package has installed with it.
DEPENDENCIES = frozenset(
    {"flask", "werkzeug", "requests", "cachelib", "responses", "httpx", "cryptography"}
)

#: Where the standard library's WSGI types live at run time (``_typeshed`` is for type checkers).
TYPESHED = {"_typeshed.wsgi": "wsgiref.types"}


def _absolute(module: ModuleType, node: ast.ImportFrom) -> str:
    """The absolute name of the module ``node`` imports from, in ``module``."""
    if not node.level:
        return node.module or ""
    package = (module.__package__ or "").split(".")
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _checking_only(source: str, name: str) -> Any:
    """What ``name``, imported from ``source`` for type checkers only, stands for at run time."""
    if source in TYPESHED and sys.version_info < (3, 11):
        return Any  # wsgiref.types is new in Python 3.11: standard library types all the same
    return getattr(importlib.import_module(TYPESHED.get(source, source)), name)


def _imports(module: ModuleType) -> tuple[dict[str, str], dict[str, Any]]:
    """Where each name ``module`` imports comes from (``if TYPE_CHECKING:`` blocks
    included), and what the names imported only for type checkers stand for."""
    origins: dict[str, str] = {}
    checking_only: dict[str, Any] = {}
    tree = ast.parse(inspect.getsource(module))
    guarded = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                name = alias.asname or alias.name
                origins[name] = f"{source}.{alias.name}"
                if id(node) in guarded:
                    checking_only[name] = _checking_only(source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                origins[name] = alias.name
                if id(node) in guarded:
                    checking_only[name] = importlib.import_module(name)
    return origins, checking_only


def public_objects() -> dict[int, str]:
    """Every public object, by identity, with its public name."""
    return {
        id(getattr(module, name)): f"{module.__name__}.{name}"
        for module in PUBLIC_MODULES
        for name in module.__all__
    }


#: Every public name, as a namespace.
PUBLIC_NAMES: dict[str, Any] = {
    name: getattr(module, name) for module in PUBLIC_MODULES for name in module.__all__
}

#: Public members whose annotations may name internal types, and why.
EXEMPT = {
    # Deprecated, undocumented, removed in the next release; the checker is internal.
    "flask_cf_access.CloudflareAccessMiddleware.checker",
}


def annotated(obj: object) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Each function of the public API whose annotations count: the public functions,
    and each public class's constructor, methods, class methods and properties."""
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            elif isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member):
                yield f"{obj.__qualname__}.{name}", member
    elif inspect.isfunction(obj):
        yield obj.__qualname__, obj


def signatures() -> Iterator[tuple[str, Callable[..., Any]]]:
    seen: set[int] = set()
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            for where, function in annotated(obj):
                if id(function) not in seen:
                    seen.add(id(function))
                    yield f"{module.__name__}.{where}", function


def _leaves(hint: Any) -> Iterator[Any]:
    """The classes and other leaves a resolved annotation is made of."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is None and not args:
        yield hint
        return
    if origin is not None:
        yield origin
    for arg in args:
        if isinstance(arg, list):  # Callable's parameter list
            for item in arg:
                yield from _leaves(item)
        else:
            yield from _leaves(arg)


def _foreign(module_name: str) -> bool:
    """Whether ``module_name`` is the standard library's or a dependency's."""
    root = module_name.split(".")[0]
    return root in sys.stdlib_module_names or root in DEPENDENCIES or root == "_typeshed"


def _bad_class(leaf: Any, public: dict[int, str]) -> str | None:
    """Why ``leaf`` (a resolved part of an annotation) is not a public type, if it is not."""
    if not isinstance(leaf, type) or id(leaf) in public:
        return None
    if _foreign(leaf.__module__):
        return None
    return f"{leaf.__module__}.{leaf.__qualname__}"


def _names(annotation: str) -> Iterator[str]:
    """The dotted names an annotation, as written, uses."""
    for node in ast.walk(ast.parse(annotation, mode="eval")):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            yield f"{node.value.id}.{node.attr}"


def _bad_name(
    name: str, origins: dict[str, str], namespace: dict[str, Any], public: dict[int, str]
) -> str | None:
    """Why ``name`` (as written in an annotation) does not name a public type, if it does not.

    A name of this package that stands for a type alias (not a class) must
    itself be public: the user then has a name to annotate their own code with.
    """
    head = name.split(".")[0]
    if head in origins and _foreign(origins[head]):
        return None
    if head not in namespace:
        return None if hasattr(builtins, head) else f"{name} (not found)"
    obj = namespace[head]
    for attribute in name.split(".")[1:]:
        obj = getattr(obj, attribute)
    if isinstance(obj, (type, TypeVar, ParamSpec)) or id(obj) in public:
        return None  # classes are judged once resolved; type variables are no API
    return f"{name} (a type alias that is not public)"


CASES = sorted(case for case in signatures() if case[0] not in EXEMPT)


@pytest.mark.parametrize(("where", "function"), CASES, ids=[where for where, _ in CASES])
def test_public_signatures_name_public_types(where: str, function: Callable[..., Any]) -> None:
    """Each annotation resolves (``typing.get_type_hints``), and names only classes of the
    standard library, of a dependency, or public here, and only public type aliases."""
    public = public_objects()
    function = inspect.unwrap(function)
    origins, checking_only = _imports(sys.modules[function.__module__])
    # The public names too: an alias's forward reference ("AccessIdentity") is
    # looked up where the annotation is resolved, not where the alias is.
    namespace = {**PUBLIC_NAMES, **checking_only, **function.__globals__}
    hints = typing.get_type_hints(function, globalns=namespace)
    bad = sorted(
        {
            f"{parameter}: {reason}"
            for parameter, hint in hints.items()
            if not parameter.startswith("_")  # a private keyword, out of the public signature
            for leaf in _leaves(hint)
            if (reason := _bad_class(leaf, public)) is not None
        }
        | {
            f"{parameter}: {reason}"
            for parameter, written in function.__annotations__.items()
            if isinstance(written, str) and not parameter.startswith("_")
            for name in _names(written)
            if (reason := _bad_name(name, origins, namespace, public)) is not None
        }
    )
    assert not bad, f"{where} names types a user cannot import: {bad}"


def test_the_walk_covers_the_public_api() -> None:
    """The walk reaches the constructors and decorators users call most."""
    walked = {where for where, _ in CASES}
    assert {
        "flask_cf_access.CloudflareAccess.__init__",
        "flask_cf_access.CloudflareAccessMiddleware.__init__",
        "flask_cf_access.require_identity",
        "flask_cf_access.Requirement.__init__",
        "flask_cf_access.testing.AccessIssuer.user_token",
    } <= walked
