"""What caches may do with the answers: refusals name what they vary on and are never
kept; admitted answers are private unless the view says otherwise."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.test import Client, TestResponse

from flask_cf_access import (
    AccessSettings,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    Reason,
    require_access,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: Every request header the refusal's form might be chosen by, with the values tried.
NEGOTIATING_HEADERS: dict[str, list[str | None]] = {
    "Accept": [
        None,
        "application/json",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "*/*",
        "text/plain",
    ],
    "X-Requested-With": [None, "XMLHttpRequest"],
}
HEADER_SETS = [
    {name: value for name, value in zip(NEGOTIATING_HEADERS, values, strict=True) if value}
    for values in itertools.product(*NEGOTIATING_HEADERS.values())
]


def varies_on(response: TestResponse) -> set[str]:
    """The header names in the response's ``Vary``, lower case."""
    return {name.strip().lower() for name in response.headers.get("Vary", "").split(",") if name}


def form(response: TestResponse) -> tuple[Any, ...]:
    """What a cache would serve: status, where it sends, the body's type and the body."""
    return (
        response.status_code,
        response.headers.get("Location"),
        response.headers.get("Content-Type"),
        response.get_data(),
    )


def assert_vary_is_complete(
    send: Any, reason: Reason, refused_status: int, *, redirects: bool = False
) -> None:
    """Two requests that agree on every header a response names in ``Vary`` get the
    same answer; every answer is a refusal for ``reason`` that no cache may keep."""
    answers = []
    for headers in HEADER_SETS:
        response, reasons = send(headers)
        assert reasons == [reason]
        assert response.status_code in (refused_status, 302)
        assert response.headers["Cache-Control"] == "no-store"
        answers.append((headers, response))
    assert redirects == any(response.status_code == 302 for _, response in answers)
    for (first, one), (second, other) in itertools.product(answers, repeat=2):
        named = varies_on(one)
        if all(
            first.get(name) == second.get(name)
            for name in NEGOTIATING_HEADERS
            if name.lower() in named
        ):
            assert form(one) == form(other), (first, second)


def flask_sender(app: Flask, path: str, token_headers: dict[str, str]) -> Any:
    def send(headers: dict[str, str]) -> tuple[TestResponse, list[Reason]]:
        with capture_access(app) as captured:
            response = app.test_client().get(path, headers={**token_headers, **headers})
        return response, captured.reasons

    return send


@pytest.mark.parametrize("mode", ["status", "redirect"])
@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no token", 401, Reason.MISSING_TOKEN),
        ("expired", 401, Reason.EXPIRED),
        ("not in group", 403, Reason.NOT_IN_GROUP),
        ("no keys", 503, Reason.KEYS_UNAVAILABLE),
    ],
)
def test_flask_refusals_name_every_header_they_vary_on(
    make_app: AppFactory, issuer: AccessIssuer, mode: str, case: str, status: int, reason: Reason
) -> None:
    """Each refusal's Vary names every request header its form depends on, in both modes."""
    config: dict[str, Any] = {"CF_ACCESS_UNAUTHORIZED": mode}
    if case == "no keys":
        config["CF_ACCESS_CERTS_URL"] = "https://unreachable.example/certs"
    app = make_app(**config)
    tokens = {
        "no token": {},
        "expired": bearer(issuer.user_token("a@example.com", expired=True)),
        "not in group": bearer(issuer.user_token("bob@example.com", ["Staff"])),
        "no keys": bearer(issuer.user_token("a@example.com")),
    }
    redirects = mode == "redirect" and status == 401
    assert_vary_is_complete(
        flask_sender(app, "/admin", tokens[case]), reason, status, redirects=redirects
    )


def ok_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """An app that sets no Cache-Control."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def own_cache_control_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """An app that says how its answer may be cached."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("cache-control", "max-age=60")])
    return [b"ok"]


def guard(
    issuer: AccessIssuer, clock: FrozenClock, app: WSGIApplication = ok_app, **options: Any
) -> CloudflareAccessMiddleware:
    return CloudflareAccessMiddleware(
        app,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        rules={"/admin": ["Admins"]},
        public_prefixes=["/static"],
        **options,
        background=run_inline,
    )


@pytest.mark.parametrize("mode", ["status", "redirect"])
@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [("no token", 401, Reason.MISSING_TOKEN), ("not in group", 403, Reason.NOT_IN_GROUP)],
)
def test_middleware_refusals_name_every_header_they_vary_on(
    issuer: AccessIssuer, clock: FrozenClock, mode: str, case: str, status: int, reason: Reason
) -> None:
    """The middleware's refusals and login redirects name what they vary on too."""
    middleware = guard(issuer, clock, unauthorized=mode)
    token = {} if case == "no token" else bearer(issuer.user_token("bob@example.com", ["Staff"]))

    def send(headers: dict[str, str]) -> tuple[TestResponse, list[Reason]]:
        with capture_access(middleware) as captured:
            response = Client(middleware).get("/admin/x", headers={**token, **headers})
        return response, captured.reasons

    redirects = mode == "redirect" and status == 401
    assert_vary_is_complete(send, reason, status, redirects=redirects)


# -- admitted answers ------------------------------------------------------------


