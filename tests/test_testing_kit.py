"""The public testing kit: token kinds, transports, rotation, AccessClient, pytest plugin."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask import Flask, redirect
from flask.typing import ResponseReturnValue

from flask_cf_access import (
    AccessUnauthorized,
    CloudflareAccess,
    Reason,
    current_identity,
    get_claims,
    require_access,
    require_group,
    verify_token,
)
from flask_cf_access.testing import (
    CERTS_PATH,
    AccessClient,
    AccessIssuer,
    StandInServer,
    capture_access,
    decode_unverified_claims,
    run_inline,
)

from .support import FrozenClock

ROOT = Path(__file__).resolve().parent.parent


def kit_app(issuer: AccessIssuer, config: dict[str, Any] | None = None, **options: Any) -> Flask:
    """An app trusting ``issuer`` in process, with the AccessClient as its test client."""
    app = Flask("kit")
    app.config.update(issuer.settings(**(config or {})))
    app.test_client_class = AccessClient
    CloudflareAccess(app, session=issuer.session(), **options, background=run_inline)

    @app.get("/")
    @require_access
    def home() -> dict[str, Any]:
        return {
            "name": current_identity.name,
            "service": current_identity.is_service_token,
            "custom": get_claims().get("custom"),
        }

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> dict[str, Any]:
        return {"groups": sorted(group.name or "" for group in current_identity.groups)}

    return app


def refusal(app: Flask, token: str) -> Reason:
    """Why the app refuses ``token`` (the test fails if it is accepted)."""
    with pytest.raises(AccessUnauthorized) as caught:
        verify_token(token, app=app)
    return caught.value.reason


# -- token kinds ---------------------------------------------------------------


def test_user_token_verifies_with_groups_from_get_identity(cf_access_issuer: AccessIssuer) -> None:
    """A user's token passes, its groups fetched from the stand-in's get-identity."""
    app = kit_app(cf_access_issuer)
    client = app.test_client(issuer=cf_access_issuer)
    token = cf_access_issuer.user_token("ada@example.com", ["Admins", "Staff"])
    response = client.get("/admin", token=token)
    assert response.status_code == 200
    assert response.json == {"groups": ["Admins", "Staff"]}
    assert "groups" not in decode_unverified_claims(token)


def test_groups_in_token_need_no_identity_call(cf_access_issuer: AccessIssuer) -> None:
    """groups_in_token=True carries the group names in the token itself."""
    session = cf_access_issuer.session()
    app = Flask("kit")
    app.config.update(cf_access_issuer.settings())
    CloudflareAccess(app, session=session, background=run_inline)

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> str:
        return "ok"

    token = cf_access_issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True)
    assert decode_unverified_claims(token)["groups"] == ["Admins"]
    response = app.test_client().get("/admin", headers={"Cf-Access-Jwt-Assertion": token})
    assert response.status_code == 200
    adapter = session.get_adapter(cf_access_issuer.certs_url)
    assert adapter.calls == {CERTS_PATH: 1}  # type: ignore[attr-defined]


def test_service_token_shape(cf_access_issuer: AccessIssuer) -> None:
    """A service token has common_name, an empty sub and no email, and verifies."""
    token = cf_access_issuer.service_token("ci.access")
    claims = decode_unverified_claims(token)
    assert claims["common_name"] == "ci.access"
    assert claims["sub"] == ""
    assert "email" not in claims
    client = kit_app(cf_access_issuer).test_client(issuer=cf_access_issuer)
    assert client.get("/", token=token).json == {
        "name": "ci.access",
        "service": True,
        "custom": None,
    }


def test_custom_attributes_reach_the_view(cf_access_issuer: AccessIssuer) -> None:
    """custom={...} becomes the token's custom claim (SAML/OIDC attributes)."""
    token = cf_access_issuer.user_token("ada@example.com", custom={"department": "R&D"})
    client = kit_app(cf_access_issuer).test_client(issuer=cf_access_issuer)
    assert client.get("/", token=token).get_json()["custom"] == {"department": "R&D"}


def test_custom_groups_are_used_for_require_group(cf_access_issuer: AccessIssuer) -> None:
    """custom={"groups": [...]} satisfies @require_group without get-identity."""
    token = cf_access_issuer.mint(
        {"email": "eve@example.com", "sub": "eve"}, custom={"groups": ["Admins"]}
    )
    client = kit_app(cf_access_issuer).test_client(issuer=cf_access_issuer)
    assert client.get("/admin", token=token).status_code == 200


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda issuer: issuer.user_token("a@example.com", expired=True), Reason.EXPIRED),
        (lambda issuer: issuer.service_token(expired=True), Reason.EXPIRED),
        (
            lambda issuer: issuer.user_token("a@example.com", not_yet_valid=True),
            Reason.NOT_YET_VALID,
        ),
        (
            lambda issuer: issuer.user_token("a@example.com", audience="another-app"),
            Reason.INVALID_AUDIENCE,
        ),
        (lambda issuer: issuer.service_token(audience=["x", "y"]), Reason.INVALID_AUDIENCE),
        (lambda issuer: issuer.mint(lifetime=-3600), Reason.EXPIRED),
    ],
)
def test_bad_token_kinds_are_refused_for_their_reason(
    cf_access_issuer: AccessIssuer,
    make_token: Callable[[AccessIssuer], str],
    reason: Reason,
) -> None:
    """Expired, not-yet-valid and other-audience tokens fail with the matching reason."""
    app = kit_app(cf_access_issuer)
    assert refusal(app, make_token(cf_access_issuer)) is reason
    client = app.test_client(issuer=cf_access_issuer)
    assert client.get("/", token=make_token(cf_access_issuer)).status_code == 401


