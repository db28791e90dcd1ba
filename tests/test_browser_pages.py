"""Refusals that fit the client, the login redirect, and the login and logout URLs."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, render_template_string, session
from werkzeug.exceptions import HTTPException
from werkzeug.test import Client

from flask_cf_access import (
    AccessUnauthorized,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    Reason,
    logout_blueprint,
    verify_access_in_request,
)
from flask_cf_access._core.browser import login_redirect_for
from flask_cf_access.testing import AccessCapture, AccessIssuer, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENT = {"Accept": "application/json"}
XHR = {**BROWSER, "X-Requested-With": "XMLHttpRequest"}


def _refusals(app: Flask, issuer: AccessIssuer) -> dict[int, tuple[str, dict[str, str]]]:
    """A request for each refusal status: path and headers."""
    return {
        401: ("/", {"Cf-Access-Jwt-Assertion": issuer.user_token("a@example.com", expired=True)}),
        403: ("/admin", bearer(issuer.user_token("bob@example.com", ["Staff"]))),
    }


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (JSON_CLIENT, "application/json"),
        ({"Accept": "application/json, text/html;q=0.5"}, "application/json"),
        (BROWSER, "text/html; charset=utf-8"),
        ({}, "text/plain; charset=utf-8"),
        ({"Accept": "*/*"}, "text/plain; charset=utf-8"),
        ({"Accept": "image/png"}, "text/plain; charset=utf-8"),
    ],
)
def test_refusal_bodies_are_negotiated(
    app: Flask, issuer: AccessIssuer, accept: dict[str, str], content_type: str
) -> None:
    """401 and 403 answer JSON, HTML or text as the client prefers, naming no reason (its code
    or description) or token."""
    client = app.test_client()
    words = {401: "unauthorized", 403: "forbidden"}
    for status, (path, headers) in _refusals(app, issuer).items():
        response = client.get(path, headers={**headers, **accept})
        assert response.status_code == status
        assert response.headers["Content-Type"] == content_type
        assert "Accept" in response.headers["Vary"]
        text = response.get_data(as_text=True)
        if content_type == "application/json":
            assert json.loads(text) == {"error": words[status]}
        reasons = [(str(reason), reason.description) for reason in Reason]
        for secret in (*itertools.chain(*reasons), headers["Cf-Access-Jwt-Assertion"]):
            assert secret not in text
        assert issuer.audience not in text


def test_unavailable_body_is_negotiated(
    make_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """503 answers ``{"error": "unavailable"}`` to JSON clients."""
    app = make_app(CF_ACCESS_CERTS_URL="https://unreachable.example/certs")
    token = issuer.user_token("a@example.com")
    response = app.test_client().get("/", headers={**bearer(token), **JSON_CLIENT})
    assert response.status_code == 503
    assert captured.last.reason is Reason.KEYS_UNAVAILABLE
    assert response.get_json() == {"error": "unavailable"}


def test_middleware_bodies_are_negotiated(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """The middleware's refusals are negotiated too."""
    middleware = CloudflareAccessMiddleware(
        _ok,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        background=run_inline,
    )
    client = Client(middleware)
    assert client.get("/", headers=JSON_CLIENT).get_json() == {"error": "unauthorized"}
    assert client.get("/", headers=BROWSER).headers["Content-Type"].startswith("text/html")