def test_admitted_answers_are_private(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """A protected view's answer is Cache-Control: private; a public one is left alone."""
    app = make_app()
    client = app.test_client()
    token = bearer(issuer.user_token("ada@example.com", ["Admins"]))
    for path in ("/", "/admin", "/humans", "/claims"):
        response = client.get(path, headers=token)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private", path
    assert "Cache-Control" not in client.get("/open", headers=token).headers
    assert "Cache-Control" not in client.get("/open").headers


def test_a_views_own_cache_control_is_kept(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """A view (or the app's after_request) that sets Cache-Control keeps its own."""
    app = make_app()

    @app.get("/cached")
    @require_access
    def cached() -> tuple[str, dict[str, str]]:
        return "x", {"Cache-Control": "private, max-age=60"}

    @app.get("/hooked")
    @require_access
    def hooked() -> str:
        return "x"

    @app.after_request
    def no_store_on_hooked(response: Any) -> Any:
        if (
            response.status_code == 200
            and response.get_data() == b"x"
            and not response.cache_control
        ):
            response.headers["Cache-Control"] = "no-store"
        return response

    token = bearer(issuer.user_token("ada@example.com"))
    client = app.test_client()
    assert client.get("/cached", headers=token).headers["Cache-Control"] == "private, max-age=60"
    assert client.get("/hooked", headers=token).headers["Cache-Control"] == "no-store"


def test_a_middleware_inside_the_app_keeps_its_cache_control(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """The header is added as the answer leaves the app: a WSGI middleware the app
    put around its wsgi_app before init_app (inside the marking) keeps its own, and
    one put around it after (outside) gets a private answer."""
    app = Flask("layered")
    app.config.update(issuer.settings())

    @app.get("/page")
    @require_access
    def page() -> str:
        return "x"

    def no_store(wsgi_app: WSGIApplication) -> WSGIApplication:
        def app_with_no_store(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                return start_response(status, [*headers, ("Cache-Control", "no-store")], exc_info)

            return wsgi_app(environ, start)

        return app_with_no_store

    def seen(wsgi_app: WSGIApplication, headers_seen: list[str]) -> WSGIApplication:
        def app_seeing(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                headers_seen.extend(value for name, value in headers if name == "Cache-Control")
                return start_response(status, headers, exc_info)

            return wsgi_app(environ, start)

        return app_seeing

    app.wsgi_app = no_store(app.wsgi_app)  # type: ignore[method-assign,assignment]
    CloudflareAccess(app, background=run_inline)
    token = bearer(issuer.user_token("ada@example.com"))
    assert app.test_client().get("/page", headers=token).headers["Cache-Control"] == "no-store"

    plain = make_app()
    outside: list[str] = []
    plain.wsgi_app = seen(plain.wsgi_app, outside)  # type: ignore[method-assign,assignment]
    response = plain.test_client().get("/", headers=token)
    assert response.status_code == 200
    assert outside == ["private"]
    assert response.headers.getlist("Cache-Control") == ["private"]


def test_a_check_marks_only_its_own_request(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """A public request made while another, checked, request's context is still
    pushed in the same app context is not marked private: the mark is the request's."""
    app = make_app()
    token = bearer(issuer.user_token("ada@example.com"))
    with app.app_context(), app.test_request_context("/", headers=token):
        verify_access_in_request()
        public = app.test_client().get("/open")
    assert public.status_code == 200
    assert "Cache-Control" not in public.headers


def test_optional_answers_are_private(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """An optional route's answer depends on the token sent: private with one or without."""
    app = make_app()

    @app.get("/maybe")
    @require_access(optional=True)
    def maybe() -> str:
        return "x"

    client = app.test_client()
    token = bearer(issuer.user_token("ada@example.com"))
    assert client.get("/maybe").headers["Cache-Control"] == "private"
    assert client.get("/maybe", headers=token).headers["Cache-Control"] == "private"


def test_private_responses_can_be_turned_off(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """CF_ACCESS_PRIVATE_RESPONSES=False leaves admitted answers as the view made them."""
    app = make_app(CF_ACCESS_PRIVATE_RESPONSES=False)
    response = app.test_client().get("/", headers=bearer(issuer.user_token("ada@example.com")))
    assert response.status_code == 200
    assert "Cache-Control" not in response.headers


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("0", False), ("true", True)])
def test_private_responses_setting_from_the_environment(value: str, expected: bool) -> None:
    """The setting takes the environment's spellings of a flag."""
    settings = AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
            "CF_ACCESS_AUDIENCE": "aud",
            "CF_ACCESS_PRIVATE_RESPONSES": value,
        }
    )
    assert settings.private_responses is expected


@pytest.mark.parametrize("value", ["yes", None, 1, "private"])
def test_private_responses_setting_is_validated(value: object) -> None:
    """Anything but a flag fails at start-up, naming the key."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_PRIVATE_RESPONSES"):
        AccessSettings.from_mapping(
            {
                "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
                "CF_ACCESS_AUDIENCE": "aud",
                "CF_ACCESS_PRIVATE_RESPONSES": value,
            }
        )


def test_middleware_admitted_answers_are_private(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """The middleware marks what it admits private, leaves public paths and the app's own
    Cache-Control alone, and can be told not to."""
    token = bearer(issuer.user_token("ada@example.com", ["Admins"]))
    client = Client(guard(issuer, clock))
    for path in ("/", "/admin/x"):
        response = client.get(path, headers=token)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private"
    assert "Cache-Control" not in client.get("/static/app.css").headers
    own = Client(guard(issuer, clock, own_cache_control_app)).get("/", headers=token)
    assert own.headers.getlist("Cache-Control") == ["max-age=60"]
    off = Client(guard(issuer, clock, private_responses=False)).get("/", headers=token)
    assert "Cache-Control" not in off.headers