def test_expired_is_beyond_the_largest_leeway() -> None:
    """expired=True and not_yet_valid=True stay refused with the maximum 300 s leeway."""
    clock = FrozenClock()
    issuer = AccessIssuer(clock=clock)
    expired = decode_unverified_claims(issuer.user_token("a@example.com", expired=True))
    early = decode_unverified_claims(issuer.user_token("a@example.com", not_yet_valid=True))
    assert expired["exp"] < clock() - 300
    assert expired["iat"] <= expired["nbf"] < expired["exp"]
    assert early["nbf"] > clock() + 300
    app = kit_app(issuer, {"CF_ACCESS_LEEWAY": 300}, clock=clock)
    assert refusal(app, issuer.user_token("a@example.com", expired=True)) is Reason.EXPIRED


# -- rotation -------------------------------------------------------------------


def test_rotation_through_responses() -> None:
    """register() answers live: a rotated key is fetched, a dropped one stops passing."""
    clock = FrozenClock()
    issuer = AccessIssuer(clock=clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        issuer.register(mock)
        app = Flask("rotating")
        app.config.update(issuer.settings())
        CloudflareAccess(app, clock=clock, background=run_inline)

        @app.get("/")
        @require_access
        def home() -> str:
            return current_identity.name

        client = app.test_client()
        old = issuer.user_token("old@example.com")
        issuer.rotate()
        new = issuer.user_token("new@example.com")
        clock.advance(61)
        assert client.get("/", headers={"Cf-Access-Jwt-Assertion": new}).status_code == 200
        assert client.get("/", headers={"Cf-Access-Jwt-Assertion": old}).status_code == 200
        issuer.drop_previous()
        clock.advance(901)  # past CF_ACCESS_KEYS_MAX_AGE: the set is fetched again
        assert client.get("/", headers={"Cf-Access-Jwt-Assertion": new}).status_code == 200
        with capture_access() as captured:
            assert client.get("/", headers={"Cf-Access-Jwt-Assertion": old}).status_code == 401
        assert captured.reasons == [Reason.UNKNOWN_KID]
        # The old kid, gone after the refresh, forced one more fetch.
        assert sum(call.request.url == issuer.certs_url for call in mock.calls) == 4


def test_register_serves_identity_and_counts(
    cf_access_issuer: AccessIssuer, cf_access_responses: responses.RequestsMock
) -> None:
    """The cf_access_responses fixture answers certs and get-identity as the team would."""
    token = cf_access_issuer.user_token("ada@example.com", ["Admins"])
    with requests.Session() as session:
        certs = session.get(cf_access_issuer.certs_url, timeout=5)
        identity = session.get(
            cf_access_issuer.identity_url, cookies={"CF_Authorization": token}, timeout=5
        )
        missing = session.get(cf_access_issuer.identity_url, timeout=5)
    assert certs.status_code == 200
    assert certs.headers["Content-Type"] == "application/json"
    assert certs.json() == cf_access_issuer.certs()
    assert identity.json()["groups"][0]["name"] == "Admins"
    assert missing.status_code == 400
    assert len(cf_access_responses.calls) == 3


@responses.activate
def test_register_defaults_to_the_activate_mock(cf_access_issuer: AccessIssuer) -> None:
    """With no mock given, register() answers through @responses.activate's."""
    cf_access_issuer.register()
    with requests.Session() as session:
        answer = session.get(cf_access_issuer.certs_url, timeout=5)
    assert answer.json() == cf_access_issuer.certs()
    assert len(responses.calls) == 1


def test_session_counts_calls(cf_access_issuer: AccessIssuer) -> None:
    """The in-process session answers with no HTTP and counts calls by path."""
    session = cf_access_issuer.session()
    response = session.get(cf_access_issuer.certs_url, timeout=5)
    assert response.json()["keys"][0]["kid"] == cf_access_issuer.signing_key.kid
    assert response.content == response.content
    adapter = session.get_adapter(cf_access_issuer.certs_url)
    assert adapter.calls == {CERTS_PATH: 1}  # type: ignore[attr-defined]


# -- AccessClient ------------------------------------------------------------------


def test_access_client_as_user_and_service(cf_access_issuer: AccessIssuer) -> None:
    """as_user (with groups) and as_service_token send minted tokens; no option sends none."""
    client = kit_app(cf_access_issuer).test_client(issuer=cf_access_issuer)
    assert client.get("/admin", as_user="ada@example.com", groups=["Admins"]).status_code == 200
    with capture_access() as captured:
        assert client.get("/admin", as_user="bob@example.com", groups=["Staff"]).status_code == 403
        assert client.get("/admin", as_service_token="ci.access").status_code == 403
        assert client.get("/", as_service_token="ci.access").get_json()["service"] is True
        assert client.get("/").status_code == 401
    assert captured.reasons == [Reason.NOT_IN_GROUP, Reason.NOT_IN_GROUP, Reason.MISSING_TOKEN]


def test_access_client_keeps_other_headers(cf_access_issuer: AccessIssuer) -> None:
    """Headers given by the caller are sent along with the token."""
    app = kit_app(cf_access_issuer)

    @app.get("/echo")
    @require_access
    def echo() -> dict[str, Any]:
        from flask import request

        return {"extra": request.headers.get("X-Extra")}

    client = AccessClient.for_app(app, cf_access_issuer)
    response = client.get("/echo", as_user="ada@example.com", headers={"X-Extra": "1"})
    assert response.json == {"extra": "1"}


def test_access_client_cookie_transport(cf_access_issuer: AccessIssuer) -> None:
    """A token set as the CF_Authorization cookie is accepted, as from a browser."""
    client = AccessClient.for_app(kit_app(cf_access_issuer), cf_access_issuer)
    client.set_cookie("CF_Authorization", cf_access_issuer.user_token("ada@example.com"))
    assert client.get("/").get_json()["name"] == "ada@example.com"


def test_access_client_follows_redirects_with_the_token(cf_access_issuer: AccessIssuer) -> None:
    """The token is sent again when a redirect is followed."""
    app = kit_app(cf_access_issuer)

    @app.get("/old")
    def old() -> ResponseReturnValue:
        return redirect("/")

    client = AccessClient.for_app(app, cf_access_issuer)
    response = client.get("/old", as_user="ada@example.com", follow_redirects=True)
    assert response.status_code == 200
    assert response.get_json()["name"] == "ada@example.com"


@pytest.mark.parametrize(
    "options",
    [
        {"as_user": "a@example.com", "as_service_token": "ci"},
        {"as_user": "a@example.com", "token": "x.y.z"},
        {"groups": ["Admins"]},
    ],
)
def test_access_client_refuses_conflicting_options(
    cf_access_issuer: AccessIssuer, options: dict[str, Any]
) -> None:
    """Two identities at once, or groups without a user, are a TypeError."""
    client = AccessClient.for_app(kit_app(cf_access_issuer), cf_access_issuer)
    with pytest.raises(TypeError):
        client.get("/", **options)


def test_access_client_without_issuer_says_how(cf_access_issuer: AccessIssuer) -> None:
    """as_user on a client made without an issuer names the fix."""
    client = kit_app(cf_access_issuer).test_client()
    with pytest.raises(TypeError, match="issuer"):
        client.get("/", as_user="ada@example.com")


# -- the pytest plugin ------------------------------------------------------------------


def test_entry_points_are_registered() -> None:
    """setup.cfg registers the pytest plugin and the flask command group."""
    pytest11 = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    commands = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="flask.commands")}
    assert pytest11.get("flask_cf_access") == "flask_cf_access.pytest_plugin"
    assert commands.get("cf-access") == "flask_cf_access.cli:cli"


