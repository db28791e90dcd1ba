"""Several Access applications in front of one origin (``CF_ACCESS_APPLICATIONS``)."""

from __future__ import annotations

import json
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from flask import Blueprint, Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from flask_cf_access import (
    AccessBadRequest,
    AccessSettings,
    ApplicationSettings,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    Reason,
    access_guard,
    current_identity,
    require,
    require_access,
)
from flask_cf_access._core.applications import ApplicationMap
from flask_cf_access.cli import cli
from flask_cf_access.testing import (
    AccessIssuer,
    EdgeApplication,
    LocalEdge,
    assert_routes_protected,
    capture_access,
    run_inline,
)

from .example_runs import READY, Running, clean_environ, example_command, printed_tries
from .support import FrozenClock, outcome, served

AUD_PORTAL = "e1" * 32
SERVICE_ID, SERVICE_SECRET = "reports.access", "5ec7" * 16
EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"
GOLDEN = Path(__file__).parent / "golden"


def applications(admin_aud: str) -> dict[str, Any]:
    """Everyone's portal on /, the admin application on /admin."""
    return {
        "portal": {"audience": AUD_PORTAL, "paths": ["/"]},
        "admin": {"audience": admin_aud, "paths": ["/admin"]},
    }


def two_application_app(issuer: AccessIssuer, clock: FrozenClock, **config: Any) -> Flask:
    """A portal on /, an admin blueprint on /admin, and a catch-all that echoes the path."""
    app = Flask("two_applications")
    app.config.update(
        issuer.settings(
            **{
                "CF_ACCESS_AUDIENCE": None,
                "CF_ACCESS_APPLICATIONS": applications(issuer.audience),
                **config,
            }
        )
    )
    admin = Blueprint("admin", __name__, url_prefix="/admin")
    admin.before_request(access_guard(application="admin"))

    @admin.get("/")
    def dashboard() -> dict[str, Any]:
        return {"admin": current_identity.name}

    @app.get("/")
    @require_access
    def home() -> dict[str, Any]:
        return {"home": current_identity.name}

    @app.get("/humans")
    @require_access(allow_service_tokens=False)
    def humans() -> dict[str, Any]:
        return {"human": current_identity.name}

    @app.get("/<path:anything>")
    @require_access
    def anything(anything: str) -> dict[str, Any]:
        return {
            "path": request.environ["PATH_INFO"],
            "assertion": request.headers.get("Cf-Access-Jwt-Assertion"),
        }

    app.register_blueprint(admin)
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    return app


@pytest.fixture
def two_apps(issuer: AccessIssuer, clock: FrozenClock) -> Flask:
    """The two-application app, in process."""
    return two_application_app(issuer, clock)


# -- the setting ---------------------------------------------------------------------


def test_the_setting_is_read_with_every_aud_tag(issuer: AccessIssuer) -> None:
    """Each application with its tags, paths and hosts; the token check accepts them all."""
    settings = AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": issuer.team_domain,
            "CF_ACCESS_APPLICATIONS": json.dumps(
                {
                    "portal": {"audience": "aa,bb"},
                    "admin": {"audience": ["cc"], "paths": ["/admin"], "hosts": "Ops.Example:8443"},
                }
            ),
        }
    )
    assert settings.audience == ("aa", "bb", "cc")
    assert settings.applications == (
        ApplicationSettings("portal", ("aa", "bb"), ("/",)),
        ApplicationSettings("admin", ("cc",), ("/admin",), frozenset({"ops.example"})),
    )
    single = AccessSettings.from_mapping(issuer.settings())
    assert single.applications == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "must map each application"),
        ({"a": {"audience": "x", "path": ["/"]}}, "may only have"),
        ({"a": {"paths": ["/"]}}, r"\['audience'\] is required"),
        ({"a": {"audience": "x", "paths": ["/a/../b"]}}, "is not a path"),
        ({"a": {"audience": "x", "paths": ["admin"]}}, "is not a path"),
        ({"a": {"audience": "x", "paths": []}}, "non-empty list"),
        ({"a": {"audience": "x"}, "b": {"audience": "x", "paths": ["/b"]}}, "also that of 'a'"),
        (
            {
                "a": {"audience": "x", "paths": ["/Admin"]},
                "b": {"audience": "y", "paths": ["/admin"]},
            },
            "also covered",
        ),
        ({"a": {"audience": "x", "hosts": ["a/b"]}}, "host names"),
    ],
)
def test_a_bad_application_map_fails_at_start_up(
    issuer: AccessIssuer, value: Any, message: str
) -> None:
    """Each mistake is a ConfigurationError naming the application and what is wrong."""
    config = issuer.settings(CF_ACCESS_AUDIENCE=None, CF_ACCESS_APPLICATIONS=value)
    with pytest.raises(ConfigurationError, match=message):
        AccessSettings.from_mapping(config)


