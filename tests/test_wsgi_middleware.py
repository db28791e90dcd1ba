"""The WSGI middleware: any application behind Cloudflare Access, identity passed on."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict

import pytest
import requests
import responses
from flask import Flask, request
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import Client, TestResponse

from examples.plain_wsgi_app import make_app as make_example_app
from flask_cf_access import (
    AccessIdentity,
    AccessUnavailable,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    Reason,
    require_access,
)
from flask_cf_access._core.verifier import TokenVerifier
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .support import FrozenClock, bearer, outcome

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class Downstream:
    """A plain WSGI application that remembers the environ it was called with."""

    def __init__(self) -> None:
        self.environ: WSGIEnvironment | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.environ = dict(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"downstream"]

    @property
    def seen(self) -> WSGIEnvironment:
        assert self.environ is not None, "the request did not reach the application"
        return self.environ


Factory = Callable[..., CloudflareAccessMiddleware]


@pytest.fixture
def downstream() -> Downstream:
    """The protected application."""
    return Downstream()


@pytest.fixture
def make_middleware(downstream: Downstream, issuer: AccessIssuer, clock: FrozenClock) -> Factory:
    """Build the middleware around ``downstream``, trusting the stand-in team in-process."""

    def factory(**options: Any) -> CloudflareAccessMiddleware:
        return CloudflareAccessMiddleware(
            downstream,
            team_domain=issuer.team_domain,
            audience=issuer.audience,
            session=issuer.session(),
            clock=clock,
            **options,
            background=run_inline,
        )

    return factory


def get(app: WSGIApplication, path: str, token: str | None = None, **kwargs: Any) -> TestResponse:
    """GET ``path`` exactly as given (as ``PATH_INFO``), with the token if any."""
    headers = {**(bearer(token) if token is not None else {}), **kwargs.pop("headers", {})}
    overrides = {"PATH_INFO": path, **kwargs.pop("environ_overrides", {})}
    return Client(app).get(path, headers=headers, environ_overrides=overrides, **kwargs)


def identity_calls(middleware: CloudflareAccessMiddleware, issuer: AccessIssuer) -> int:
    """How often the stand-in team's get-identity was asked, through this middleware."""
    session = middleware._checker.identity_endpoint._session
    adapter: Any = session.get_adapter(issuer.identity_url)
    return int(adapter.calls.get("/cdn-cgi/access/get-identity", 0))


# -- admitting and refusing ------------------------------------------------


