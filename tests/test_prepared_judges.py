"""A requirement is judged after the app-wide rules, its parts in a fixed order, and a part
it does not have costs nothing: seen through requests, as an app sees them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import responses
from flask import Flask

from flask_cf_access import Reason, Requirement, require, verify_access_in_request
from flask_cf_access.testing import AccessIssuer

from .conftest import AppFactory
from .support import count_calls, outcome


def guarded(make_app: AppFactory, requirements: Mapping[str, Requirement], **config: Any) -> Flask:
    """An app trusting the stand-in team, ``/<name>`` guarded by each requirement."""
    app = make_app(**config)
    for name, requirement in requirements.items():

        def view(requirement: Requirement = requirement) -> str:
            verify_access_in_request(requirement)
            return "ok"

        app.add_url_rule(f"/{name}", name, view)
    return app


def test_a_requirement_without_parts_asks_for_no_groups(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """Empty groups and roles ask for a token only: get-identity is not asked for the
    groups, which a requirement on roles does ask for, once."""
    app = guarded(
        make_app,
        {"empty": require(groups=[], roles=[]), "role": require(roles=["admin"])},
        CF_ACCESS_ROLES={"admin": ["Admins"]},
    )
    token = issuer.user_token("ada@example.com", ["Staff"])
    assert outcome(app, token, "/empty") == (200, None)
    assert count_calls(mocked_team, issuer.identity_url) == 0
    assert outcome(app, token, "/role") == (403, Reason.NO_ROLE)
    assert count_calls(mocked_team, issuer.identity_url) == 1


def test_refusing_service_tokens_is_a_part(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """``allow_service_tokens=False`` alone refuses a service token and admits a user."""
    app = guarded(make_app, {"people": require(allow_service_tokens=False)})
    assert outcome(app, issuer.service_token(), "/people") == (403, Reason.SERVICE_TOKEN_REFUSED)
    assert outcome(app, issuer.user_token("ada@example.com"), "/people") == (200, None)


def test_app_wide_rules_apply_to_a_token_only_requirement(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """E-mail rules refuse an outsider even where only a token is required."""
    app = guarded(make_app, {"any": require()}, CF_ACCESS_ALLOWED_EMAIL_DOMAINS=["example.org"])
    outsider = issuer.user_token("ada@example.com")
    assert outcome(app, outsider, "/any") == (403, Reason.EMAIL_NOT_ALLOWED)
    assert outcome(app, issuer.user_token("bo@example.org"), "/any") == (200, None)


def test_app_wide_rules_come_first(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """The app-wide refusal wins over the requirement's own, for users and service tokens."""
    app = guarded(
        make_app,
        {
            "machines": require(service_tokens=[]),
            "people": require(allow_service_tokens=False),
        },
        CF_ACCESS_ALLOWED_EMAIL_DOMAINS=["example.org"],
        CF_ACCESS_SERVICE_TOKENS={"known.access": {"name": "known"}},
    )
    user = issuer.user_token("ada@example.com")
    assert outcome(app, user, "/machines") == (403, Reason.EMAIL_NOT_ALLOWED)
    unknown = issuer.service_token("ci.access")
    assert outcome(app, unknown, "/people") == (403, Reason.UNKNOWN_SERVICE_TOKEN)
    known = issuer.service_token("known.access")
    assert outcome(app, known, "/people") == (403, Reason.SERVICE_TOKEN_REFUSED)


def test_parts_are_judged_in_order(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """Service tokens, then groups, then roles, then predicates: the first refusal wins."""
    people = require(groups=["Staff"], roles=["admin"], check=lambda identity: False)
    app = guarded(
        make_app,
        {"everything": people & require(service_tokens=[]), "people": people},
        CF_ACCESS_ROLES={"admin": ["Admins"]},
    )
    ada = issuer.user_token("ada@example.com")
    assert outcome(app, ada, "/everything") == (403, Reason.SERVICE_TOKEN_REQUIRED)
    assert outcome(app, ada, "/people") == (403, Reason.NOT_IN_GROUP)
    staff = issuer.user_token("bo@example.com", ["Staff"])
    assert outcome(app, staff, "/people") == (403, Reason.NO_ROLE)
    admin = issuer.user_token("cy@example.com", ["Staff", "Admins"])
    assert outcome(app, admin, "/people") == (403, Reason.CHECK_FAILED)
