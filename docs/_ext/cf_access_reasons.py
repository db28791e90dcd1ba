"""``.. cf-access-reasons::``: the table of every refusal :class:`~flask_cf_access.Reason`.

The rows are the members of :class:`flask_cf_access.Reason`, in the enum's
order. The status each reason is answered with and what it means are kept
here, in :data:`REASONS`, keyed by the enum's value: the code decides the
status by which exception class it raises, and has no table of its own.

A :class:`~flask_cf_access.Reason` with no entry here, or an entry for a
reason the enum no longer has, is a build warning (an error under ``-W``), so
a new reason cannot be left out of the errors page. ``tests/test_docs.py``
checks the same, and that the statuses agree with the exception classes.
"""

from __future__ import annotations

from typing import Any

#: Reason value to (HTTP status, meaning in reStructuredText).
REASONS: dict[str, tuple[int, str]] = {
    "missing_token": (401, "no header and no cookie"),
    "token_too_large": (401, "longer than 16 KB, or a header segment over 1 KB: not parsed"),
    "malformed_token": (
        401,
        "not a compact JWS of three base64url parts, or a part that is not strict "
        "UTF-8 JSON (a BOM, ``NaN``, nesting deeper than 32 levels)",
    ),
    "bad_algorithm": (401, "``alg`` is not ``RS256``"),
    "critical_header": (401, "a ``crit`` header parameter"),
    "missing_kid": (401, "no ``kid`` to choose the key by"),
    "unknown_kid": (401, "the team publishes no such key, even after a refresh"),
    "bad_signature": (401, "the signature does not verify"),
    "malformed_claims": (
        401,
        "the claims (or a groups claim) are not well formed, or a time claim lies "
        "outside the years 1970 to 9999",
    ),
    "missing_claim": (401, "``aud``, ``exp`` or ``iss`` is missing"),
    "invalid_issuer": (401, "``iss`` is not your team"),
    "invalid_audience": (401, "``aud`` holds none of your AUD tags"),
    "expired": (401, "past ``exp``, beyond the leeway"),
    "not_yet_valid": (401, "before ``nbf``, beyond the leeway"),
    "issued_in_future": (401, "``iat`` ahead of the clock, beyond the leeway"),
    "token_too_old": (401, "issued longer ago than :confval:`CF_ACCESS_MAX_TOKEN_AGE`"),
    "not_an_app_token": (401, "``type`` is not ``app`` (an ``org`` token, for example)"),
    "service_token_refused": (403, "a service token where ``allow_service_tokens=False``"),
    "not_in_group": (403, "in none of the groups asked for"),
    "no_account": (403, "the user loader found no account for the identity (:doc:`users`)"),
    "not_in_all_groups": (403, 'not in every one of the groups asked for (``match="all"``)'),
    "no_role": (403, "none of the roles asked for (:doc:`roles`)"),
    "not_all_roles": (403, 'not every one of the roles asked for (``match="all"``)'),
    "check_failed": (
        403,
        "a :func:`~flask_cf_access.require_identity` check did not return ``True``, "
        "or raised (the traceback is logged)",
    ),
    "email_not_allowed": (
        403,
        "a user outside :confval:`CF_ACCESS_ALLOWED_EMAIL_DOMAINS` and "
        ":confval:`CF_ACCESS_ALLOWED_EMAILS`",
    ),
    "unknown_service_token": (
        403,
        "a service token not in :confval:`CF_ACCESS_SERVICE_TOKENS`",
    ),
    "service_token_required": (
        403,
        "a user on a :func:`~flask_cf_access.require_service_token` view",
    ),
    "service_token_not_admitted": (403, "a service token not among the view's client ids"),
    "keys_unavailable": (503, "no key set has been had from Cloudflare yet"),
    "identity_unavailable": (
        503,
        "``get-identity`` failed, answered nonsense, or answered about someone "
        "other than the token's user",
    ),
    "ambiguous_path": (
        400,
        "the middleware cannot tell which path the application would read (:doc:`middleware`)",
    ),
    "cross_site_request": (
        403,
        "an unsafe method carrying the Access cookie from another origin (:doc:`browser`)",
    ),
}


def rows() -> tuple[list[tuple[str, int, str]], list[str]]:
    """The table rows (reason, status, meaning) in the enum's order, and the problems found."""
    from flask_cf_access import Reason

    problems = [
        f"Reason.{reason.name} ({reason.value!r}) has no status and meaning in "
        "docs/_ext/cf_access_reasons.py"
        for reason in Reason
        if reason.value not in REASONS
    ]
    known = {reason.value for reason in Reason}
    problems += [
        f"{value!r} is described in docs/_ext/cf_access_reasons.py but is no Reason"
        for value in REASONS
        if value not in known
    ]
    table = [(reason.value, *REASONS[reason.value]) for reason in Reason if reason.value in REASONS]
    return table, problems


def setup(app: Any) -> dict[str, Any]:
    """Register the directive."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class ReasonsTable(SphinxDirective):
        """The generated table of refusal reasons."""

        def run(self) -> list[nodes.Node]:
            table, problems = rows()
            for problem in problems:
                self.state.document.reporter.warning(
                    f"cf-access-reasons: {problem}", line=self.lineno
                )
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
