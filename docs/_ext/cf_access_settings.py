"""``.. cf-access-settings::``: the table of every ``CF_ACCESS_*`` setting, from the code.

The rows are the keys of :data:`flask_cf_access._core.settings.DEFAULTS`, in its
order, then any key the directive's body describes that is no setting of the
package (such as ``CF_ACCESS_CLIENT_ID``). Each row's meaning is the ``#:``
comment of the :class:`~flask_cf_access.AccessSettings` field of the key's
name (less the prefix, lower case), followed by what the body adds. The body
is a list of keys, each followed by indented text; an indented first line
``default: …`` replaces the default shown::

    .. cf-access-settings::

       CF_ACCESS_CERTS_URL
          default: ``https://<team>/cdn-cgi/access/certs``
          Where the signing keys are fetched.

A key with no field comment and no text in the body, or a body key the code
does not read, is a build warning (an error under ``-W``), so the table cannot
drift from the code. ``tests/test_docs.py`` compares the rows with every
``CF_ACCESS_*`` name the package's code holds.

Each key becomes a ``confval`` target: ``:confval:`CF_ACCESS_LEEWAY``` links
to its row.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any

#: How a setting is named in the code.
SETTING_NAME = re.compile(r"(?<![A-Z0-9_])CF_ACCESS_[A-Z0-9]+(?:_[A-Z0-9]+)*")


@dataclasses.dataclass
class Row:
    """One setting as the table shows it."""

    key: str
    default: str
    meaning: list[str]


def parse_body(lines: Iterable[str]) -> dict[str, tuple[str | None, list[str]]]:
    """The directive body: key to (default override, extra text lines)."""
    described: dict[str, tuple[str | None, list[str]]] = {}
    key: str | None = None
    for line in lines:
        if line and not line[0].isspace():
            key = line.strip()
            if key in described:
                raise ValueError(f"{key} is described twice")
            described[key] = (None, [])
        elif key is not None:
            default, text = described[key]
            stripped = line.strip()
            if not text and default is None and stripped.startswith("default:"):
                described[key] = (stripped.removeprefix("default:").strip(), text)
            else:
                text.append(stripped)
        elif line.strip():
            raise ValueError(f"text before the first key: {line.strip()!r}")
    return described


def field_docs() -> dict[str, list[str]]:
    """The ``#:`` comments of the ``AccessSettings`` fields, by field name."""
    from sphinx.pycode import ModuleAnalyzer

    analyzer = ModuleAnalyzer.for_module("flask_cf_access._core.settings")
    return {
        name: [line for line in lines if line.strip()]
        for (owner, name), lines in analyzer.find_attr_docs().items()
        if owner == "AccessSettings"
    }


def field_for(key: str) -> dataclasses.Field[Any] | None:
    """The ``AccessSettings`` field a key fills: its name less the prefix, lower case."""
    from flask_cf_access import AccessSettings

    fields = {field.name: field for field in dataclasses.fields(AccessSettings)}
    return fields.get(key.removeprefix("CF_ACCESS_").lower())


def rows(body: Sequence[str], docs: dict[str, list[str]]) -> tuple[list[Row], list[str]]:
    """The table rows and the problems found (each a warning)."""
    from flask_cf_access._core.settings import DEFAULTS

    described = parse_body(body)
    problems: list[str] = []
    table: list[Row] = []
    for key in [*DEFAULTS, *(key for key in described if key not in DEFAULTS)]:
        override, extra = described.get(key, (None, []))
        field = field_for(key)
        meaning = [*(docs.get(field.name, []) if field else []), *extra]
        if not meaning:
            problems.append(f"{key} has no field comment in AccessSettings and no text here")
        if override is not None:
            default = override
        elif key not in DEFAULTS:
            default = "``None``"
        elif DEFAULTS[key] is None and field is not None and field.default is dataclasses.MISSING:
            default = "required"
        else:
            default = f"``{DEFAULTS[key]!r}``"
        table.append(Row(key, default, meaning))
    return table, problems


def names_in_code(source: str) -> set[str]:
    """The ``CF_ACCESS_*`` names in a module's string constants, docstrings left out."""
    import ast

    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        for name in SETTING_NAME.findall(node.value)
    }


def setup(app: Any) -> dict[str, Any]:
    """Register the directive."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.domains.std import StandardDomain
    from sphinx.util.docutils import SphinxDirective

    class SettingsTable(SphinxDirective):
        """The generated table of ``CF_ACCESS_*`` settings."""

        has_content = True

        def run(self) -> list[nodes.Node]:
            try:
                table, problems = rows(list(self.content), field_docs())
            except ValueError as exc:
                raise self.error(f"cf-access-settings: {exc}") from exc
            for problem in problems:
                self.state.document.reporter.warning(
                    f"cf-access-settings: {problem}", line=self.lineno
                )
            text = [
                ".. list-table::",
                "   :header-rows: 1",
                "   :widths: 40 60",
                "   :class: cf-access-settings",
                "",
                "   * - Setting and default",
                "     - Meaning",
            ]
            for row in table:
                text += [f"   * - ``{row.key}``", "", f"       {row.default}"]
                text += [f"     - {row.meaning[0]}" if row.meaning else "     -"]
                text += [f"       {line}" for line in row.meaning[1:]]
            container = nodes.container()
            self.state.nested_parse(StringList(text, self.get_source_info()[0]), 0, container)
            std = self.env.get_domain("std")
            assert isinstance(std, StandardDomain)
            for table_node in container.findall(nodes.table):
                body = next(table_node.findall(nodes.tbody))
                for row, row_node in zip(table, body.findall(nodes.row), strict=True):
                    node_id = f"confval-{row.key.lower().replace('_', '-')}"
                    row_node["ids"].append(node_id)
                    std.note_object("confval", row.key, node_id, location=row_node)
            return container.children

    app.add_directive("cf-access-settings", SettingsTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
