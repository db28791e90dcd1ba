"""Groups (and audiences) given as one string are one, never its letters."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_cf_access import (
    AccessForbidden,
    AccessSettings,
    AccessUnauthorized,
    Reason,
    require,
    verify_access_in_request,
)
from flask_cf_access._core.assembly import build_checker
from flask_cf_access._flask.app_state import access_state
from flask_cf_access.testing import AccessCapture, AccessClient, AccessIssuer, run_inline

from .support import bearer


@pytest.fixture
def guarded(app: Flask) -> Flask:
    """The test app with a route guarded by verify_access_in_request(require(groups=<string>))."""

    @app.get("/eng")
    def eng() -> str:
        verify_access_in_request(require(groups="Eng"))
        return "eng"

    return app


@pytest.mark.parametrize(
    ("groups", "status"),
    [(["Eng"], 200), (["E"], 403), (["n", "g"], 403), (["Engineering"], 403), ([], 403)],
)
def test_a_string_is_one_group(
    guarded: Flask, issuer: AccessIssuer, groups: list[str], status: int
) -> None:
    """require(groups="Eng") admits Eng only, not the groups E, n or g."""
    token = issuer.user_token("ada@example.com", groups)
    assert guarded.test_client().get("/eng", headers=bearer(token)).status_code == status


@pytest.mark.parametrize("groups", [[""], [5], b"Eng", [None], ""])
def test_non_string_groups_raise(app: Flask, groups: Any) -> None:
    """Groups that are not non-empty strings are a programming error: TypeError."""
    with app.test_request_context("/"), pytest.raises(TypeError, match="groups"):
        verify_access_in_request(require(groups=groups))


def test_gate_authorize_takes_a_string_as_one_group(app: Flask, issuer: AccessIssuer) -> None:
    """AccessChecker.authorize(groups="Eng") checks the group Eng, not E, n and g."""
    checker = access_state(app).checker
    in_e = checker.authenticate(
        issuer.user_token("ada@example.com", ["E"], groups_in_token=True), None
    )
    with pytest.raises(AccessForbidden) as refused:
        checker.authorize(in_e, groups="Eng")
    assert refused.value.reason is Reason.NOT_IN_GROUP
    in_eng = checker.authenticate(
        issuer.user_token("bob@example.com", ["Eng"], groups_in_token=True), None
    )
    checker.authorize(in_eng, groups="Eng")


def test_testing_kit_takes_a_string_as_one_group(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """issuer.user_token(groups="Admins") and AccessClient(groups="Admins") mean one group."""
    token = issuer.user_token("ada@example.com", "Admins")
    answer = issuer.identity_for(token)
    assert answer is not None
    assert [group["name"] for group in answer["groups"]] == ["Admins"]
    client = AccessClient.for_app(app, issuer)
    assert client.get("/admin", as_user="ada@example.com", groups="Admins").status_code == 200
    assert client.get("/admin", as_user="bob@example.com", groups="A").status_code == 403
    assert captured.last.reason is Reason.NOT_IN_GROUP


def test_settings_take_a_string_audience_as_one_tag(issuer: AccessIssuer) -> None:
    """AccessSettings(audience="tag") accepts the tag, never a token for one of its letters."""
    settings = AccessSettings(
        team_domain=issuer.team_domain,
        audience="tag",  # type: ignore[arg-type]
        certs_url=issuer.certs_url,
        identity_url=issuer.identity_url,
    )
    assert settings.audience == ("tag",)
    checker = build_checker(
        settings, session=issuer.session(), clock=issuer.clock, background=run_inline
    )
    assert checker.authenticate(issuer.user_token("ada@example.com", audience="tag"), None)
    with pytest.raises(AccessUnauthorized) as refused:
        checker.authenticate(issuer.user_token("ada@example.com", audience="t"), None)
    assert refused.value.reason is Reason.INVALID_AUDIENCE


@pytest.mark.parametrize("audience", [(), [""], [5], None, b"tag"])
def test_settings_refuse_audiences_that_are_not_tags(issuer: AccessIssuer, audience: Any) -> None:
    """AccessSettings refuses no audience, or one that is not a non-empty string: TypeError."""
    with pytest.raises(TypeError, match="audience"):
        AccessSettings(
            team_domain=issuer.team_domain,
            audience=audience,
            certs_url=issuer.certs_url,
            identity_url=issuer.identity_url,
        )