def test_audience_and_applications_together_are_refused(issuer: AccessIssuer) -> None:
    """One of the two: the single AUD is the one-application case."""
    config = issuer.settings(CF_ACCESS_APPLICATIONS=applications(issuer.audience))
    with pytest.raises(ConfigurationError, match="both set"):
        AccessSettings.from_mapping(config)


# -- which application a path belongs to ------------------------------------------------

SEGMENTS = st.sampled_from(["admin", "Admin", "api", "x", "reports"])


def spell_segment(draw: st.DrawFn, segment: str) -> str:
    """``segment`` as another reader may still read it: case, ``;`` parameters,
    percent-encoded letters, a trailing dot."""
    letters = [
        f"%{ord(char):02X}"
        if draw(st.booleans())
        else char.swapcase()
        if draw(st.booleans())
        else char
        for char in segment
    ]
    spelled = "".join(letters)
    if draw(st.booleans()):
        spelled += ";jsessionid=1"
    if draw(st.booleans()):
        spelled += "."
    return spelled


@st.composite
def maps_and_paths(draw: st.DrawFn) -> tuple[ApplicationMap, str, str]:
    """An application map, a path in lower case, and a spelling of it."""
    prefixes = draw(
        st.lists(
            st.lists(SEGMENTS, max_size=3),
            min_size=1,
            max_size=4,
            unique_by=lambda p: tuple(s.lower() for s in p),
        )
    )
    apps = [
        ApplicationSettings(f"app{index}", (f"aud{index}",), ("/" + "/".join(prefix),))
        for index, prefix in enumerate(prefixes)
    ]
    path = [segment.lower() for segment in draw(st.lists(SEGMENTS, max_size=4))]
    spelled = "".join(
        ("//" if draw(st.booleans()) else "/") + spell_segment(draw, segment) for segment in path
    )
    return ApplicationMap(apps), "/" + "/".join(path), spelled or "/"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(case=maps_and_paths())
def test_a_spelling_is_never_judged_under_a_less_specific_application(
    case: tuple[ApplicationMap, str, str],
) -> None:
    """Whatever the map, a spelling of a path is judged under the application of the path
    itself (the most specific of its readings), or refused: never a laxer one."""
    application_map, path, spelling = case
    expected = application_map.application_for(None, path)
    judged: object
    try:
        judged = application_map.application_for(None, spelling)
    except AccessBadRequest as refused:
        judged = refused.reason
    assert judged in (expected, Reason.AMBIGUOUS_PATH)


def test_hosts_and_the_longest_path_choose_the_application() -> None:
    """A named host beats any host at the same path; a longer path beats both."""
    application_map = ApplicationMap(
        [
            ApplicationSettings("any", ("a",), ("/",)),
            ApplicationSettings("ops", ("o",), ("/",), frozenset({"ops.example"})),
            ApplicationSettings("admin", ("d",), ("/admin",)),
        ]
    )
    chosen = {
        (host, path): getattr(application_map.application_for(host, path), "name", None)
        for host in ("www.example", "OPS.example:443", None)
        for path in ("/", "/admin/x")
    }
    assert chosen == {
        ("www.example", "/"): "any",
        ("www.example", "/admin/x"): "admin",
        ("OPS.example:443", "/"): "ops",
        ("OPS.example:443", "/admin/x"): "admin",
        (None, "/"): "any",
        (None, "/admin/x"): "admin",
    }