def test_user_admitted_with_identity_in_environ(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """A verified user reaches the app with REMOTE_USER, the identity and the claims."""
    response = get(make_middleware(), "/", issuer.user_token("ada@example.com"))
    assert response.status_code == 200
    assert response.get_data() == b"downstream"
    seen = downstream.seen
    assert seen["REMOTE_USER"] == "ada@example.com"
    assert isinstance(seen["cf_access.identity"], AccessIdentity)
    assert seen["cf_access.identity"].email == "ada@example.com"
    assert seen["cf_access.claims"]["email"] == "ada@example.com"
    assert seen["cf_access.claims"] is seen["cf_access.identity"].claims


def test_service_token_remote_user_is_its_client_id(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """A service token's REMOTE_USER is its common_name."""
    response = get(make_middleware(), "/", issuer.service_token("ci.access"))
    assert response.status_code == 200
    assert downstream.seen["REMOTE_USER"] == "ci.access"
    assert downstream.seen["cf_access.identity"].is_service_token


def test_cookie_token_admitted(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """Browsers' CF_Authorization cookie is read as the extension reads it."""
    client = Client(make_middleware())
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    assert client.get("/").status_code == 200
    assert downstream.seen["REMOTE_USER"] == "ada@example.com"


@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-token", "a.b.c", "x" * 20_000, "\xff\xfe.\x00.\x01", "é.é.é"],
    ids=["none", "empty", "garbage", "three-dots", "huge", "latin1", "non-ascii"],
)
def test_missing_or_bad_token_is_401(
    make_middleware: Factory, downstream: Downstream, token: str | None
) -> None:
    """No token or a malformed one: 401, never 500, and the app is not called."""
    with capture_access() as captured:
        response = get(make_middleware(), "/", token)
    assert response.status_code == 401
    expected = {None: Reason.MISSING_TOKEN, "": Reason.MISSING_TOKEN}.get(
        token, Reason.TOKEN_TOO_LARGE if token and len(token) > 10_000 else Reason.MALFORMED_TOKEN
    )
    assert captured.reasons == [expected]
    assert downstream.environ is None


def test_expired_and_foreign_tokens_are_401(
    make_middleware: Factory, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Tokens of another team, and tokens past their expiry, are refused."""
    middleware = make_middleware()
    stranger = AccessIssuer(issuer.team_domain, issuer.audience, clock=clock)
    assert outcome(middleware, stranger.user_token("eve@example.com"), "/") == (
        401,
        Reason.UNKNOWN_KID,
    )
    token = issuer.user_token("ada@example.com")
    assert get(middleware, "/", token).status_code == 200
    clock.advance(2 * 24 * 3600)
    assert outcome(middleware, token, "/") == (401, Reason.EXPIRED)


def test_refusal_body_names_no_reason_and_is_logged_once(
    make_middleware: Factory, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """The body is werkzeug's own, without reason or token; one warning names the reason."""
    token = issuer.user_token("bob@example.com", ["Staff"])
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"), capture_access() as captured:
        response = get(make_middleware(rules={"/admin": ["Admins"]}), "/admin/x", token)
    body = response.get_data(as_text=True)
    assert response.status_code == 403
    assert captured.reasons == [Reason.NOT_IN_GROUP]
    assert "Forbidden" in body
    assert "not_in_group" not in body
    assert token not in body
    assert [record.getMessage() for record in caplog.records] == [
        "Cloudflare Access refused GET /admin/x: 403 not_in_group"
    ]
    assert token not in caplog.text


def test_service_tokens_refused_when_not_allowed(
    make_middleware: Factory, issuer: AccessIssuer
) -> None:
    """allow_service_tokens=False answers 403 to machines, users still pass."""
    middleware = make_middleware(allow_service_tokens=False)
    assert outcome(middleware, issuer.service_token(), "/") == (403, Reason.SERVICE_TOKEN_REFUSED)
    assert get(middleware, "/", issuer.user_token("ada@example.com")).status_code == 200


def test_503_when_keys_cannot_be_had(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """With the team's certs failing, protected paths answer 503 and public ones work."""
    with responses.RequestsMock() as mock:
        mock.get(issuer.certs_url, status=500)
        middleware = CloudflareAccessMiddleware(
            Downstream(),
            team_domain=issuer.team_domain,
            audience=issuer.audience,
            session=requests.Session(),
            clock=clock,
            public_paths=["/healthz"],
            background=run_inline,
        )
        assert len(mock.calls) == 1  # loaded on construction, as init_app does
        assert outcome(middleware, issuer.user_token("ada@example.com"), "/") == (
            503,
            Reason.KEYS_UNAVAILABLE,
        )
        assert get(middleware, "/healthz").status_code == 200


# -- public paths ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/static", "/static/app.css", "/static/a/b.js"])
def test_public_paths_open_without_token(
    make_middleware: Factory, downstream: Downstream, path: str
) -> None:
    """Exact public paths, and paths below a public prefix, need no token."""
    middleware = make_middleware(public_paths=["/healthz"], public_prefixes=["/static/"])
    assert get(middleware, path).status_code == 200
    assert "REMOTE_USER" not in downstream.seen
    assert "cf_access.identity" not in downstream.seen


@pytest.mark.parametrize(
    "path",
    [
        "/healthzx",
        "/healthz/",
        "/healthz/x",
        "/Healthz",
        "//healthz",
        "/staticx",
        "/static-admin",
        "/",
        "",
    ],
)
def test_lookalike_paths_not_public(make_middleware: Factory, path: str) -> None:
    """A public path opens nothing but itself: lookalikes need a token."""
    middleware = make_middleware(public_paths=["/healthz"], public_prefixes=["/static"])
    assert outcome(middleware, None, path) == (401, Reason.MISSING_TOKEN)


@given(st.text(alphabet="/.azhst", max_size=24))
def test_public_only_what_was_configured(path: str) -> None:
    """Whatever the path, it is public only if it is one, or below one without dot segments."""
    middleware = CloudflareAccessMiddleware(
        Downstream(),
        team_domain="t.cloudflareaccess.com",
        audience="aud",
        load_keys_on_init=False,
        public_paths=["/hz"],
        public_prefixes=["/s"],
        background=run_inline,
    )
    if middleware.is_public(path):
        below = path == "/s" or path.startswith("/s/")
        assert path == "/hz" or (below and not {".", ".."} & set(path.split("/")))


# -- path rules ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/users", "//admin", "/admin//users"])
def test_group_rule_enforced_on_every_spelling(
    make_middleware: Factory, issuer: AccessIssuer, path: str
) -> None:
    """Paths under a rule need its group, however the path is spelled."""
    middleware = make_middleware(rules={"/admin": ["Admins"]})
    assert (
        get(middleware, path, issuer.user_token("ada@example.com", ["Admins"])).status_code == 200
    )
    assert outcome(middleware, issuer.user_token("bob@example.com", ["Staff"]), path) == (
        403,
        Reason.NOT_IN_GROUP,
    )
    assert outcome(middleware, issuer.service_token(), path) == (403, Reason.NOT_IN_GROUP)


def test_rule_matches_whole_segments(make_middleware: Factory, issuer: AccessIssuer) -> None:
    """/admin does not cover /administrator; paths outside rules need only a token."""
    middleware = make_middleware(rules={"/admin": "Admins"})
    token = issuer.user_token("bob@example.com", ["Staff"])
    assert get(middleware, "/administrator", token).status_code == 200
    assert get(middleware, "/", token).status_code == 200


def test_longest_prefix_wins(make_middleware: Factory, issuer: AccessIssuer) -> None:
    """The most specific rule decides, and may ask for other groups or none."""
    middleware = make_middleware(
        rules={
            "/admin": ["Admins"],
            "/admin/reports": ["Auditors"],
            "/admin/help": [],
        }
    )
    admin = issuer.user_token("ada@example.com", ["Admins"])
    auditor = issuer.user_token("aud@example.com", ["Auditors"])
    assert get(middleware, "/admin/users", admin).status_code == 200
    assert outcome(middleware, auditor, "/admin/users") == (403, Reason.NOT_IN_GROUP)
    assert get(middleware, "/admin/reports/q1", auditor).status_code == 200
    assert outcome(middleware, admin, "/admin/reports/q1") == (403, Reason.NOT_IN_GROUP)
    assert get(middleware, "/admin/help", auditor).status_code == 200
    assert middleware.groups_for("/admin/reports") == ("Auditors",)


def test_group_rule_401_when_identity_endpoint_refuses_the_token(
    make_middleware: Factory, issuer: AccessIssuer
) -> None:
    """When the groups must be fetched and get-identity refuses the token (a 4xx: the
    stand-in knows no such user), the answer is 401 identity_refused."""
    middleware = make_middleware(rules={"/admin": ["Admins"]})
    unknown = issuer.mint({"email": "ghost@example.com", "sub": "ghost"})
    assert outcome(middleware, unknown, "/admin") == (401, Reason.IDENTITY_REFUSED)
    assert get(middleware, "/", unknown).status_code == 200


def test_groups_fetched_only_when_needed(make_middleware: Factory, issuer: AccessIssuer) -> None:
    """Without a rule or header that needs them, get-identity is never asked."""
    plain = make_middleware(rules={"/admin": ["Admins"]}, headers={"X-Auth-Email": "email"})
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert get(plain, "/", token).status_code == 200
    assert identity_calls(plain, issuer) == 0
    assert get(plain, "/admin", token).status_code == 200
    assert identity_calls(plain, issuer) == 1
    with_groups = make_middleware(headers={"X-Auth-Groups": "groups"})
    assert get(with_groups, "/", token).status_code == 200
    assert identity_calls(with_groups, issuer) == 1


# -- identity headers ------------------------------------------------------

HEADERS = {
    "X-Auth-Email": "email",
    "X-Auth-User": "name",
    "X-Auth-Groups": "groups",
    "X-Auth-Group-Ids": "group_ids",
    "X-Auth-Country": "country",
    "X-Auth-Department": "custom.department",
}


def test_identity_headers_as_configured(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """Each mapped header carries its claim, groups comma-joined, SAML attributes included."""
    token = issuer.user_token("ada@example.com", ["Admins", "Staff"], custom={"department": "R&D"})
    assert get(make_middleware(headers=HEADERS), "/", token).status_code == 200
    seen = downstream.seen
    assert seen["HTTP_X_AUTH_EMAIL"] == "ada@example.com"
    assert seen["HTTP_X_AUTH_USER"] == "ada@example.com"
    assert seen["HTTP_X_AUTH_GROUPS"] == "Admins,Staff"
    assert (
        seen["HTTP_X_AUTH_GROUP_IDS"] == f"{issuer.group_id('Admins')},{issuer.group_id('Staff')}"
    )
    assert seen["HTTP_X_AUTH_COUNTRY"] == "XX"
    assert seen["HTTP_X_AUTH_DEPARTMENT"] == "R&D"


def test_service_token_headers(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """A service token has a name and no groups; absent claims leave headers out."""
    assert get(make_middleware(headers=HEADERS), "/", issuer.service_token("ci")).status_code == 200
    seen = downstream.seen
    assert seen["HTTP_X_AUTH_USER"] == "ci"
    assert seen["HTTP_X_AUTH_GROUPS"] == ""
    assert "HTTP_X_AUTH_EMAIL" not in seen
    assert "HTTP_X_AUTH_DEPARTMENT" not in seen


@pytest.mark.parametrize(
    ("custom", "groups"),
    [
        ({"department": "R&D\r\nX-Admin: yes"}, ["Staff"]),
        ({"department": "line\u2028break"}, ["Staff"]),
        ({"department": {"nested": "object"}}, ["Staff"]),
        ({"department": ["a", "b,c"]}, ["Staff"]),
    ],
    ids=["crlf", "line-separator", "object", "comma-in-item"],
)
def test_unsafe_values_leave_the_header_out(
    make_middleware: Factory,
    downstream: Downstream,
    issuer: AccessIssuer,
    caplog: pytest.LogCaptureFixture,
    custom: dict[str, Any],
    groups: list[str],
) -> None:
    """A value that cannot be sent safely is not sent, and that is logged."""
    token = issuer.user_token("ada@example.com", groups, groups_in_token=True, custom=custom)
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        assert get(make_middleware(headers=HEADERS), "/", token).status_code == 200
    assert "HTTP_X_AUTH_DEPARTMENT" not in downstream.seen
    assert downstream.seen["HTTP_X_AUTH_GROUPS"] == "Staff"
    assert "HTTP_X_AUTH_DEPARTMENT" in caplog.text


def test_group_name_with_comma_leaves_groups_out(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """Groups are comma-joined, so a group named with a comma cannot be passed on."""
    token = issuer.user_token("ada@example.com", ["Staff", "R&D, Berlin"], groups_in_token=True)
    assert get(make_middleware(headers=HEADERS), "/", token).status_code == 200
    assert "HTTP_X_AUTH_GROUPS" not in downstream.seen
    assert downstream.seen["HTTP_X_AUTH_EMAIL"] == "ada@example.com"


def test_non_ascii_values_passed_as_wsgi_strings(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer
) -> None:
    """Text reaches the app as UTF-8 bytes in a latin-1 string, as PEP 3333 has it."""
    token = issuer.user_token("josé@example.com", custom={"department": "Zürich"})
    assert get(make_middleware(headers=HEADERS), "/", token).status_code == 200
    seen = downstream.seen
    assert seen["REMOTE_USER"].encode("latin-1").decode("utf-8") == "josé@example.com"
    assert seen["HTTP_X_AUTH_DEPARTMENT"].encode("latin-1").decode("utf-8") == "Zürich"


# -- spoofing --------------------------------------------------------------

SPOOFED = {
    "X-Auth-Email": "mallory@example.com",
    "X_Auth_Groups": "Admins",
    "X-Auth-Department": "Board",
    "Cf-Access-Authenticated-User-Email": "mallory@example.com",
}


@pytest.mark.parametrize("path", ["/healthz", "/"])
def test_spoofed_identity_stripped(
    make_middleware: Factory, downstream: Downstream, issuer: AccessIssuer, path: str
) -> None:
    """Client copies of the identity headers and REMOTE_USER never reach the app."""
    middleware = make_middleware(headers=HEADERS, public_paths=["/healthz"])
    token = issuer.user_token("ada@example.com", ["Staff"])
    overrides = {
        "REMOTE_USER": "mallory",
        "cf_access.claims": {"email": "mallory@example.com"},
        "HTTP_X_AUTH_USER": "mallory",
    }
    response = get(middleware, path, token, headers=SPOOFED, environ_overrides=overrides)
    assert response.status_code == 200
    seen = downstream.seen
    assert "HTTP_CF_ACCESS_AUTHENTICATED_USER_EMAIL" not in seen
    if path == "/healthz":
        for key in ("REMOTE_USER", "cf_access.claims", "HTTP_X_AUTH_EMAIL", "HTTP_X_AUTH_USER"):
            assert key not in seen
        assert "HTTP_X_AUTH_GROUPS" not in seen
        assert "HTTP_X_AUTH_DEPARTMENT" not in seen
    else:
        assert seen["REMOTE_USER"] == "ada@example.com"
        assert seen["HTTP_X_AUTH_EMAIL"] == "ada@example.com"
        assert seen["HTTP_X_AUTH_GROUPS"] == "Staff"
        assert "HTTP_X_AUTH_DEPARTMENT" not in seen
        assert seen["cf_access.claims"]["email"] == "ada@example.com"


def test_refused_request_strips_nothing_it_should_not(
    make_middleware: Factory, downstream: Downstream
) -> None:
    """A spoofed e-mail header alone is no token: 401."""
    with capture_access() as captured:
        response = get(make_middleware(headers=HEADERS), "/", headers=SPOOFED)
    assert response.status_code == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]
    assert downstream.environ is None


# -- configuration ---------------------------------------------------------


def test_settings_validated_as_the_extension_does(downstream: Downstream) -> None:
    """Keyword settings fail with the same messages as CF_ACCESS_* keys."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_AUDIENCE is required"):
        CloudflareAccessMiddleware(
            downstream, team_domain="acme.cloudflareaccess.com", background=run_inline
        )
    with pytest.raises(ConfigurationError, match="CF_ACCESS_LEEWAY"):
        CloudflareAccessMiddleware(
            downstream,
            team_domain="acme.cloudflareaccess.com",
            audience="aud",
            leeway="thirty",
            background=run_inline,
        )
    with pytest.raises(ConfigurationError, match="CF_ACCESS_CACHE"):
        CloudflareAccessMiddleware(
            downstream,
            team_domain="acme.cloudflareaccess.com",
            audience="aud",
            cache={},  # type: ignore[arg-type]  # deliberately not a cache, background=run_inline
        )
    with pytest.raises(TypeError, match="audiance"):
        CloudflareAccessMiddleware(
            downstream, team_domain="acme.cloudflareaccess.com", audiance="a", background=run_inline
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"public_paths": ["healthz"]}, "public_paths"),
        ({"public_paths": ["/a/../b"]}, "public_paths"),
        ({"public_prefixes": ["/"]}, "every path would be open"),
        ({"rules": {"admin": ["Admins"]}}, "rules"),
        ({"rules": {"/admin": [""]}}, "rules"),
        ({"rules": {"/admin": ["A"], "/admin/": ["B"]}}, "twice"),
        ({"headers": {"X Auth": "email"}}, "valid header name"),
        ({"headers": {"X-Auth": "custom."}}, "must name a claim"),
        ({"headers": {"Cf-Access-Jwt-Assertion": "email"}}, "carries the token"),
        ({"headers": {"X-Auth": "email", "x-auth": "sub"}}, "twice"),
    ],
)
def test_bad_options_fail_at_start_up(
    make_middleware: Factory, options: dict[str, Any], message: str
) -> None:
    """Invalid paths, rules and header mappings fail at construction, naming the option."""
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        make_middleware(load_keys_on_init=False, **options)


def test_from_mapping(downstream: Downstream, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A mapping of CF_ACCESS_* keys, e.g. os.environ, configures the middleware."""
    middleware = CloudflareAccessMiddleware.from_mapping(
        issuer.settings(CF_ACCESS_LEEWAY=0),
        downstream,
        session=issuer.session(),
        clock=clock,
        rules={"/admin": ["Admins"]},
        background=run_inline,
    )
    assert middleware._checker.settings.leeway == 0
    assert get(middleware, "/", issuer.user_token("ada@example.com")).status_code == 200
    assert outcome(middleware, issuer.user_token("ada@example.com"), "/admin") == (
        403,
        Reason.NOT_IN_GROUP,
    )


def test_gate_and_settings_not_both(downstream: Downstream, issuer: AccessIssuer) -> None:
    """A shared checker brings its own settings, cache, session and clock."""
    middleware = CloudflareAccessMiddleware(
        downstream, load_keys_on_init=False, **_settings_kwargs(issuer), background=run_inline
    )
    with pytest.raises(TypeError, match="not both"):
        CloudflareAccessMiddleware(
            downstream, _checker=middleware._checker, session=issuer.session()
        )


class _TeamSettings(TypedDict):
    team_domain: str
    audience: str


def _settings_kwargs(issuer: AccessIssuer) -> _TeamSettings:
    return {"team_domain": issuer.team_domain, "audience": issuer.audience}


# -- around a Flask app ----------------------------------------------------


def flask_app(issuer: AccessIssuer) -> Flask:
    app = Flask("wrapped")
    app.config.update(issuer.settings())

    @app.get("/")
    def whoami() -> dict[str, Any]:
        return {
            "remote_user": request.remote_user,
            "email": request.headers.get("X-Auth-Email"),
            "spoofed": request.headers.get("Cf-Access-Authenticated-User-Email"),
        }

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        return {"remote_user": request.remote_user, "email": request.headers.get("X-Auth-Email")}

    return app


def test_around_a_flask_app(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """from_flask reads app.config; views see the verified user, never the spoofed one."""
    app = flask_app(issuer)
    app.wsgi_app = CloudflareAccessMiddleware.from_flask(  # type: ignore[method-assign]
        app,
        session=issuer.session(),
        clock=clock,
        public_paths=["/healthz"],
        headers={"X-Auth-Email": "email"},
    )
    client = app.test_client()
    assert outcome(app, None) == (401, Reason.MISSING_TOKEN)
    token = issuer.user_token("ada@example.com")
    response = client.get("/", headers={**bearer(token), **SPOOFED})
    assert response.json == {
        "remote_user": "ada@example.com",
        "email": "ada@example.com",
        "spoofed": None,
    }
    health = client.get("/healthz", headers=SPOOFED, environ_overrides={"REMOTE_USER": "m"})
    assert health.json == {"remote_user": None, "email": None}


def test_from_flask_shares_the_extension_gate(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """After init_app the middleware uses the extension's checker: one key set, one path."""
    app = flask_app(issuer)
    CloudflareAccess(app, session=issuer.session(), clock=clock, background=run_inline)
    middleware = CloudflareAccessMiddleware.from_flask(app)
    assert middleware._checker is app.extensions["cf_access"].checker
    with pytest.raises(TypeError, match="not both"):
        CloudflareAccessMiddleware.from_flask(app, clock=clock)


def test_checker_keyword_and_attribute_are_deprecated(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """checker= (a private type) still shares a checker, and .checker still reads it,
    each with a DeprecationWarning pointing to from_flask."""
    app = flask_app(issuer)
    CloudflareAccess(app, session=issuer.session(), clock=clock, background=run_inline)
    shared = CloudflareAccessMiddleware.from_flask(app)
    with pytest.warns(DeprecationWarning, match="from_flask"):
        middleware = CloudflareAccessMiddleware(app.wsgi_app, checker=shared._checker)
    assert middleware._checker is shared._checker
    with pytest.warns(DeprecationWarning, match="internal"):
        assert middleware.checker is shared._checker


def test_one_verification_path(
    issuer: AccessIssuer, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Middleware and decorators both verify through TokenVerifier.verify_entry, nothing else."""
    app = flask_app(issuer)
    CloudflareAccess(app, session=issuer.session(), clock=clock, background=run_inline)

    @app.get("/decorated")
    @require_access
    def decorated() -> str:
        return "ok"

    middleware = CloudflareAccessMiddleware.from_flask(app, public_paths=["/decorated"])
    app.wsgi_app = middleware  # type: ignore[method-assign]
    checked: list[str] = []
    original = TokenVerifier.verify_entry

    def spy(self: TokenVerifier, token: str) -> Any:
        checked.append(token)
        return original(self, token)

    monkeypatch.setattr(TokenVerifier, "verify_entry", spy)
    token = issuer.user_token("ada@example.com")
    client = app.test_client()
    assert client.get("/", headers=bearer(token)).status_code == 200
    assert checked == [token]
    assert client.get("/decorated", headers=bearer(token)).status_code == 200
    assert checked == [token, token]

    def unavailable(token: str) -> NoReturn:
        raise AccessUnavailable(Reason.KEYS_UNAVAILABLE)

    monkeypatch.setattr(middleware._checker.verifier, "verify_entry", unavailable)
    assert outcome(app, token) == (503, Reason.KEYS_UNAVAILABLE)
    assert outcome(app, token, "/decorated") == (503, Reason.KEYS_UNAVAILABLE)


# -- the example --------------------------------------------------------------


def test_plain_wsgi_example(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """The example app: health open, identity shown, /admin for Admins only."""
    app = make_example_app(issuer.settings(), session=issuer.session(), clock=clock)
    assert get(app, "/healthz").get_data() == b"ok"
    assert outcome(app, None, "/") == (401, Reason.MISSING_TOKEN)
    admin = issuer.user_token("ada@example.com", ["Admins"], custom={"department": "R&D"})
    response = get(app, "/admin", admin, headers={"X-Auth-Email": "mallory@example.com"})
    assert response.json == {
        "user": "ada@example.com",
        "email": "ada@example.com",
        "groups": ["Admins"],
        "department": "R&D",
    }
    assert outcome(app, issuer.user_token("bob@example.com", ["Staff"]), "/admin") == (
        403,
        Reason.NOT_IN_GROUP,
    )
    response = get(app, "/", issuer.service_token("ci"))
    assert response.json is not None
    assert response.json["user"] == "ci"
