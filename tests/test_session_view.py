"""The session view, the sign-in end page and the browser module's URL, and the expiry header."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import ConfigurationError, Reason, session_blueprint
from flask_cf_access._flask.routes import audit_routes
from flask_cf_access._flask.session import EXPIRY_HEADER, SCRIPT_FILE, session_summary
from flask_cf_access.testing import AccessClient, AccessIssuer, capture_access

from .conftest import AppFactory
from .support import FrozenClock

XHR = {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def spa(make_app: AppFactory) -> Flask:
    """The protected app, deny by default, with the session blueprint at ``/auth/session``."""
    app = make_app(CF_ACCESS_PROTECT_ALL=True, CF_ACCESS_UNAUTHORIZED="redirect")
    app.register_blueprint(session_blueprint())
    return app


@pytest.fixture
def client(spa: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client of the app sending the team's tokens."""
    return AccessClient.for_app(spa, issuer)


def test_session_view_says_when_the_token_expires_and_who_it_is_for(
    client: AccessClient, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Expiry (absolute and left), issue time, name, e-mail; no-store; never the token."""
    token = issuer.user_token("ada@example.com", lifetime=600)
    clock.advance(100)
    response = client.get("/auth/session", token=token, headers=XHR)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    issued = int(clock.now) - 100
    assert response.json == {
        "expires_at": issued + 600,
        "expires_in": 500,
        "issued_at": issued,
        "name": "ada@example.com",
        "email": "ada@example.com",
        "service_token": False,
    }
    text = response.get_data(as_text=True)
    for secret in (token, *token.split(".")):
        assert secret not in text


def test_session_view_for_a_service_token(client: AccessClient) -> None:
    """A service token is named and flagged, with no e-mail."""
    body = client.get("/auth/session", as_service_token="ci.access").json
    assert body is not None
    assert body["service_token"] is True
    assert body["email"] is None
    assert body["name"] == "ci.access"


@pytest.mark.parametrize(
    ("kind", "reason"), [("none", Reason.MISSING_TOKEN), ("expired", Reason.EXPIRED)]
)
def test_session_view_refuses_an_ended_session(
    client: AccessClient, issuer: AccessIssuer, kind: str, reason: Reason
) -> None:
    """No token or an expired one: 401 with the reason, JSON for the script, no redirect."""
    token = issuer.user_token("ada@example.com", expired=True) if kind == "expired" else None
    with capture_access() as captured:
        response = client.get("/auth/session", token=token, headers=XHR)
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized"}
    assert captured.reasons == [reason]


def test_summary_without_iat(issuer: AccessIssuer) -> None:
    """A token without ``iat`` says ``issued_at: None``; the time left is never negative."""
    from flask_cf_access import AccessIdentity

    identity = AccessIdentity({"exp": 1000.5, "email": "a@example.com", "sub": "s"}, tuple)
    summary = session_summary(identity, now=2000)
    assert summary["issued_at"] is None
    assert summary["expires_at"] == 1000
    assert summary["expires_in"] == 0


def test_script_is_public_cacheable_javascript(spa: Flask) -> None:
    """The module: no token needed under deny by default, JavaScript, cached an hour."""
    client = spa.test_client()
    with spa.test_request_context():
        from flask import url_for

        url = url_for("cf_access_session.script")
    assert url == "/auth/session/cf-access.js"
    with capture_access() as captured:
        response = client.get(url)
    assert captured == []
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.cache_control.public
    assert response.cache_control.max_age == 3600
    assert response.get_data() == SCRIPT_FILE.read_bytes()
    again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_route_audit_sees_the_views(spa: Flask) -> None:
    """The module is public; the session view and the signed-in page are protected."""
    audits = {audit.endpoint: audit.status for audit in audit_routes(spa)}
    assert audits["cf_access_session.script"] == "public"
    assert audits["cf_access_session.session"] == "protected"
    assert audits["cf_access_session.signed_in"] == "protected"


def test_signed_in_page_needs_a_sign_in(client: AccessClient) -> None:
    """A browser without a session is sent to sign in, and back to the page."""
    response = client.get("/auth/session/signed-in", headers=BROWSER)
    assert response.status_code == 302
    back = parse_qs(urlsplit(response.headers["Location"]).query)["redirect_url"]
    assert back == ["/auth/session/signed-in"]


def test_signed_in_page_tells_its_opener_and_runs_only_its_own_script(
    client: AccessClient,
) -> None:
    """The page posts the module's message and closes; its CSP allows exactly its script."""
    response = client.get("/auth/session/signed-in", as_user="ada@example.com", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = response.headers["Content-Security-Policy"]
    assert policy == f"default-src 'none'; script-src 'sha256-{digest}'"
    module = SCRIPT_FILE.read_text()
    shared = (("SIGNED_IN_MESSAGE", "cf-access:signed-in"), ("CHANNEL_NAME", "cf-access"))
    for name, value in shared:
        assert f'export const {name} = "{value}";' in module
        assert json.dumps(value) in scripts[0]


def test_signed_in_page_tells_only_trusted_openers(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """The page posts to its own origin and the trusted ones, never to ``*``."""
    app = make_app(CF_ACCESS_TRUSTED_ORIGINS=["https://notes.example.com"])
    app.register_blueprint(session_blueprint())
    client = AccessClient.for_app(app, issuer)
    page = client.get("/auth/session/signed-in", as_user="a@example.com").get_data(as_text=True)
    assert '["http://localhost", "https://notes.example.com"].forEach' in page
    assert '"*"' not in page


def test_signed_in_page_goes_back_to_next(client: AccessClient) -> None:
    """With ``next``, the page sends the browser back there (path, query and fragment)."""
    response = client.get(
        "/auth/session/signed-in",
        query_string={"next": "/notes?tab=2#new"},
        as_user="ada@example.com",
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/notes?tab=2#new"


def test_signed_in_page_never_leaves_the_host(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """Whatever ``next`` is, the browser goes back to a path on this host."""
    app = make_app()
    app.register_blueprint(session_blueprint())
    client = AccessClient.for_app(app, issuer)

    leaving = st.sampled_from(["//evil.example", "https://e.x", "/\\e", "/ok"])

    @given(next_path=st.text(max_size=40) | leaving)
    def goes_back_home(next_path: str) -> None:
        response = client.get(
            "/auth/session/signed-in", query_string={"next": next_path}, as_user="a@example.com"
        )
        assert response.status_code == 303
        location = response.headers["Location"]
        assert location.startswith("/")
        assert not location.startswith("//")
        assert "\\" not in location
        assert urlsplit(location).netloc == ""

    goes_back_home()


def test_blueprint_at_another_url(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """The app chooses the URL and the name; a URL that is not a plain path is refused."""
    app = make_app()
    app.register_blueprint(session_blueprint("me", url="/api/me"))
    client = AccessClient.for_app(app, issuer)
    assert client.get("/api/me", as_user="a@example.com").status_code == 200
    assert client.get("/api/me/cf-access.js").status_code == 200
    for bad in ("auth", "/auth/", ""):
        with pytest.raises(ValueError, match="url"):
            session_blueprint(url=bad)


def test_expiry_header_is_off_by_default(client: AccessClient) -> None:
    """Without the setting, no response says when its token expires."""
    assert EXPIRY_HEADER not in client.get("/", as_user="a@example.com").headers


def test_expiry_header_on_admitted_responses_only(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """With the setting, admitted responses carry ``exp``; refusals and public views do not."""
    app = make_app(CF_ACCESS_EXPIRY_HEADER="true")
    client = AccessClient.for_app(app, issuer)
    token = issuer.user_token("a@example.com", lifetime=300)
    expires = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==").decode())["exp"]
    assert client.get("/", token=token).headers[EXPIRY_HEADER] == str(expires)
    assert EXPIRY_HEADER not in client.get("/").headers
    assert EXPIRY_HEADER not in client.get("/admin", token=token).headers  # 403
    assert EXPIRY_HEADER not in client.get("/open", token=token).headers


def test_expiry_header_setting_is_validated(make_app: AppFactory) -> None:
    """A value that is no flag fails at start-up, naming the key."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_EXPIRY_HEADER"):
        make_app(CF_ACCESS_EXPIRY_HEADER="sometimes")


def test_the_module_ships_in_the_wheel_and_the_sdist() -> None:
    """setup.cfg's package data and MANIFEST.in both carry the module."""
    import configparser
    from fnmatch import fnmatch
    from pathlib import Path

    root = Path(__file__).parents[1]
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    patterns = config["options.package_data"]["flask_cf_access"].replace(",", " ").split()
    relative = SCRIPT_FILE.relative_to(root / "flask_cf_access").as_posix()
    assert any(fnmatch(relative, pattern) for pattern in patterns)
    assert "recursive-include flask_cf_access/static *.js" in (root / "MANIFEST.in").read_text()