def _ok(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_custom_errorhandlers_keep_working(
    make_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """An app's ``errorhandler(401)`` answers instead, in status and in redirect mode alike."""
    seen: list[Reason] = []

    def unauthorized(error: HTTPException) -> tuple[str, int]:
        assert isinstance(error, AccessUnauthorized)
        seen.append(error.reason)
        return "custom", 401

    for mode in ("status", "redirect"):
        app = make_app(CF_ACCESS_UNAUTHORIZED=mode)
        app.register_error_handler(401, unauthorized)
        response = app.test_client().get("/", headers=BROWSER)
        assert (response.status_code, response.text) == (401, "custom")
    assert seen == [Reason.MISSING_TOKEN] * 2


def test_redirect_mode_sends_browsers_to_login(
    make_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A browser's GET without a token goes to the Access login page, with the way back."""
    app = make_app(CF_ACCESS_UNAUTHORIZED="redirect")
    response = app.test_client().get("/admin?tab=1", headers=BROWSER)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc) == ("https", issuer.team_domain)
    assert location.path == "/cdn-cgi/access/login/localhost"
    assert parse_qs(location.query) == {"kid": [issuer.audience], "redirect_url": ["/admin?tab=1"]}
    assert captured.reasons == [Reason.MISSING_TOKEN]


@pytest.mark.parametrize(
    ("method", "headers"),
    [("GET", XHR), ("GET", JSON_CLIENT), ("GET", {}), ("POST", BROWSER)],
)
def test_redirect_mode_keeps_401_for_others(
    make_app: AppFactory, method: str, headers: dict[str, str]
) -> None:
    """XHR, JSON and non-browser clients, and unsafe methods, still get 401."""
    app = make_app(CF_ACCESS_UNAUTHORIZED="redirect")

    @app.post("/post")
    def post() -> str:
        return "never"

    response = app.test_client().open("/", method=method, headers=headers)
    assert response.status_code in (401, 405)
    assert "Location" not in response.headers


def test_redirect_mode_leaves_403_alone(
    make_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A verified user outside the group gets 403, not a login page."""
    app = make_app(CF_ACCESS_UNAUTHORIZED="redirect")
    token = issuer.user_token("bob@example.com", ["Staff"])
    assert app.test_client().get("/admin", headers={**bearer(token), **BROWSER}).status_code == 403
    assert captured.last.reason is Reason.NOT_IN_GROUP


def test_redirect_never_leaves_the_host(make_app: AppFactory) -> None:
    """A path that would leave the host once back (``//evil``) comes back to ``/`` instead."""
    app = make_app(CF_ACCESS_UNAUTHORIZED="redirect")

    @app.get("/<path:anything>")
    def catch_all(anything: str) -> str:
        verify_access_in_request()
        return anything

    response = app.test_client().get(
        "/", headers=BROWSER, environ_overrides={"PATH_INFO": "//evil.example/x"}
    )
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["redirect_url"] == ["/evil.example/x"]  # werkzeug's path: one leading slash
    settings = app.extensions["cf_access"].checker.settings
    back = parse_qs(urlsplit(login_redirect_for(settings, "localhost", "//evil.example/")).query)
    assert back["redirect_url"] == ["/"]


@pytest.mark.parametrize("team", ["acme.cloudflareaccess.com", "login.example.com"])
def test_login_and_logout_urls(make_app: AppFactory, issuer: AccessIssuer, team: str) -> None:
    """The URLs for a team domain and a custom one: login, app logout, team logout."""
    app = make_app(CF_ACCESS_TEAM_DOMAIN=team, CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    extension = CloudflareAccess(
        background=run_inline
    )  # any instance: the URLs come from the current app
    with app.test_request_context("/page?x=1", base_url="https://app.example.com"):
        assert extension.login_url(next="/a b") == (
            f"https://{team}/cdn-cgi/access/login/app.example.com"
            f"?kid={issuer.audience}&redirect_url=%2Fa+b"
        )
        assert extension.login_url().endswith("redirect_url=%2Fpage%3Fx%3D1")
        assert extension.logout_url() == "https://app.example.com/cdn-cgi/access/logout"
        assert extension.team_logout_url() == f"https://{team}/cdn-cgi/access/logout"
        for bad in ("//evil.example", "https://evil.example", "evil", "/\\evil", "/a\nb"):
            with pytest.raises(ValueError, match="next"):
                extension.login_url(next=bad)


def test_urls_point_at_a_stand_in(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """With the keys on a local stand-in, login and logout pages are the stand-in's."""
    app = make_app(
        CF_ACCESS_CERTS_URL="http://127.0.0.1:8123/cdn-cgi/access/certs",
        CF_ACCESS_LOAD_KEYS_ON_INIT=False,
    )
    extension = CloudflareAccess(background=run_inline)
    with app.test_request_context("/", base_url="http://127.0.0.1:5000"):
        assert extension.login_url(next="/admin/").startswith(
            "http://127.0.0.1:8123/cdn-cgi/access/login/127.0.0.1:5000?"
        )
        assert extension.logout_url() == "http://127.0.0.1:8123/cdn-cgi/access/logout"


def test_logout_without_a_session_still_leaves_through_access(make_app: AppFactory) -> None:
    """With no SECRET_KEY (no session to clear) the logout view still redirects, never a 500."""
    app = make_app()
    app.register_blueprint(logout_blueprint())
    response = app.test_client().get("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "http://localhost/cdn-cgi/access/logout"


def test_templates_and_logout_blueprint(make_app: AppFactory) -> None:
    """Templates reach ``cf_access``; the logout view clears the session and leaves via Access."""
    app = make_app()
    app.secret_key = "test"
    app.register_blueprint(logout_blueprint())

    @app.get("/remember")
    def remember() -> str:
        session["seen"] = True
        return render_template_string("{{ cf_access.logout_url() }}|{{ cf_access.login_url() }}")

    @app.get("/recall")
    def recall() -> str:
        return str(session.get("seen", False))

    client = app.test_client()
    logout_link, login_link = client.get("/remember").text.split("|")
    assert logout_link == "http://localhost/cdn-cgi/access/logout"
    assert "redirect_url=%2Fremember" in login_link.replace("&amp;", "&")
    for method in ("GET", "POST"):
        client.get("/remember")
        response = client.open("/logout", method=method)
        assert response.status_code == 302
        assert response.headers["Location"] == "http://localhost/cdn-cgi/access/logout"
        assert response.headers["Cache-Control"] == "no-store"
        assert client.get("/recall").text == "False"


def test_middleware_redirect_mode(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """The middleware sends a browser's GET to the login page too; JSON clients get 401."""
    middleware = CloudflareAccessMiddleware(
        _ok,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        unauthorized="redirect",
        background=run_inline,
    )
    client = Client(middleware)
    response = client.get("/reports?q=1", headers=BROWSER)
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"https://{issuer.team_domain}/cdn-cgi/access/login/localhost"
        f"?kid={issuer.audience}&redirect_url=%2Freports%3Fq%3D1"
    )
    assert client.get("/reports", headers=JSON_CLIENT).status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
