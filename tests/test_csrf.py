"""Cross-site request forgery defence for requests carrying the Access cookie."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, request
from werkzeug.test import Client

from flask_cf_access import (
    CloudflareAccessMiddleware,
    ConfigurationError,
    Reason,
    csrf_exempt,
    require_access,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessCapture, AccessIssuer, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: The origin of Flask's test client: ``http://localhost``.
OWN = "http://localhost"


@pytest.fixture
def post_app(make_app: AppFactory) -> AppFactory:
    """A factory of apps with unsafe routes: guarded, exempt, and guarded by a blueprint hook."""

    def factory(**config: Any) -> Flask:
        app = make_app(**config)

        @app.route("/change", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        @require_access
        def change() -> str:
            return "changed"

        @app.post("/hook")
        @csrf_exempt
        @require_access
        def hook() -> str:
            return "hooked"

        @app.post("/guarded-by-hook")
        def guarded_by_hook() -> str:
            return "ok"

        @app.post("/exempt-by-hook")
        @csrf_exempt
        def exempt_by_hook() -> str:
            return "ok"

        @app.before_request
        def guard() -> None:
            if request.path.endswith("-by-hook"):
                verify_access_in_request()

        return app

    return factory


def _cookie_client(app: Flask, issuer: AccessIssuer, email: str = "ada@example.com") -> Client:
    client = app.test_client()
    client.set_cookie("CF_Authorization", issuer.user_token(email))
    return client


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "Same-Origin", "Origin": "https://evil.example"},
        {"Origin": OWN},
        {"Origin": "HTTP://LOCALHOST:80"},
        {"Referer": OWN + "/form?x=1"},
    ],
)
def test_same_origin_post_with_cookie_passes(
    post_app: AppFactory, issuer: AccessIssuer, headers: dict[str, str]
) -> None:
    """A post from the app's own origin, by Fetch Metadata, Origin or Referer, passes."""
    client = _cookie_client(post_app(), issuer)
    response = client.post("/change", headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.localhost"},
        {"Sec-Fetch-Site": "cross-site", "Origin": OWN},
        {"Sec-Fetch-Site": "bogus"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost.evil.com"},
        {"Origin": "https://localhost"},
        {"Origin": "http://localhost:8080"},
        {"Origin": "http://user@localhost"},
        {"Origin": "not a url"},
        {"Origin": "http://localhost:99999"},
        {"Referer": "https://evil.example/page"},
        {"Referer": "http://localhost.evil.com/"},
        {"Referer": "/relative"},
        {},
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_cross_site_or_unknown_post_with_cookie_is_refused(
    post_app: AppFactory,
    issuer: AccessIssuer,
    captured: AccessCapture,
    headers: dict[str, str],
    method: str,
) -> None:
    """An unsafe request with the cookie from elsewhere, a lookalike or nowhere gets 403."""
    client = _cookie_client(post_app(), issuer)
    response = client.open("/change", method=method, headers=headers)
    assert response.status_code == 403
    assert captured.reasons == [Reason.CROSS_SITE_REQUEST]


def test_header_token_without_cookie_is_not_checked(
    post_app: AppFactory, issuer: AccessIssuer
) -> None:
    """An API client sending its token in the header only is no forgery candidate."""
    response = (
        post_app()
        .test_client()
        .post(
            "/change",
            headers={**bearer(issuer.user_token("ada@example.com")), "Origin": "https://x.example"},
        )
    )
    assert response.status_code == 200


def test_cookie_is_checked_even_when_the_header_carries_the_token(
    post_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """Behind Access both arrive: the cookie alone makes a request a candidate."""
    token = issuer.user_token("ada@example.com")
    client = post_app().test_client()
    client.set_cookie("CF_Authorization", token)
    response = client.post("/change", headers={**bearer(token), "Origin": "https://evil.example"})
    assert response.status_code == 403
    assert captured.reasons == [Reason.CROSS_SITE_REQUEST]


def test_always_mode_checks_header_tokens(
    post_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """With ``"always"`` a user's unsafe request is checked, cookie or not."""
    client = post_app(CF_ACCESS_CSRF_PROTECT="always").test_client()
    token = issuer.user_token("ada@example.com")
    assert client.post("/change", headers=bearer(token)).status_code == 403
    assert captured.reasons == [Reason.CROSS_SITE_REQUEST]
    same = client.post("/change", headers={**bearer(token), "Origin": OWN})
    assert same.status_code == 200


@pytest.mark.parametrize("setting", [False, "off"])
def test_protection_can_be_turned_off(
    post_app: AppFactory, issuer: AccessIssuer, setting: object
) -> None:
    """``CF_ACCESS_CSRF_PROTECT = False`` lets cross-site posts through."""
    client = _cookie_client(post_app(CF_ACCESS_CSRF_PROTECT=setting), issuer)
    assert client.post("/change", headers={"Origin": "https://evil.example"}).status_code == 200


def test_service_tokens_are_exempt(post_app: AppFactory, issuer: AccessIssuer) -> None:
    """A service token in the cookie, even with a foreign origin, is not checked."""
    client = post_app(CF_ACCESS_CSRF_PROTECT="always").test_client()
    client.set_cookie("CF_Authorization", issuer.service_token())
    assert client.post("/change", headers={"Origin": "https://evil.example"}).status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_safe_methods_are_never_refused_for_csrf(
    post_app: AppFactory, issuer: AccessIssuer, method: str
) -> None:
    """GET and HEAD from another site pass: they change nothing."""
    client = _cookie_client(post_app(CF_ACCESS_CSRF_PROTECT="always"), issuer)
    response = client.open(
        "/change", method=method, headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"}
    )
    assert response.status_code == 200


def test_trusted_origins_pass(
    post_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A listed origin passes by Origin, Referer or with a cross-site Fetch Metadata."""
    app = post_app(CF_ACCESS_TRUSTED_ORIGINS=["https://admin.example.com:8443/"])
    client = _cookie_client(app, issuer)
    for headers in (
        {"Origin": "https://admin.example.com:8443"},
        {"Referer": "https://ADMIN.example.com:8443/x"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://admin.example.com:8443"},
    ):
        assert client.post("/change", headers=headers).status_code == 200, headers
    for headers in (
        {"Origin": "https://admin.example.com"},
        {"Origin": "http://admin.example.com:8443"},
        {"Sec-Fetch-Site": "cross-site", "Referer": "https://admin.example.com:8443/"},
    ):
        assert client.post("/change", headers=headers).status_code == 403, headers
    assert captured.reasons == [Reason.CROSS_SITE_REQUEST] * 3


def test_own_origin_is_the_host_the_request_names(
    post_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """The request's own origin follows its Host header and scheme (as ProxyFix sets them)."""
    client = post_app().test_client()
    client.set_cookie(
        "CF_Authorization", issuer.user_token("ada@example.com"), domain="app.example.com"
    )
    origin = {"Origin": "https://app.example.com"}
    plain = client.post("/change", headers=origin, base_url="http://app.example.com")
    assert plain.status_code == 403  # the server saw http: use ProxyFix or trust the origin
    assert captured.last.reason is Reason.CROSS_SITE_REQUEST
    secure = client.post("/change", headers=origin, base_url="https://app.example.com")
    assert secure.status_code == 200


def test_x_forwarded_headers_are_not_trusted_without_proxyfix(
    post_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """X-Forwarded-Host and -Proto never make a foreign Origin the request's own."""
    client = _cookie_client(post_app(), issuer)
    response = client.post(
        "/change",
        headers={
            "Origin": "https://evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
        },
    )
    assert response.status_code == 403
    assert captured.last.reason is Reason.CROSS_SITE_REQUEST


def test_views_can_opt_out(
    post_app: AppFactory, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """``@csrf_exempt`` lets a view (or a hook-guarded one) take posts from elsewhere."""
    app = post_app()
    client = _cookie_client(app, issuer)
    foreign = {"Origin": "https://evil.example"}
    assert client.post("/hook", headers=foreign).status_code == 200
    assert client.post("/exempt-by-hook", headers=foreign).status_code == 200
    assert client.post("/guarded-by-hook", headers=foreign).status_code == 403
    assert captured.last.reason is Reason.CROSS_SITE_REQUEST


def test_missing_token_is_refused_as_unauthorized_first(
    post_app: AppFactory, captured: AccessCapture
) -> None:
    """Without a token the refusal is 401 for the token, not CSRF."""
    response = post_app().test_client().post("/change", headers={"Origin": "https://evil.example"})
    assert response.status_code == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CF_ACCESS_CSRF_PROTECT", True),
        ("CF_ACCESS_CSRF_PROTECT", "header"),
        ("CF_ACCESS_TRUSTED_ORIGINS", "https://example.com/path"),
        ("CF_ACCESS_TRUSTED_ORIGINS", "https://example.com?x=1"),
        ("CF_ACCESS_TRUSTED_ORIGINS", "https://user@example.com"),
        ("CF_ACCESS_TRUSTED_ORIGINS", "null"),
        ("CF_ACCESS_TRUSTED_ORIGINS", ["ftp://example.com"]),
        ("CF_ACCESS_TRUSTED_ORIGINS", [3]),
        ("CF_ACCESS_TRUSTED_ORIGINS", 3),
        ("CF_ACCESS_UNAUTHORIZED", "login"),
    ],
)
def test_bad_settings_fail_at_start(make_app: AppFactory, key: str, value: object) -> None:
    """A bad browser setting fails ``init_app`` with a message naming it."""
    with pytest.raises(ConfigurationError, match=key):
        make_app(**{key: value})


def _downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _middleware(issuer: AccessIssuer, clock: FrozenClock, **options: Any) -> Client:
    middleware = CloudflareAccessMiddleware.from_mapping(
        issuer.settings(**options),
        _downstream,
        session=issuer.session(),
        clock=clock,
        background=run_inline,
    )
    return Client(middleware)


def test_middleware_refuses_cross_site_posts_with_the_cookie(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """The middleware applies the same check, with the same reason."""
    client = _middleware(issuer, clock)
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    refused = client.post("/x", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert captured.reasons == [Reason.CROSS_SITE_REQUEST]
    assert client.post("/x", headers={"Origin": OWN}).status_code == 200
    assert client.post("/x", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get("/x", headers={"Origin": "https://evil.example"}).status_code == 200


def test_middleware_settings_and_exempt_paths(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """``csrf_protect``, ``trusted_origins`` and ``csrf_exempt_paths`` configure the middleware."""
    foreign = {"Origin": "https://evil.example"}
    off = _middleware(issuer, clock, CF_ACCESS_CSRF_PROTECT=False)
    off.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    assert off.post("/x", headers=foreign).status_code == 200
    trusting = CloudflareAccessMiddleware(
        _downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        trusted_origins=["https://evil.example"],
        csrf_exempt_paths=["/webhook"],
        background=run_inline,
    )
    client = Client(trusting)
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    assert client.post("/x", headers=foreign).status_code == 200
    assert client.post("/webhook", headers={"Origin": "https://other.example"}).status_code == 200
    assert client.post("/x", headers={"Origin": "https://other.example"}).status_code == 403
    assert captured.last.reason is Reason.CROSS_SITE_REQUEST
