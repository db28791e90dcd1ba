"""``.. cf-access-reasons::``: the table of every refusal :class:`~flask_cf_access.Reason`.

The rows are the members of :class:`flask_cf_access.Reason`, in the enum's
order, with the status the code's own table gives each
(:attr:`flask_cf_access.Reason.status`) and what it means, kept here in
:data:`REASONS`, keyed by the enum's value.

A :class:`~flask_cf_access.Reason` with no entry here, or an entry for a
reason the enum no longer has, is a build warning (an error under ``-W``), so
a new reason cannot be left out of the errors page. ``tests/test_docs.py``
checks the same.
"""

from __future__ import annotations

from typing import Any

#: Reason value to its meaning, in reStructuredText; the status is the code's own
#: (:attr:`flask_cf_access.Reason.status`).
REASONS: dict[str, str] = {
    "missing_token": "no header and no cookie",
    "token_too_large": "longer than 16 KB, or a header segment over 1 KB: not parsed",
    "malformed_token": (
        "not a compact JWS of three base64url parts, or a part that is not strict UTF-8 "
        "JSON (a BOM, ``NaN``, nesting deeper than 32 levels)"
    ),
    "bad_algorithm": "``alg`` is not ``RS256``",
    "critical_header": "a ``crit`` header parameter",
    "missing_kid": "no ``kid`` to choose the key by",
    "unknown_kid": "the team publishes no such key, even after a refresh",
    "bad_signature": "the signature does not verify",
    "malformed_claims": (
        "the claims (or a groups claim) are not well formed, or a time claim lies outside"
        " the years 1970 to 9999"
    ),
    "missing_claim": "``aud``, ``exp`` or ``iss`` is missing",
    "invalid_issuer": "``iss`` is not your team",
    "invalid_audience": "``aud`` holds none of your AUD tags",
    "expired": "past ``exp``, beyond the leeway",
    "not_yet_valid": "before ``nbf``, beyond the leeway",
    "issued_in_future": "``iat`` ahead of the clock, beyond the leeway",
    "token_too_old": "issued longer ago than :confval:`CF_ACCESS_MAX_TOKEN_AGE`",
    "not_an_app_token": "``type`` is not ``app`` (an ``org`` token, for example)",
    "identity_refused": (
        "``get-identity`` answered a 4xx (but 408 or 429) about this token: its Access"
        " session was revoked or has ended. Remembered for a minute; others' look-ups go on"
    ),
    "service_token_refused": "a service token where ``allow_service_tokens=False``",
    "not_in_group": "in none of the groups asked for",
    "no_account": "the user loader found no account for the identity (:doc:`users`)",
    "not_in_all_groups": 'not in every one of the groups asked for (``match="all"``)',
    "no_role": "none of the roles asked for (:doc:`roles`)",
    "not_all_roles": 'not every one of the roles asked for (``match="all"``)',
    "check_failed": (
        "a :func:`~flask_cf_access.require_check` check did not return ``True``, or "
        "raised (the traceback is logged)"
    ),
    "email_not_allowed": (
        "a user outside :confval:`CF_ACCESS_ALLOWED_EMAIL_DOMAINS` and "
        ":confval:`CF_ACCESS_ALLOWED_EMAILS`"
    ),
    "malformed_email": (
        "e-mail rules are set and the user's e-mail is not a well-formed address"
        " (:ref:`email-rules`)"
    ),
    "unknown_service_token": "a service token not in :confval:`CF_ACCESS_SERVICE_TOKENS`",
    "service_token_required": "a user on a :func:`~flask_cf_access.require_service_token` view",
    "service_token_not_admitted": "a service token not among the view's client ids",
    "wrong_application": (
        "a token of another of :confval:`CF_ACCESS_APPLICATIONS` than the one covering"
        " the path, or a path none covers (:doc:`applications`)"
    ),
    "mfa_required": "the user did not sign in with more than one factor (:doc:`context-rules`)",
    "amr_not_allowed": "signed in with none of the ``amr`` methods asked for",
    "idp_not_allowed": "signed in through none of the identity providers asked for",
    "posture_failed": "a device posture rule asked for has no result, or did not succeed",
    "warp_required": "not through the WARP client (``is_warp``)",
    "gateway_required": "WARP not enrolled in the team's Gateway (``is_gateway``)",
    "country_not_allowed": "authenticated from none of the countries asked for",
    "login_too_old": "signed in longer ago than ``max_login_age`` allows",
    "client_certificate_required": "Access saw no valid client certificate (``mtls_auth``)",
    "keys_unavailable": "no key set has been had from Cloudflare yet",
    "identity_unavailable": (
        "``get-identity`` failed, answered nonsense, or answered about someone other than"
        " the token's user"
    ),
    "malformed_profile": (
        "a profile field of the ``get-identity`` answer has the wrong shape, on a view"
        " with a rule on the profile (:doc:`context-rules`)"
    ),
    "ambiguous_path": (
        "the middleware cannot tell which path the application would read (:doc:`middleware`)"
    ),
    "cross_site_request": (
        "an unsafe method carrying the Access cookie from another origin (:doc:`browser`)"
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
    table: list[tuple[str, int, str]] = [
        (reason.value, reason.status, REASONS[reason.value])
        for reason in Reason
        if reason.value in REASONS
    ]
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
