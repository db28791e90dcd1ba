"""@require_access(optional=True): no token is nobody; a token that is sent must verify."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from flask import Flask

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    NoAccessContextError,
    Reason,
    current_user,
    get_identity,
    get_user,
    require_access,
)
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    capture_access,
    run_inline,
)

from .support import FrozenClock, decisions


@pytest.fixture
def asked() -> list[AccessIdentity]:
    """Every identity the loader was asked about."""
    return []


@pytest.fixture
def app(
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
    asked: list[AccessIdentity],
) -> Flask:
    """A landing page that greets a signed-in user, and a humans-only optional page."""
    app = Flask("optional")
    app.config.update(issuer.settings())
    cf_access = CloudflareAccess(app, clock=clock, background=run_inline)

    @cf_access.user_loader
    def load(identity: AccessIdentity) -> str | None:
        asked.append(identity)
        return f"account of {identity.email}" if identity.email == "ada@example.com" else None

    def describe() -> dict[str, Any]:
        identity = get_identity(default=None)
        try:
            strict = get_identity().name
        except NoAccessContextError:
            strict = "raised"
        return {
            "identity": identity.name if identity else None,
            "strict": strict,
            "user": get_user(),
            "proxy": bool(current_user),
            "proxied": current_user.upper() if current_user else None,
        }

    @app.get("/landing")
    @require_access(optional=True)
    def landing() -> dict[str, Any]:
        return describe()

    @app.get("/async-landing")
    @require_access(optional=True)
    async def async_landing() -> dict[str, Any]:
        return describe()

    @app.get("/people")
    @require_access(optional=True, allow_service_tokens=False)
    def people() -> dict[str, Any]:
        return describe()

    return app


@pytest.fixture
def client(app: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, issuer)


@pytest.fixture
def captured(app: Flask) -> Iterator[AccessCapture]:
    """Every access decision ``app`` makes while the test runs."""
    with capture_access(app) as captured:
        yield captured


NOBODY = {"identity": None, "strict": "raised", "user": None, "proxy": False, "proxied": None}


@pytest.mark.parametrize("path", ["/landing", "/async-landing"])
def test_no_token_runs_the_view_as_nobody(
    client: AccessClient,
    captured: AccessCapture,
    asked: list[AccessIdentity],
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    """Without a token the view runs; identity and user are None; nothing is logged or signalled."""
    with caplog.at_level(logging.DEBUG, logger="flask_cf_access"):
        response = client.get(path)
    assert response.status_code == 200
    assert response.json == NOBODY
    assert decisions(captured) == []
    assert caplog.records == []
    assert asked == []


@pytest.mark.parametrize("path", ["/landing", "/async-landing"])
def test_good_token_gives_identity_and_user(
    client: AccessClient, captured: AccessCapture, path: str
) -> None:
    """A verified token gives the identity and the loader's user, as on a required route."""
    response = client.get(path, as_user="ada@example.com")
    assert response.json == {
        "identity": "ada@example.com",
        "strict": "ada@example.com",
        "user": "account of ada@example.com",
        "proxy": True,
        "proxied": "ACCOUNT OF ADA@EXAMPLE.COM",
    }
    assert decisions(captured) == [("granted", "ada@example.com")]


def test_good_token_without_account_is_nobody_here(
    client: AccessClient, captured: AccessCapture, asked: list[AccessIdentity]
) -> None:
    """On an optional route, an identity without an account gets user None, not a 403."""
    response = client.get("/landing", as_user="eve@example.com")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["identity"] == "eve@example.com"
    assert response.json["user"] is None
    assert decisions(captured) == [("granted", "eve@example.com")]
    assert len(asked) == 1


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("expired", Reason.EXPIRED),
        ("not-yet-valid", Reason.NOT_YET_VALID),
        ("other-audience", Reason.INVALID_AUDIENCE),
        ("other-team", Reason.UNKNOWN_KID),
        ("garbage", Reason.MALFORMED_TOKEN),
        ("blank", Reason.MALFORMED_TOKEN),
    ],
)
@pytest.mark.parametrize("path", ["/landing", "/async-landing"])
def test_bad_token_is_still_401(
    client: AccessClient,
    issuer: AccessIssuer,
    captured: AccessCapture,
    asked: list[AccessIdentity],
    path: str,
    kind: str,
    reason: Reason,
) -> None:
    """A token that is sent but does not verify is refused: breaking it never downgrades."""
    tokens = {
        "expired": issuer.user_token("ada@example.com", expired=True),
        "not-yet-valid": issuer.user_token("ada@example.com", not_yet_valid=True),
        "other-audience": issuer.user_token("ada@example.com", audience="another-app"),
        "other-team": AccessIssuer(issuer.team_domain, issuer.audience).user_token(
            "ada@example.com"
        ),
        "garbage": "not.a.token",
        "blank": "   ",
    }
    response = client.get(path, token=tokens[kind])
    assert response.status_code == 401
    assert decisions(captured) == [("denied", reason)]
    assert asked == []


def test_bad_cookie_is_still_401(
    client: AccessClient, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A bad token in the CF_Authorization cookie is refused too; a good one admits."""
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com", expired=True))
    assert client.get("/landing").status_code == 401
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    response = client.get("/landing")
    assert response.json is not None
    assert response.json["identity"] == "ada@example.com"
    assert decisions(captured) == [("denied", Reason.EXPIRED), ("granted", "ada@example.com")]


def test_empty_header_is_no_token(
    client: AccessClient, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """An empty header is what a required route calls a missing token: nobody, here.

    The header stays authoritative: a cookie behind an empty header is not read.
    """
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    response = client.get("/landing", headers={"Cf-Access-Jwt-Assertion": ""})
    assert response.json == NOBODY
    assert decisions(captured) == []


def test_optional_route_still_applies_its_rule(
    client: AccessClient, captured: AccessCapture
) -> None:
    """allow_service_tokens=False still refuses a service token with 403; no token passes."""
    assert client.get("/people", as_service_token="ci.access").status_code == 403
    assert decisions(captured) == [("denied", Reason.SERVICE_TOKEN_REFUSED)]
    assert client.get("/people").json == NOBODY


def test_get_identity_default_outside_a_protected_request(app: Flask) -> None:
    """get_identity(default=…) answers the default wherever there is no identity."""
    marker = object()
    assert get_identity(default=marker) is marker
    with app.test_request_context("/"):
        assert get_identity(default=None) is None
        with pytest.raises(NoAccessContextError):
            get_identity()
