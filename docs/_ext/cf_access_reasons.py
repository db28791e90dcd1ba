"""``.. cf-access-reasons::``: the table of every refusal :class:`~flask_cf_access.Reason`.

The rows are the members of :class:`flask_cf_access.Reason`, in the enum's
order, each with what the member itself carries: its status
(:attr:`~flask_cf_access.Reason.status`) and what it means
(:attr:`~flask_cf_access.Reason.description`, the line ``flask cf-access
verify`` prints). Nothing is written here: a new reason is in the table as
soon as it is in the enum.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

#: A ``CF_ACCESS_*`` key named in a description, linked to its setting.
_SETTING = re.compile(r"\b(CF_ACCESS_[A-Z0-9_]*[A-Z0-9])\b")
#: The characters reStructuredText could read as markup in a description's plain
#: text, and the quotes, which would otherwise be made curly (``match="all"``).
_MARKUP = re.compile(r"([\\`*_|'\"])")


def meaning(description: str) -> str:
    """A reason's plain-text description in reStructuredText: the text as it is,
    character for character, with each ``CF_ACCESS_*`` key it names linked to
    that setting."""
    parts = _SETTING.split(description)  # text, key, text, key, ..., text
    return "".join(
        f":confval:`{part}`" if odd else _MARKUP.sub(r"\\\1", part)
        for odd, part in zip(itertools.cycle((False, True)), parts)
    )


def rows() -> list[tuple[str, int, str]]:
    """The table rows (reason, status, meaning in reStructuredText), in the enum's order."""
    from flask_cf_access import Reason

    return [(reason.value, reason.status, meaning(reason.description)) for reason in Reason]


def setup(app: Any) -> dict[str, Any]:
    """Register the directive."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class ReasonsTable(SphinxDirective):
        """The generated table of refusal reasons."""

        def run(self) -> list[nodes.Node]:
            table = rows()
            text = [
                ".. list-table::",
                "   :header-rows: 1",
                "   :widths: 30 10 60",
                "   :class: cf-access-reasons",
                "",
                "   * - reason",
                "     - status",
                "     - meaning",
            ]
            for value, status, meaning in table:
                text += [f"   * - ``{value}``", f"     - {status}", f"     - {meaning}"]
            container = nodes.container()
            self.state.nested_parse(StringList(text, self.get_source_info()[0]), 0, container)
            for table_node in container.findall(nodes.table):
                body = next(table_node.findall(nodes.tbody))
                for (value, _, _), row_node in zip(table, body.findall(nodes.row), strict=True):
                    row_node["ids"].append(f"reason-{value.replace('_', '-')}")
            return container.children

    app.add_directive("cf-access-reasons", ReasonsTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