def test_plugin_import_is_light() -> None:
    """Importing the plugin pulls in neither the testing kit nor responses."""
    code = (
        "import sys, flask_cf_access.pytest_plugin;"
        "print(sorted(m for m in ('flask_cf_access.testing', 'responses', 'flask_cf_access.cli')"
        " if m in sys.modules))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_server_fixture_uses_the_issuer_fixture(
    cf_access_issuer: AccessIssuer, cf_access_server: StandInServer
) -> None:
    """cf_access_server serves cf_access_issuer, on 127.0.0.1."""
    assert cf_access_server.issuer is cf_access_issuer
    assert cf_access_server.url.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_testing_page_example_runs(tmp_path: Path) -> None:
    """The testing page's example passes under pytest -W error, fixtures from the plugin."""
    for name in ("yourapp.py", "test_yourapp.py"):
        shutil.copy(ROOT / "docs" / "examples" / name, tmp_path / name)
    result = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path / "test_yourapp.py"),
        ],
        cwd=tmp_path,
        env={**_clean_environ(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b[1-9]\d* passed", result.stdout)


def _clean_environ() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CF_ACCESS_", "PYTEST_"))
    }


@pytest.mark.parametrize(
    "token", ["", "a.b", "a..c", "a.b.c.d", "ä.b.c", "e30.bm90anNvbg.c2ln", "e30.WzFd.c2ln"]
)
def test_stand_in_reads_no_claims_from_what_is_not_a_token(token: str) -> None:
    """A cookie that is not a compact JWS of a JSON object is a ValueError, and no identity."""
    issuer = AccessIssuer()
    with pytest.raises(ValueError, match=r"not a compact JWS|not JSON|not an object"):
        decode_unverified_claims(token)
    assert issuer.identity_for(token) is None
