"""verify_token: a token checked outside a request, as require_access would check it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g

from flask_cf_access import (
    AccessError,
    AccessForbidden,
    AccessUnauthorized,
    CloudflareAccess,
    Reason,
    require,
    require_access,
    verify_token,
)
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .conftest import AppFactory
from .support import FrozenClock, outcome

ADA = "ada@example.com"


def reason(token: str | None, app: Flask, **kwargs: Any) -> Reason | None:
    """The reason ``verify_token`` refuses ``token`` with on ``app``; ``None`` if it passes."""
    try:
        verify_token(token, app=app, **kwargs)
    except AccessError as error:
        return error.reason
    return None


def test_a_user_token_gives_its_identity(app: Flask, issuer: AccessIssuer) -> None:
    """A good user token gives the identity, in an app context or with app=."""
    token = issuer.user_token(ADA, ["Admins"])
    with app.app_context():
        identity = verify_token(token)
    assert identity.email == ADA
    assert not identity.is_service_token
    assert verify_token(token, app=app).claims is identity.claims
    assert [group.name for group in verify_token(token, app=app).groups] == ["Admins"]


def test_a_service_token_gives_its_identity(app: Flask, issuer: AccessIssuer) -> None:
    """A service token passes, as a machine."""
    identity = verify_token(issuer.service_token("robot.access"), app=app)
    assert identity.is_service_token
    assert identity.common_name == "robot.access"


def test_a_bad_token_is_refused_with_its_reason(app: Flask, issuer: AccessIssuer) -> None:
    """No token, a forged signature, another audience: 401 with the request's reason."""
    other = AccessIssuer(issuer.team_domain, clock=issuer.clock)
    other.audience = issuer.audience
    assert reason("", app) is Reason.MISSING_TOKEN
    assert reason(None, app) is Reason.MISSING_TOKEN
    with pytest.raises(TypeError, match="str"):
        verify_token(issuer.user_token(ADA).encode(), app=app)  # type: ignore[arg-type]
    assert reason("not a token", app) is Reason.MALFORMED_TOKEN
    assert reason(issuer.user_token(ADA, audience="other-aud"), app) is Reason.INVALID_AUDIENCE
    with pytest.raises(AccessUnauthorized) as refused:
        verify_token(other.user_token(ADA), app=app)
    assert refused.value.reason is Reason.UNKNOWN_KID
    assert refused.value.code == 401


