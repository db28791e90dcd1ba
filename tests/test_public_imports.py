"""Tests, examples, benchmarks and docs import a public name from where it is public."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import flask_cf_access

ROOT = Path(__file__).parents[1]
PACKAGE_DIR = Path(flask_cf_access.__file__).parent
#: Where code that uses the package lives (the package itself may use its internals).
USERS = ("tests", "examples", "benchmarks", "docs")
#: A code line in a docs page importing from the package.
DOCS_IMPORT = re.compile(r"^\s*(?:>>> |\.\.\. )?(from flask_cf_access[\w.]* import .*)$")


def public_modules() -> list[str]:
    """The package's modules whose dotted names have no private part, by dotted name."""
    names = []
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return sorted(names)


def public_homes() -> dict[str, str]:
    """Every name a public module lists in ``__all__``, with that module (the shortest wins)."""
    homes: dict[str, str] = {}
    for module_name in sorted(public_modules(), key=len, reverse=True):
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            homes[name] = module_name
    return homes


def is_private(module: str) -> bool:
    """Whether ``module`` is one of the package's private modules."""
    parts = module.split(".")
    return parts[0] == "flask_cf_access" and any(part.startswith("_") for part in parts[1:])


def import_statements(path: Path) -> Iterator[tuple[int, ast.ImportFrom]]:
    """Every ``from … import …`` of ``path`` (for a docs page, of its code lines), with its line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                yield node.lineno, node
        return
    for number, line in enumerate(text.splitlines(), start=1):
        match = DOCS_IMPORT.match(line)
        if match and not match.group(1).rstrip().endswith("("):
            (node,) = ast.parse(match.group(1).strip()).body
            assert isinstance(node, ast.ImportFrom)
            yield number, node


def user_files(root: Path = ROOT) -> Iterator[Path]:
    """The Python files and docs pages of :data:`USERS` under ``root`` (a built site left out)."""
    for folder in USERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in {".py", ".rst", ".md"} and "_build" not in path.parts:
                yield path


def private_imports_of_public_names(root: Path, homes: dict[str, str]) -> list[str]:
    """One line per name imported from a private module though public elsewhere."""
    found = []
    for path in user_files(root):
        for line, node in import_statements(path):
            assert node.module is not None
            if not is_private(node.module):
                continue
            for alias in node.names:
                if alias.name in homes:
                    found.append(
                        f"{path.relative_to(root)}:{line}: {alias.name} from {node.module},"
                        f" public in {homes[alias.name]}"
                    )
    return found


def test_public_names_are_imported_publicly() -> None:
    """No test, example, benchmark or docs sample reaches a private module for a public name."""
    assert private_imports_of_public_names(ROOT, public_homes()) == []


def test_a_private_import_of_a_public_name_is_found(tmp_path: Path) -> None:
    """The walk sees a public name taken from a private module, in code and in a docs page."""
    code = tmp_path / "tests" / "test_x.py"
    page = tmp_path / "docs" / "page.rst"
    code.parent.mkdir()
    page.parent.mkdir()
    code.write_text(
        "from flask_cf_access._core.signals import access_denied\n"
        "from flask_cf_access._core.settings import DEFAULTS\n"
        "from flask_cf_access import Reason\n"
        "def f() -> None:\n"
        "    from flask_cf_access.testing._capture import capture_access\n"
    )
    page.write_text(
        ".. code-block:: python\n\n   from flask_cf_access._core.errors import Reason\n"
    )
    found = private_imports_of_public_names(tmp_path, public_homes())
    assert found == [
        "tests/test_x.py:1: access_denied from flask_cf_access._core.signals,"
        " public in flask_cf_access",
        "tests/test_x.py:5: capture_access from flask_cf_access.testing._capture,"
        " public in flask_cf_access.testing",
        "docs/page.rst:3: Reason from flask_cf_access._core.errors, public in flask_cf_access",
    ]


@pytest.mark.parametrize("name", ["access_denied", "Reason", "capture_access", "ServiceToken"])
def test_public_homes_name_the_public_module(name: str) -> None:
    """A public name's home is the shortest public module listing it."""
    home = public_homes()[name]
    assert not is_private(home)
    assert getattr(importlib.import_module(home), name) is not None
