"""The package's import graph: a straight walk with no cycle, and a core without Flask."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

import flask_cf_access

PACKAGE_DIR = Path(flask_cf_access.__file__).parent
PACKAGE = "flask_cf_access"

#: The layers, bottom up, by the subpackage they live in: a module may import
#: its own layer and those below it, never one above nor one beside it. ``_core``
#: never imports Flask; the middleware stands on it, reaching into the Flask layer
#: only to share a Flask app's checker; onward calls forward a Flask request's token.
LAYERS = {
    f"{PACKAGE}._core": 0,
    f"{PACKAGE}._flask": 1,
    f"{PACKAGE}._wsgi": 2,
    f"{PACKAGE}._onward": 2,
}


def layer_of(module: str) -> str | None:
    """The layer subpackage ``module`` lives in; ``None`` for the top (public) modules."""
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def module_files() -> dict[str, Path]:
    """Every module of the package, testing kit included, by dotted name."""
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(name: str, path: Path, modules: Collection[str]) -> Iterator[str]:
    """Every module ``path`` imports, wherever the import is: module level,
    inside a function, or under ``TYPE_CHECKING``. ``from x import y`` is an
    import of ``x.y`` when that is one of ``modules``, else of ``x``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield submodule if submodule in modules else module


def package_graph() -> dict[str, set[str]]:
    """Each module of the package, to the modules of the package it imports."""
    modules = module_files()
    return {
        name: {target for target in imported_names(name, path, modules) if target in modules}
        - {name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_every_kind_of_import() -> None:
    """The graph counts deferred and TYPE_CHECKING imports, and relative ones at any depth."""
    graph = package_graph()
    assert f"{PACKAGE}._flask.login" in graph[f"{PACKAGE}._flask.extension"]  # inside a method
    assert (
        f"{PACKAGE}._core.identity" in graph[f"{PACKAGE}._core.token_cache"]
    )  # under TYPE_CHECKING
    assert f"{PACKAGE}._core.browser" in graph[f"{PACKAGE}.testing._sign_in"]  # from ..


def test_cycles_are_found() -> None:
    """The cycle finder reports a cycle, and only the modules in it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


#: The imports allowed to point back up the walk, for annotations only:
#: ``AccessIssuer.serve()`` makes a ``StandInServer``, whose ``issuer`` is that
#: ``AccessIssuer``, typed as such for the tests that rotate its keys; the
#: server serves the sign-in page, which mints through that ``AccessIssuer``;
#: and a refusal, reported, carries the identity it refused
#: (``report_refusal``), while reading an identity may itself be refused.
TYPE_ONLY_BACK_EDGES = {
    (f"{PACKAGE}.testing._server", f"{PACKAGE}.testing._stand_in"),
    (f"{PACKAGE}.testing._sign_in", f"{PACKAGE}.testing._stand_in"),
    (f"{PACKAGE}._core.errors", f"{PACKAGE}._core.identity"),
}


def test_no_import_cycle() -> None:
    """No module of the package imports, however indirectly, a module that imports it."""
    graph = package_graph()
    for importer, imported in TYPE_ONLY_BACK_EDGES:
        graph[importer].discard(imported)
    assert cycles(graph) == []


def type_checking_imports(path: Path) -> set[str]:
    """The modules ``path`` imports only inside ``if TYPE_CHECKING:`` blocks, as written."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    names.add("." * inner.level + inner.module)
    return names


def test_the_back_edge_is_for_annotations_only() -> None:
    """Each allowed back edge is imported under TYPE_CHECKING, never at run time."""
    modules = module_files()
    for importer, imported in TYPE_ONLY_BACK_EDGES:
        assert imported in package_graph()[importer]
        relative = "." + imported.rpartition(".")[2]
        assert relative in type_checking_imports(modules[importer])
        runtime_imports = [
            node
            for node in ast.parse(modules[importer].read_text(encoding="utf-8")).body
            if isinstance(node, ast.ImportFrom) and node.module == relative.lstrip(".")
        ]
        assert runtime_imports == []


def test_no_deferred_imports_in_the_flask_layer() -> None:
    """Package modules import each other at the top, except for an optional dependency."""
    deferred = []
    for name, path in module_files().items():
        if name.startswith(f"{PACKAGE}.testing") or name == f"{PACKAGE}.pytest_plugin":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level:
                    deferred.append(f"{name}.{function.name}: {node.module}")
    assert sorted(deferred) == [
        f"{PACKAGE}._flask.extension.init_login_manager: login",
        f"{PACKAGE}.onward.__getattr__: _onward.httpx_auth",  # httpx is an optional extra
    ]


@pytest.mark.slow
def core_modules() -> list[str]:
    """Every module under ``_core/``, found by path."""
    return sorted(name for name in module_files() if layer_of(name) == f"{PACKAGE}._core")


def test_the_core_is_found_by_path() -> None:
    """The walk below sees the core's modules (so an empty list cannot pass it)."""
    assert f"{PACKAGE}._core.verifier" in core_modules()
    assert len(core_modules()) > 10


@pytest.mark.parametrize("module", core_modules())
def test_core_never_imports_flask(module: str) -> None:
    """The module, and every package module it reaches, imports no ``flask``."""
    modules = module_files()
    graph = package_graph()
    reached = {module}
    pending = [module]
    while pending:
        for target in graph[pending.pop()] - reached:
            reached.add(target)
            pending.append(target)
    flask_importers = sorted(
        name
        for name in reached
        if any(
            target == "flask" or target.startswith("flask.")
            for target in imported_names(name, modules[name], modules)
        )
    )
    assert flask_importers == []


def test_no_layer_imports_one_above_it() -> None:
    """A layer imports its own and lower layers only; the public modules and the
    testing kit sit on top of them all."""
    upward = []
    for importer, targets in package_graph().items():
        importer_layer = layer_of(importer)
        if importer_layer is None:
            continue
        for target in targets:
            target_layer = layer_of(target)
            if target_layer is None or (
                target_layer != importer_layer and LAYERS[target_layer] >= LAYERS[importer_layer]
            ):
                upward.append(f"{importer} -> {target}")
    assert upward == []
