"""``flask cf-access verify`` with roles and the app-wide rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import Result
from flask import Flask

from flask_cf_access import CloudflareAccess, Reason
from flask_cf_access.cli import cli
from flask_cf_access.testing import AccessIssuer, StandInServer, run_inline


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A stand-in team over HTTP."""
    with AccessIssuer().serve() as server:
        yield server


@pytest.fixture
def app(stand_in: StandInServer) -> Flask:
    """An app with a role, an e-mail domain and one known service token."""
    app = Flask("cli_authz")
    app.config.update(
        stand_in.settings(
            CF_ACCESS_ROLES={"admin": ["Admins"]},
            CF_ACCESS_ALLOWED_EMAIL_DOMAINS=["example.com"],
            CF_ACCESS_SERVICE_TOKENS={"ci.access": {"name": "ci-deployer"}},
        )
    )
    CloudflareAccess(app, background=run_inline)
    return app


def run(app: Flask, *args: str) -> Result:
    """``flask cf-access ARGS`` for ``app``."""
    return app.test_cli_runner().invoke(cli, list(args))


def test_verify_checks_roles(app: Flask, stand_in: StandInServer) -> None:
    """--role resolves the roles from the groups: admins pass, others get no_role."""
    ada = stand_in.issuer.user_token("ada@example.com", ["Admins"])
    accepted = run(app, "verify", ada, "--role", "admin")
    assert accepted.exit_code == 0, accepted.output
    assert "Roles: admin; one of admin needed: yes" in accepted.output
    bob = stand_in.issuer.user_token("bob@example.com", ["Staff"])
    refused = run(app, "verify", bob, "--role", "admin")
    assert refused.exit_code == 1
    explained = f"Result: REFUSED (no_role): {Reason.NO_ROLE.description}. The app answers 403."
    assert explained in refused.output


def test_verify_applies_the_app_wide_rules(app: Flask, stand_in: StandInServer) -> None:
    """Without --group or --role, the e-mail rules and known service tokens still apply."""
    outsider = stand_in.issuer.user_token("eve@evil-example.com")
    refused = run(app, "verify", outsider)
    assert refused.exit_code == 1
    assert f"REFUSED (email_not_allowed): {Reason.EMAIL_NOT_ALLOWED.description}." in refused.output
    stranger = run(app, "verify", stand_in.issuer.service_token("stranger.access"))
    assert "REFUSED (unknown_service_token)" in stranger.output
    known = run(app, "verify", stand_in.issuer.service_token("ci.access"))
    assert "Result: ACCEPTED. This app lets the service token ci-deployer through." in known.output
