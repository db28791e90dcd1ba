"""The route audit inside a user's own test suite."""

from __future__ import annotations

from flask import Flask

from .._routes import RouteAudit, audit_routes


def assert_routes_protected(app: Flask) -> list[RouteAudit]:
    """Fail unless every endpoint of ``app`` is protected or explicitly public.

    The check ``flask cf-access routes --strict`` makes, for a test::

        def test_every_route_is_protected(app):
            assert_routes_protected(app)

    :returns: the audit of every URL rule, for further assertions.
    :raises AssertionError: naming each unprotected endpoint, each whose
        requirement was declared but not applied (a decorator above ``@app.route``),
        and, with ``CF_ACCESS_APPLICATIONS``, each protected one under no
        application or under another than its decorator or guard names.
    """
    audits = audit_routes(app)
    problems = [audit for audit in audits if audit.is_problem]
    if problems:
        lines = [
            f"  {audit.rule} ({audit.endpoint}): " + (audit.application_problem or audit.requires)
            for audit in problems
        ]
        raise AssertionError(
            "Endpoints neither protected nor marked public, or under the wrong Access"
            " application:\n" + "\n".join(lines)
        )
    return audits