def test_an_expired_token_is_refused(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A token verified once is refused as expired once the clock passes its exp."""
    token = issuer.user_token(ADA, lifetime=60)
    assert reason(token, app) is None
    clock.advance(60 + 31)  # past the 30 s leeway
    assert reason(token, app) is Reason.EXPIRED
    assert reason(issuer.user_token(ADA, expired=True), app) is Reason.EXPIRED


def test_outside_an_app_context_app_is_needed(app: Flask, issuer: AccessIssuer) -> None:
    """Without app= and outside an app context, a clear error; init_app is needed too."""
    token = issuer.user_token(ADA)
    with pytest.raises(RuntimeError, match="app context"):
        verify_token(token)
    with pytest.raises(RuntimeError, match="init_app"):
        verify_token(token, app=Flask("bare"))


def test_the_app_wide_rules_apply(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """The e-mail rules and the known service tokens refuse as on a request: 403."""
    app = make_app(
        CF_ACCESS_ALLOWED_EMAILS=[ADA],
        CF_ACCESS_SERVICE_TOKENS={"robot.access": {"roles": ["deploy"]}},
    )
    assert reason(issuer.user_token(ADA), app) is None
    with pytest.raises(AccessForbidden) as refused:
        verify_token(issuer.user_token("eve@example.com"), app=app)
    assert refused.value.reason is Reason.EMAIL_NOT_ALLOWED
    assert refused.value.code == 403
    assert reason(issuer.service_token("robot.access"), app) is None
    assert reason(issuer.service_token("stranger.access"), app) is Reason.UNKNOWN_SERVICE_TOKEN


def test_a_requirement_applies_after_the_app_wide_rules(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """verify_token(token, require(...)) judges groups, roles and service tokens."""
    app = make_app(CF_ACCESS_ROLES={"admin": ["Admins"]})
    admin = issuer.user_token(ADA, ["Admins"])
    staff = issuer.user_token("bob@example.com", ["Staff"])
    assert reason(admin, app, requirement=require(roles=["admin"])) is None
    assert reason(staff, app, requirement=require(roles=["admin"])) is Reason.NO_ROLE
    assert reason(staff, app, requirement=require(groups=["Admins"])) is Reason.NOT_IN_GROUP
    assert (
        reason(issuer.service_token(), app, requirement=require(allow_service_tokens=False))
        is Reason.SERVICE_TOKEN_REFUSED
    )
    with pytest.raises(TypeError, match="require"):
        verify_token(admin, ["Admins"], app=app)  # type: ignore[arg-type]


def test_a_named_application_is_judged(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """With CF_ACCESS_APPLICATIONS, any application's token passes unless one is named."""
    app = make_app(
        CF_ACCESS_AUDIENCE=None,
        CF_ACCESS_APPLICATIONS={
            "main": {"audience": issuer.audience, "paths": ["/"]},
            "admin": {"audience": "b" * 64, "paths": ["/admin"]},
        },
    )
    main_token = issuer.user_token(ADA)
    assert reason(main_token, app) is None
    assert reason(main_token, app, requirement=require(application="main")) is None
    assert (
        reason(main_token, app, requirement=require(application="admin"))
        is Reason.WRONG_APPLICATION
    )
    assert (
        reason(main_token, app, requirement=require(application="nowhere"))
        is Reason.WRONG_APPLICATION
    )


def test_nothing_is_kept_logged_or_signalled(
    app: Flask, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """verify_token leaves no signal and no log line: the caller has the error."""
    with capture_access() as captured, app.app_context():
        verify_token(issuer.user_token(ADA))
        with pytest.raises(AccessUnauthorized):
            verify_token(issuer.user_token(ADA, expired=True))
        assert "cf_access_identity" not in g
    assert list(captured) == []
    assert not [record for record in caplog.records if record.name == "flask_cf_access"]


#: Tokens of every kind a request may send.
KINDS = (
    "user",
    "other user",
    "service",
    "unknown service",
    "expired",
    "not yet valid",
    "other audience",
    "garbage",
    "empty",
)


@pytest.fixture(scope="module")
def team() -> AccessIssuer:
    """One stand-in team for the whole table (its keys take a while to make)."""
    return AccessIssuer(clock=FrozenClock())


def minted(issuer: AccessIssuer, kind: str) -> str:
    """A token of ``kind``."""
    makers: dict[str, Callable[[], str]] = {
        "user": lambda: issuer.user_token(ADA),
        "other user": lambda: issuer.user_token("eve@example.com"),
        "service": lambda: issuer.service_token("robot.access"),
        "unknown service": lambda: issuer.service_token("stranger.access"),
        "expired": lambda: issuer.user_token(ADA, expired=True),
        "not yet valid": lambda: issuer.user_token(ADA, not_yet_valid=True),
        "other audience": lambda: issuer.user_token(ADA, audience="c" * 64),
        "garbage": lambda: "a.b.c",
        "empty": lambda: "",
    }
    return makers[kind]()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("email_rule", [False, True])
@pytest.mark.parametrize("known_tokens", [False, True])
def test_verify_token_agrees_with_require_access(
    team: AccessIssuer, kind: str, email_rule: bool, known_tokens: bool
) -> None:
    """For every kind of token and app-wide rule, verify_token refuses with the reason
    a require_access view answers with, and passes what it lets through."""
    app = Flask("agree")
    config: dict[str, Any] = {}
    if email_rule:
        config["CF_ACCESS_ALLOWED_EMAILS"] = [ADA]
    if known_tokens:
        config["CF_ACCESS_SERVICE_TOKENS"] = {"robot.access": {}}
    app.config.update(team.settings(**config))
    CloudflareAccess(app, session=team.session(), clock=team.clock, background=run_inline)

    @app.get("/")
    @require_access
    def home() -> str:
        return "ok"

    token = minted(team, kind)
    assert reason(token, app) is outcome(app, token).reason