# -- the Flask app -----------------------------------------------------------------------


def test_each_route_takes_only_its_applications_token(
    two_apps: Flask, issuer: AccessIssuer
) -> None:
    """The portal's token opens /, not /admin; the admin's /admin, not /; both open both."""
    portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    admin = issuer.user_token("ada@example.com", audience=issuer.audience)
    both = issuer.user_token("ada@example.com", audience=[AUD_PORTAL, issuer.audience])
    assert outcome(two_apps, portal, "/") == (200, None)
    assert outcome(two_apps, portal, "/admin/") == (403, Reason.WRONG_APPLICATION)
    assert outcome(two_apps, admin, "/admin/") == (200, None)
    assert outcome(two_apps, admin, "/") == (403, Reason.WRONG_APPLICATION)
    assert outcome(two_apps, both, "/") == (200, None)
    assert outcome(two_apps, both, "/admin/") == (200, None)
    stranger = issuer.user_token("ada@example.com", audience="somebody-else")
    assert outcome(two_apps, stranger, "/") == (401, Reason.INVALID_AUDIENCE)


ADMIN_SPELLINGS = [
    "/admin/x",
    "//admin/x",
    "/ADMIN/x",
    "/Admin/x",
    "/admin;jsessionid=1/x",
    "/admin./x",
    "/%61dmin/x",
    "/%2561dmin/x",
    "/%EF%BD%81dmin/x",  # a fullwidth "a"
    "/x/../admin/x",
    "/%2e%2e/admin/x",
    "/admin%2fx",
]


@pytest.mark.parametrize("spelling", ADMIN_SPELLINGS)
def test_the_portals_token_opens_no_spelling_of_admin(
    two_apps: Flask, issuer: AccessIssuer, spelling: str
) -> None:
    """Every spelling: 403 wrong_application, or 400 ambiguous_path; never the portal's 200."""
    portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    got = outcome(two_apps, portal, spelling)
    assert got in ((403, Reason.WRONG_APPLICATION), (400, Reason.AMBIGUOUS_PATH))


