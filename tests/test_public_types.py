"""Public names have public types: what a public signature takes or gives is importable."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Iterator

import pytest

import flask_cf_access
import flask_cf_access.onward
import flask_cf_access.testing
from flask_cf_access import (
    AccessSettings,
    ApplicationSettings,
    ContextRule,
    Requirement,
    RouteAudit,
    ServiceTokenProfile,
    require,
)
from flask_cf_access.testing import AccessIssuer

MODULES = (flask_cf_access, flask_cf_access.testing, flask_cf_access.onward)


def public_objects() -> dict[int, object]:
    """Every public name of the package, its kit and its onward module, by identity."""
    return {
        id(getattr(module, name)): getattr(module, name)
        for module in MODULES
        for name in module.__all__
    }


def _names_for_annotations() -> dict[str, object]:
    """Every class and alias of the package's modules by name, for annotations that
    name what a module imports only for type checking."""
    names: dict[str, object] = {}
    for name, module in sorted(sys.modules.items()):
        if name.startswith("flask_cf_access"):
            names.update(
                (key, value)
                for key, value in vars(module).items()
                if inspect.isclass(value) or typing.get_origin(value) is not None
            )
    return names


def _hinted(owner: object) -> Iterator[object]:
    """The annotations of ``owner``'s signature (or fields), each resolved if it can be."""
    module = sys.modules.get(getattr(owner, "__module__", ""), None)
    namespace = {**_names_for_annotations(), **vars(module)} if module else {}
    for name, annotation in getattr(owner, "__annotations__", {}).items():
        if name.startswith("_"):
            continue  # a private parameter or field
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 (our own annotations)
            except (NameError, TypeError, AttributeError):
                continue  # another library's name, imported only for type checking
        yield annotation


def annotations_of(value: object) -> Iterator[object]:
    """The annotations a user meets on ``value``: its parameters and result, its
    public fields and properties, its public methods'."""
    if inspect.isclass(value):
        if dataclasses.is_dataclass(value):
            yield from _hinted(value)
        for name, member in vars(value).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(member, property) and member.fget is not None:
                yield from _hinted(member.fget)
            elif isinstance(member, (staticmethod, classmethod)):
                yield from _hinted(member.__func__)
            elif inspect.isfunction(member):
                yield from _hinted(member)
    elif callable(value):
        yield from _hinted(value)


def classes_in(annotation: object) -> Iterator[type]:
    """Every class named in ``annotation`` (``X | None``, ``tuple[X, ...]``…)."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from classes_in(argument)
    origin = typing.get_origin(annotation)
    if isinstance(origin, type):
        yield origin


def test_every_type_a_public_name_takes_or_gives_is_public() -> None:
    """No public signature, field or property names a class of the package that is
    not public itself (in ``__all__`` of the package, its kit or ``onward``)."""
    public = public_objects()
    # Kept one release as a deprecated alias, out of the docs.
    deprecated = {"CloudflareAccessMiddleware uses AccessChecker"}
    found: set[str] = set()
    for value in public.values():
        for annotation in annotations_of(value):
            for cls in classes_in(annotation):
                if cls.__module__.startswith("flask_cf_access") and id(cls) not in public:
                    found.add(f"{getattr(value, '__qualname__', value)} uses {cls.__qualname__}")
    found -= deprecated
    assert sorted(found) == [], "\n".join(sorted(found))


def test_the_types_of_settings_and_requirements_are_exported(issuer: AccessIssuer) -> None:
    """What AccessSettings, Requirement and the route audit hold is importable publicly."""
    settings = AccessSettings.from_mapping(
        issuer.settings(
            CF_ACCESS_SERVICE_TOKENS={"robot.access": {"roles": ["deploy"]}},
            CF_ACCESS_AUDIENCE=None,
            CF_ACCESS_APPLICATIONS={"main": {"audience": issuer.audience}},
            CF_ACCESS_REQUIRE_MFA=True,
        )
    )
    assert settings.service_tokens is not None
    assert isinstance(settings.service_tokens["robot.access"], ServiceTokenProfile)
    assert isinstance(settings.applications[0], ApplicationSettings)
    assert all(isinstance(rule, ContextRule) for rule in settings.context_rules)
    assert isinstance(require(mfa=True), Requirement)
    assert isinstance(require(mfa=True).context[0], ContextRule)
    assert dataclasses.is_dataclass(RouteAudit)


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_no_half_public_names(module: object) -> None:
    """Every name of the package's own that a public module binds without an
    underscore is in its ``__all__``: nothing is public by accident."""
    exported = set(getattr(module, "__all__", ()))
    stray = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name not in exported
        and (
            str(getattr(value, "__module__", "")).startswith("flask_cf_access")
            or type(value) in (str, int, float)
        )
    }
    assert stray == set()