def test_a_path_under_no_application_takes_no_token(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """With applications on /app and /admin only, / opens to nobody (fail closed)."""
    app = two_application_app(
        issuer,
        clock,
        CF_ACCESS_APPLICATIONS={
            "app": {"audience": AUD_PORTAL, "paths": ["/app"]},
            "admin": {"audience": issuer.audience, "paths": ["/admin"]},
        },
    )
    portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    assert outcome(app, portal, "/") == (403, Reason.WRONG_APPLICATION)
    assert outcome(app, portal, "/app/x") == (200, None)


def test_a_browser_is_sent_to_sign_in_to_the_paths_application(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Redirect mode: no token, or the portal's on /admin, sends a browser to the admin
    application's login (kid), coming back to the same page: step-up."""
    app = two_application_app(issuer, clock, CF_ACCESS_UNAUTHORIZED="redirect")
    portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    client = Client(app)
    browser = {"Accept": "text/html"}
    for cookie, path, kid in (
        (portal, "/admin/?tab=1", issuer.audience),
        (None, "/admin/?tab=1", issuer.audience),
        (None, "/", AUD_PORTAL),
    ):
        if cookie:
            client.set_cookie("CF_Authorization", cookie)
        else:
            client.delete_cookie("CF_Authorization")
        with capture_access() as captured:
            answer = client.get(path, headers=browser)
        assert answer.status_code == 302
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query == {"kid": [kid], "redirect_url": [path]}
        assert captured.last.reason in (Reason.WRONG_APPLICATION, Reason.MISSING_TOKEN)
    client.set_cookie("CF_Authorization", portal)
    assert client.get("/admin/").status_code == 403  # not a browser: the refusal itself


def test_login_links_are_for_the_application_of_their_page(
    two_apps: Flask, issuer: AccessIssuer
) -> None:
    """cf_access.login_url(next) names the kid of the application ``next`` is under."""
    links = CloudflareAccess(
        background=run_inline
    )  # any instance: the app's settings are what count
    with two_apps.test_request_context("/admin/"):
        urls = (links.login_url(), links.login_url("/"), links.login_url("/ADMIN/x?y=1"))
    kids = [parse_qs(urlsplit(url).query)["kid"][0] for url in urls]
    assert kids == [issuer.audience, AUD_PORTAL, issuer.audience]


# -- explicit names -----------------------------------------------------------------------


def test_a_view_naming_another_application_fails_at_init_app(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """A view on /admin naming the portal: init_app refuses the app (routes registered first)."""
    app = Flask("contradiction")
    app.config.update(
        issuer.settings(CF_ACCESS_AUDIENCE=None, CF_ACCESS_APPLICATIONS=applications("b2"))
    )

    @app.get("/admin/users")
    @require_access(application="portal")
    def users() -> str:
        return "users"

    with pytest.raises(ConfigurationError, match=r"/admin/users \(users\): it names portal"):
        CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)


def test_a_route_registered_after_init_app_is_checked_before_the_first_request(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """A blueprint registered later naming the wrong application: no request is served."""
    app = Flask("later")
    app.config.update(
        issuer.settings(CF_ACCESS_AUDIENCE=None, CF_ACCESS_APPLICATIONS=applications("b2"))
    )
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    ops = Blueprint("ops", __name__, url_prefix="/ops")
    ops.before_request(access_guard(application="admin"))
    ops.add_url_rule("/", "index", lambda: "ops")
    app.register_blueprint(ops)
    app.testing = True
    with pytest.raises(ConfigurationError, match=r"/ops/ \(ops.index\): it names admin"):
        app.test_client().get("/ops/")


def test_a_name_without_applications_is_refused(app: Flask, issuer: AccessIssuer) -> None:
    """require(application=...) with a single CF_ACCESS_AUDIENCE: fails closed, audit flags it."""

    @app.get("/named")
    @require_access(application="admin")
    def named() -> str:
        return "named"

    assert outcome(app, issuer.user_token("ada@example.com"), "/named") == (
        403,
        Reason.WRONG_APPLICATION,
    )
    result = app.test_cli_runner().invoke(cli, ["routes", "--strict"])
    assert result.exit_code == 1
    assert "WRONG APPLICATION: /named (named): it names admin but its path falls under no" in (
        result.output
    )


def test_strict_audit_fails_on_a_route_under_no_application(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """routes --strict: a protected route no application covers is a problem."""
    app = two_application_app(
        issuer,
        clock,
        CF_ACCESS_APPLICATIONS={"admin": {"audience": issuer.audience, "paths": ["/admin"]}},
    )
    result = app.test_cli_runner().invoke(cli, ["routes", "--strict"])
    assert result.exit_code == 1
    assert "WRONG APPLICATION: /humans (humans): it needs a token but its path falls under no" in (
        result.output
    )
    rows = {line.split()[0]: line.split()[3] for line in result.output.splitlines()[1:6]}
    assert rows["/admin/"] == "admin"
    assert rows["/<path:anything>"] == "admin"  # its URLs below /admin
    with pytest.raises(AssertionError, match=r"/humans \(humans\): it needs a token but"):
        assert_routes_protected(app)


def test_verify_says_a_token_is_for_another_application(
    two_apps: Flask, issuer: AccessIssuer
) -> None:
    """flask cf-access verify --path judges the path's application as a request would."""
    portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    refused = two_apps.test_cli_runner().invoke(cli, ["verify", portal, "--path", "/admin/"])
    assert refused.exit_code == 1
    assert "Result: REFUSED (wrong_application)" in refused.output
    assert "The app answers 403." in refused.output
    accepted = two_apps.test_cli_runner().invoke(cli, ["verify", portal, "--path", "/humans"])
    assert accepted.exit_code == 0, accepted.output
    assert "Application: portal: the token is for it" in accepted.output


@pytest.fixture
def examples_on_path() -> Iterator[None]:
    """docs/examples importable."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("applications_app", None)


def test_the_docs_route_audit_is_what_routes_prints(examples_on_path: None) -> None:
    """docs/applications.rst shows tests/golden/routes-two-applications.txt: this output."""
    import applications_app

    app = applications_app.create_app(CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    result = app.test_cli_runner().invoke(cli, ["routes", "--strict"])
    assert result.exit_code == 0, result.output
    golden = (GOLDEN / "routes-two-applications.txt").read_text(encoding="utf-8")
    assert result.output == golden


# -- the WSGI middleware ------------------------------------------------------------------


def plain_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["REMOTE_USER"].encode()]


def test_the_middleware_takes_the_same_map(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """applications=... as a keyword: the portal's token refused on /admin, on every spelling."""
    middleware = CloudflareAccessMiddleware(
        plain_app,
        team_domain=issuer.team_domain,
        applications=applications(issuer.audience),
        rules={"/admin": require(application="admin")},
        session=issuer.session(),
        clock=clock,
        background=run_inline,
    )
    portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    admin = issuer.user_token("ada@example.com", audience=issuer.audience)
    assert outcome(middleware, portal, "/x") == (200, None)
    assert outcome(middleware, admin, "/admin/x") == (200, None)
    for spelling in ADMIN_SPELLINGS:
        assert outcome(middleware, portal, spelling) in (
            (403, Reason.WRONG_APPLICATION),
            (400, Reason.AMBIGUOUS_PATH),
        )


def test_a_middleware_rule_naming_another_application_is_refused(
    issuer: AccessIssuer,
) -> None:
    """rules={"/admin": require(application="portal")} contradicts the map."""
    with pytest.raises(ConfigurationError, match="names the application portal"):
        CloudflareAccessMiddleware.from_mapping(
            issuer.settings(
                CF_ACCESS_AUDIENCE=None,
                CF_ACCESS_APPLICATIONS=applications(issuer.audience),
                CF_ACCESS_LOAD_KEYS_ON_INIT=False,
            ),
            plain_app,
            rules={"/admin": require(application="portal")},
            background=run_inline,
        )


# -- over real HTTP, through the local edge -----------------------------------------------


def raw_get(port: int, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """``GET target`` sent byte for byte (no client normalises it); status and body."""
    lines = [f"GET {target} HTTP/1.0", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


class Deployment:
    """The two-application app behind two edges: one with both applications, and one
    where only the portal is configured (the admin application forgotten, or set up for
    another hostname), so that the app's own judgement is what stands."""

    def __init__(self, stack: ExitStack, issuer: AccessIssuer, clock: FrozenClock) -> None:
        self.issuer = issuer
        self.app = two_application_app(issuer, clock)
        self.origin = stack.enter_context(served(self.app))
        self.team = stack.enter_context(issuer.serve(sign_in=True))
        portal = EdgeApplication(
            "portal",
            AUD_PORTAL,
            paths=("/",),
            everyone=True,
            service_tokens={SERVICE_ID: SERVICE_SECRET},
        )
        admin = EdgeApplication(
            "admin", issuer.audience, paths=("/admin",), emails=frozenset({"root@example.com"})
        )
        self.edge = stack.enter_context(
            LocalEdge(issuer, self.origin, [portal, admin], login_origin=self.team.url)
        )
        self.lax_edge = stack.enter_context(LocalEdge(issuer, self.origin, [portal]))


@pytest.fixture
def deployment(issuer: AccessIssuer, clock: FrozenClock) -> Iterator[Deployment]:
    """Browser → edge → app, on 127.0.0.1."""
    with ExitStack() as stack:
        yield Deployment(stack, issuer, clock)


def session() -> requests.Session:
    browser = requests.Session()
    browser.trust_env = False
    return browser


@pytest.mark.parametrize("spelling", ADMIN_SPELLINGS)
def test_a_portal_session_is_refused_by_the_app_on_every_spelling_of_admin(
    deployment: Deployment, spelling: str
) -> None:
    """Through an edge that lets the portal's session onto /admin, the app refuses it:
    wrong_application (403), or 400 for a spelling the edge or the app cannot read one way."""
    portal = deployment.issuer.user_token("ada@example.com", audience=AUD_PORTAL)
    cookie = {"Cookie": f"CF_Authorization={portal}"}
    with capture_access() as captured:
        status, body = raw_get(deployment.lax_edge.port, spelling, cookie)
    assert status in (400, 403)
    assert b"ada@example.com" not in body
    if captured.denied:
        assert captured.last.reason in (Reason.WRONG_APPLICATION, Reason.AMBIGUOUS_PATH)
        assert captured.last.status == status
    else:  # the edge refused the spelling itself
        assert status == 400
    assert not captured.granted


def test_a_browser_signs_in_to_the_admin_application_and_comes_back(
    deployment: Deployment,
) -> None:
    """Through the edge: /admin/ sends the browser to the admin application's login
    (kid), the sign-in page sends it back, and the app admits its admin token."""
    edge, team = deployment.edge, deployment.team
    with session() as browser:
        portal = deployment.issuer.user_token("root@example.com", audience=AUD_PORTAL)
        sent_away = browser.get(
            edge.url + "/admin/?tab=1",
            cookies={"CF_Authorization": portal},
            allow_redirects=False,
            timeout=10,
        )
        login = sent_away.headers["Location"]
        assert parse_qs(urlsplit(login).query)["kid"] == [deployment.issuer.audience]
        back = browser.post(
            login,
            data={"email": "root@example.com", "groups": ""},
            headers={"Origin": team.url},
            allow_redirects=False,
            timeout=10,
        )
        assert back.headers["Location"] == edge.url + "/admin/?tab=1"
        cookie = {"CF_Authorization": back.cookies["CF_Authorization"]}
        with capture_access() as captured:
            admitted = browser.get(
                back.headers["Location"], cookies=cookie, allow_redirects=False, timeout=10
            )
    assert admitted.json() == {"admin": "root@example.com"}
    assert [record.path for record in captured.granted] == ["/admin/"]


def test_the_app_sends_a_portal_session_to_sign_in_to_admin(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Step-up at the origin: the portal's session on /admin is sent to the admin
    application's login, and the admin session it comes back with is admitted."""
    with ExitStack() as stack, session() as browser:
        team = stack.enter_context(issuer.serve(sign_in=True))
        app = two_application_app(
            issuer,
            clock,
            CF_ACCESS_UNAUTHORIZED="redirect",
            CF_ACCESS_CERTS_URL=team.certs_url,
            CF_ACCESS_IDENTITY_URL=team.identity_url,
        )
        origin = stack.enter_context(served(app))
        portal = issuer.user_token("ada@example.com", audience=AUD_PORTAL)
        html = {"Accept": "text/html"}
        with capture_access() as captured:
            sent_away = browser.get(
                origin + "/admin/",
                cookies={"CF_Authorization": portal},
                headers=html,
                allow_redirects=False,
                timeout=10,
            )
        assert captured.last.reason is Reason.WRONG_APPLICATION
        login = sent_away.headers["Location"]
        host = urlsplit(origin).netloc
        assert login == (
            f"{team.url}/cdn-cgi/access/login/{quote(host, safe=':')}"
            f"?kid={issuer.audience}&redirect_url=%2Fadmin%2F"
        )
        back = browser.post(
            login,
            data={"email": "ada@example.com", "groups": ""},
            headers={"Origin": team.url},
            allow_redirects=False,
            timeout=10,
        )
        cookie = {"CF_Authorization": back.cookies["CF_Authorization"]}
        admitted = browser.get(back.headers["Location"], cookies=cookie, timeout=10)
    assert admitted.json() == {"admin": "ada@example.com"}


def test_service_tokens_are_admitted_by_the_edge_and_judged_by_the_app(
    deployment: Deployment,
) -> None:
    """The portal's service token: the app admits it on /, refuses it on /humans (its own
    rule) and, past an edge that lets it onto /admin, there too (wrong_application)."""
    credentials = {"CF-Access-Client-Id": SERVICE_ID, "CF-Access-Client-Secret": SERVICE_SECRET}
    with session() as client, capture_access() as captured:
        home = client.get(deployment.edge.url + "/", headers=credentials, timeout=10)
        humans = client.get(deployment.edge.url + "/humans", headers=credentials, timeout=10)
        admin = client.get(deployment.lax_edge.url + "/admin/", headers=credentials, timeout=10)
        challenged = client.get(
            deployment.edge.url + "/admin/",
            headers={**credentials, "X-Requested-With": "XMLHttpRequest"},
            timeout=10,
        )
    assert home.json() == {"home": SERVICE_ID}
    assert (humans.status_code, admin.status_code, challenged.status_code) == (403, 403, 401)
    assert captured.reasons == [Reason.SERVICE_TOKEN_REFUSED, Reason.WRONG_APPLICATION]
    assert deployment.edge.admissions["service token"] == 2


def test_a_forged_assertion_through_the_edge_never_reaches_the_app(
    deployment: Deployment,
) -> None:
    """An admin token forged into Cf-Access-Jwt-Assertion: the edge challenges without a
    session, and with the portal's session the app sees only the edge's assertion."""
    issuer = deployment.issuer
    forged = {
        "Cf-Access-Jwt-Assertion": issuer.user_token("eve@example.com", audience=issuer.audience)
    }
    with capture_access() as captured:
        status, _ = raw_get(deployment.edge.port, "/admin/", forged)
        assert status == 302
        portal = issuer.user_token("eve@example.com", audience=AUD_PORTAL)
        with_session = {**forged, "Cookie": f"CF_Authorization={portal}"}
        status, _ = raw_get(deployment.lax_edge.port, "/admin/", with_session)
        assert status == 403
        status, body = raw_get(deployment.lax_edge.port, "/elsewhere", with_session)
    assert status == 200
    assert json.loads(body)["assertion"] == portal
    assert [record.reason for record in captured.denied] == [Reason.WRONG_APPLICATION]
    assert deployment.edge.calls["/admin/"] == 1
    assert deployment.edge.admissions["challenged"] == 1


def test_warnings_stay_errors() -> None:
    """The settings of these tests raise no unknown-setting warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AccessSettings.from_mapping(
            {
                "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
                "CF_ACCESS_APPLICATIONS": applications("b2"),
            }
        )


@pytest.mark.slow
def test_the_example_runs_behind_the_local_edge(tmp_path: Path) -> None:
    """``python -m examples.protected_app --edge``: every printed command, sent to the edge,
    gets the printed status: sessions, a service token's credentials, a forged assertion."""
    with (tmp_path / "stderr.log").open("wb") as stderr:
        running = Running(
            example_command("examples.protected_app", "--edge", "--port", "0"),
            clean_environ(),
            stderr,
        )
        try:
            edge_url = running.wait_for(READY).group(1)
            tries = printed_tries(running.lines)
            statuses = [(curl.url.removeprefix(edge_url), status) for status, curl in tries]
            assert statuses == [
                ("/admin/", 200),
                ("/admin/", 403),
                ("/api/whoami", 200),
                ("/", 302),
                ("/admin/", 302),
            ]
            for status, curl in tries:
                assert curl.send()[0] == status, curl.url
            (origin,) = [
                line.split()[5].rstrip(";")
                for line in running.lines
                if line.startswith("The app itself is on")
            ]
            assert origin.startswith("http://127.0.0.1:")
            assert origin != edge_url + "/"
        finally:
            assert running.stop() == 0
