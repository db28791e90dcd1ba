"""The middleware's path judgement: no reading of a path gets a weaker rule than it should.

Served through a real HTTP server on 127.0.0.1 with raw request lines (as
``curl --path-as-is`` sends them), in front of applications that do not
resolve dot segments: a Flask ``<path:...>`` route and a werkzeug
``DispatcherMiddleware`` mount.
"""

from __future__ import annotations

import logging
import posixpath
import socket
import threading
import unicodedata
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.test import Client

from flask_cf_access import (
    AccessBadRequest,
    AccessError,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    Reason,
    Requirement,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .support import FrozenClock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

RULES = {"/admin": ["Eng"], "/admin/help": [], "/mounted": ["Eng"]}
PUBLIC_PATHS = ["/healthz"]
PUBLIC_PREFIXES = ["/static"]

#: The issue's paths, and the rest of their class: each reaches admin content
#: behind an app that does not resolve dot segments.
DOT_SEGMENT_ATTACKS = [
    "/admin/../x",
    "/admin/%2e%2e/x",
    "/admin/%2E%2E/x",
    "/admin/.%2e/x",
    "/admin/%2e./x",
    "/admin/..%2fx",
    "/admin/..%2Fx",
    "/admin/./../x",
    "/admin/y/../../x",
    "/admin/..;/x",
    "/admin/%252e%252e/x",
    "/admin/..%252fx",
    "/admin/..%5cx",
    "/admin/.../x",
    "/admin/.%20/x",
    "/mounted/../x",
    "/mounted/%2e%2e/x",
]

#: Paths that some reader (a servlet container, a second decoder, a Windows
#: server, a log) splits, resolves or ends where the middleware would not.
OTHER_AMBIGUOUS = [
    "/admin;x/../x",
    "/admin\\..\\x",
    "/x/..%5c..%5cadmin",
    "/x%252fadmin",
    "/admin%00/x",
    "/x%0D%0AFAKE",
    "/x%09y",
    "/x%1b[31m",
    "/x%7f",
    "/x%C2%85y",
]


class Served:
    """A WSGI application served on 127.0.0.1 by werkzeug's own HTTP server."""

    def __init__(self, app: WSGIApplication) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def send(self, target: str, token: str | None = None, method: str = "GET") -> tuple[int, str]:
        """Send ``target`` byte for byte in the request line; the status and body."""
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if token is not None:
            lines.append(f"Cf-Access-Jwt-Assertion: {token}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        with socket.create_connection(("127.0.0.1", self.server.server_port), timeout=30) as conn:
            conn.sendall(raw)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body.decode("utf-8", "replace")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def admin_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """A mounted application that serves admin content for whatever path it is given."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ADMIN mounted " + environ["PATH_INFO"].encode("latin-1")]


def backend() -> WSGIApplication:
    """Routes that take the path as given: ``/admin/<path:...>``, a mount, a catch-all."""
    app = Flask("backend", static_folder=None)

    @app.get("/admin/<path:rest>")
    def admin(rest: str) -> str:
        return f"ADMIN {rest}"

    @app.get("/<path:rest>")
    def page(rest: str) -> str:
        return f"page {rest}"

    @app.get("/")
    def home() -> str:
        return "home"

    return DispatcherMiddleware(app.wsgi_app, {"/mounted": admin_app})


@pytest.fixture
def serve() -> Iterator[Callable[[WSGIApplication], Served]]:
    """Serve applications on 127.0.0.1, shut down after the test."""
    servers: list[Served] = []

    def start(app: WSGIApplication) -> Served:
        servers.append(Served(app))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def middleware(
    app: WSGIApplication, issuer: AccessIssuer, clock: FrozenClock, **options: Any
) -> CloudflareAccessMiddleware:
    """The middleware with the rules and public paths of these tests, trusting ``issuer``."""
    return CloudflareAccessMiddleware(
        app,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        **{
            "rules": RULES,
            "public_paths": PUBLIC_PATHS,
            "public_prefixes": PUBLIC_PREFIXES,
            **options,
        },
        background=run_inline,
    )


@pytest.fixture
def guarded(
    serve: Callable[[WSGIApplication], Served], issuer: AccessIssuer, clock: FrozenClock
) -> Served:
    """The backend behind the middleware, served over HTTP."""
    return serve(middleware(backend(), issuer, clock))


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The refusal lines the package logged."""
    return [r.getMessage() for r in caplog.records if r.name == "flask_cf_access"]


# -- through a real server -------------------------------------------------


@pytest.mark.parametrize("target", DOT_SEGMENT_ATTACKS)
def test_unguarded_backend_serves_admin_for_dot_segments(
    serve: Callable[[WSGIApplication], Served], target: str
) -> None:
    """Without the middleware the backend serves admin content: the attacks are real."""
    status, body = serve(backend()).send(target)
    assert status == 200
    assert "ADMIN" in body


@pytest.mark.parametrize("target", DOT_SEGMENT_ATTACKS + OTHER_AMBIGUOUS)
def test_ambiguous_paths_refused_400(
    guarded: Served, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture, target: str
) -> None:
    """A user outside Eng asking for an ambiguous path gets 400, logged once, no content."""
    token = issuer.user_token("bob@example.com", ["Staff"])
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        status, body = guarded.send(target, token)
    assert status == 400
    assert "ADMIN" not in body
    assert "ambiguous" not in body
    assert token not in body
    [line] = refusals(caplog)
    assert line.endswith(": 400 ambiguous_path")
    assert "\r" not in line
    assert "\n" not in line


@pytest.mark.parametrize("target", DOT_SEGMENT_ATTACKS[:4] + OTHER_AMBIGUOUS[:2])
def test_ambiguous_paths_refused_even_to_members(
    guarded: Served, issuer: AccessIssuer, target: str
) -> None:
    """The refusal is about the path, not the user: Eng members and anonymous get 400 too."""
    assert guarded.send(target, issuer.user_token("ada@example.com", ["Eng"]))[0] == 400
    assert guarded.send(target)[0] == 400


@pytest.mark.parametrize(
    "target",
    [
        "/admin",
        "/admin/",
        "/admin/x",
        "//admin/x",
        "/admin//x",
        "/%61dmin/x",
        "/%2561dmin/x",
        "/ADMIN/x",
        "/Admin/x",
        "/admin./x",
        "/admin%20/x",
        "/admin;jsessionid=1/x",
        "/%EF%BD%81dmin/x",
        "/admin/Help",
        "/admin/help./x",
        "/admin/%2568elp",
        "/mounted/x",
        "/MOUNTED/x",
    ],
)
def test_rule_of_every_reading_applies(guarded: Served, issuer: AccessIssuer, target: str) -> None:
    """Any spelling some reader takes for /admin (case, ';', encodings, NFKC) needs Eng."""
    with capture_access() as captured:
        assert guarded.send(target, issuer.user_token("bob@example.com", ["Staff"]))[0] == 403
    assert captured.reasons == [Reason.NOT_IN_GROUP]
    assert guarded.send(target, issuer.user_token("ada@example.com", ["Eng"]))[0] == 200


@pytest.mark.parametrize("target", ["/admin/help", "/admin/help/faq", "/x", "/administrator"])
def test_paths_outside_rules_need_only_a_token(
    guarded: Served, issuer: AccessIssuer, target: str
) -> None:
    """Plain paths under no rule, or under a rule asking for no group, need only a token."""
    with capture_access() as captured:
        assert guarded.send(target)[0] == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]
    assert guarded.send(target, issuer.user_token("bob@example.com", ["Staff"]))[0] == 200


@pytest.mark.parametrize("target", ["/healthz", "/static", "/static/app.css", "/%73tatic/a.css"])
def test_public_paths_through_a_server(guarded: Served, target: str) -> None:
    """Public paths and prefixes still open without a token over HTTP."""
    assert guarded.send(target)[0] == 200


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/static/../admin/x", 400),
        ("/static/%2e%2e/admin/x", 400),
        ("/static/..%2fadmin/x", 400),
        ("/static/%252e%252e/admin/x", 400),
        ("/static\\..\\admin", 400),
        ("/healthz/../admin", 400),
        ("/static;x/app.css", 401),
        ("/%2573tatic/app.css", 401),
        ("/healthz;x", 401),
        ("/healthz%20", 401),
        ("/HEALTHZ", 401),
        ("/%EF%BD%93tatic/app.css", 401),
    ],
)
def test_public_tree_opens_no_other_reading(guarded: Served, target: str, status: int) -> None:
    """A path is public only when every reading is inside the public tree."""
    assert guarded.send(target)[0] == status


@pytest.mark.parametrize(
    ("options", "target", "public"),
    [
        # A rule at or below a public prefix is refused at start-up (test_wsgi_nesting).
        ({"public_paths": ["/Healthz"], "rules": {"/healthz": ["Eng"]}}, "/Healthz", False),
        ({"public_paths": ["/a"], "rules": {"/A": ["Eng"]}}, "/a", False),
        ({"public_paths": ["/healthz"], "rules": {"/": ["Eng"]}}, "/healthz", True),
        ({"public_prefixes": ["/app/static"], "rules": {"/app": ["Eng"]}}, "/app/static/x", True),
    ],
)
def test_public_not_when_another_reading_is_under_a_rule(
    issuer: AccessIssuer, clock: FrozenClock, options: dict[str, Any], target: str, public: bool
) -> None:
    """A public path whose loose reading falls under another rule needs the rule's group."""
    guard = middleware(
        backend(), issuer, clock, **{"public_paths": [], "public_prefixes": [], **options}
    )
    assert guard.is_public(target) is public
    expected = 200 if public else 401
    with capture_access(guard) as captured:
        assert Client(guard).get(target).status_code == expected
    assert captured.reasons == ([] if public else [Reason.MISSING_TOKEN])
    if not public:
        bob = issuer.user_token("bob@example.com", ["Staff"])
        with capture_access(guard) as captured:
            assert (
                Client(guard).get(target, headers={"Cf-Access-Jwt-Assertion": bob}).status_code
                == 403
            )
        assert captured.reasons == [Reason.NOT_IN_GROUP]


def test_access_denied_signal_for_ambiguous_path(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """The refusal is sent as access_denied, with the 400 error and its reason."""
    guard = middleware(backend(), issuer, clock)
    with capture_access(guard) as captured:
        response = Client(guard).get("/admin/%2e%2e/x")
    assert response.status_code == 400
    [event] = captured
    assert event.sender is guard
    assert isinstance(event.error, AccessBadRequest)
    assert event.reason is Reason.AMBIGUOUS_PATH
    assert event.status == 400
    assert event.path == "/admin/../x"
    assert event.identity is None


# -- the judgement itself --------------------------------------------------


@pytest.fixture
def judge() -> CloudflareAccessMiddleware:
    """A middleware to ask groups_for and is_public; it never serves a request."""
    return CloudflareAccessMiddleware(
        admin_app,
        team_domain="team.example.invalid",
        audience="aud",
        load_keys_on_init=False,
        rules={**RULES, "/admin/reports": ["Audit"]},
        public_paths=PUBLIC_PATHS,
        public_prefixes=PUBLIC_PREFIXES,
        background=run_inline,
    )


def wsgi(path: str) -> str:
    """``path`` as a server puts it in ``PATH_INFO``: UTF-8 bytes in a latin-1 string."""
    return path.encode("utf-8", "surrogateescape").decode("latin-1")


def test_readings_under_different_rules_need_every_rule(
    judge: CloudflareAccessMiddleware,
) -> None:
    """Readings under two rules must meet both: /admin/Reports needs Eng and Audit."""
    requirement = judge.requirement_for(wsgi("/admin/Reports"))
    assert sorted(name for _, names in requirement.groups for name in names) == ["Audit", "Eng"]
    assert not judge.is_public(wsgi("/admin/Reports"))


@pytest.mark.parametrize(
    "path",
    [
        *(unquote(target) for target in DOT_SEGMENT_ATTACKS + OTHER_AMBIGUOUS),
        "/admin/%2e%2e/x",
        "/x%2fadmin",
        "/x%2F..%2Fadmin",
        "/x%5cadmin",
        "/admin/%u002e%u002e/x",
        "/admin/%U002E./x",
        "/admin/\uff0e\uff0e/x",
        "/admin\uff0f..\uff0fx",
        "/admin\uff3cx",
        "/x/%c0%ae%c0%ae/admin",
        "/x/\udcc0\udcae\udcc0\udcae/admin",
        "/x/\udce0\udc80\udcae/admin",
        "/%2525252e",
        "/x\x85y",
    ],
)
def test_ambiguous_paths_have_no_rule(judge: CloudflareAccessMiddleware, path: str) -> None:
    """groups_for refuses ambiguous paths with AMBIGUOUS_PATH; none is public."""
    with pytest.raises(AccessBadRequest) as raised:
        judge.groups_for(wsgi(path))
    assert raised.value.reason is Reason.AMBIGUOUS_PATH
    assert raised.value.code == 400
    assert not judge.is_public(wsgi(path))


@pytest.mark.parametrize(
    ("path", "groups"),
    [
        ("/", ()),
        ("", ()),
        ("/x", ()),
        ("/admin", ("Eng",)),
        ("/admin/help", ()),
        ("/admin/help/x", ()),
        ("/admin/HELP", ("Eng",)),
        ("/admin/reports/q1", ("Audit",)),
        ("/ADMIN/reports", ("Audit",)),
        ("/admin/%68elp", ("Eng",)),
        ("/admin\u2024/x", ("Eng",)),
        ("/stra\u00dfe", ()),
        ("/x\u2028y", ()),
        ("/100%", ()),
        ("/a%zz", ()),
    ],
)
def test_groups_for(judge: CloudflareAccessMiddleware, path: str, groups: tuple[str, ...]) -> None:
    """The strictest rule of every reading, and no rule where none applies."""
    assert judge.groups_for(wsgi(path)) == groups


@pytest.mark.parametrize(
    "option",
    [
        {"public_paths": ["/a%2e"]},
        {"public_paths": ["/a;b"]},
        {"public_prefixes": ["/a\\b"]},
        {"public_prefixes": ["/\uff53tatic"]},
        {"public_paths": ["/a/ /b"]},
        {"rules": {"/a\tb": ["Eng"]}},
        {"rules": {"/a/...": ["Eng"]}},
        {"rules": {"/admin": ["Eng"], "/Admin": ["Staff"]}},
        {"rules": {"/admin": ["Eng"], "/admin.": ["Staff"]}},
    ],
)
def test_ambiguous_configuration_refused(option: dict[str, Any]) -> None:
    """Configured paths must have one reading, and rules one spelling, or start-up fails."""
    with pytest.raises(ConfigurationError, match=next(iter(option))):
        CloudflareAccessMiddleware(
            admin_app,
            team_domain="team.example.invalid",
            audience="aud",
            load_keys_on_init=False,
            **option,
            background=run_inline,
        )


# -- the property: no reading is judged more strictly than the path --------

ORACLE_RULES = {"/admin": ("Eng",), "/admin/help": (), "/admin/reports": ("Audit",), "/s": ("S",)}
#: Pieces of paths: rule names in every spelling a reader may take for them,
#: dots and separators raw and encoded once or twice, and single characters.
PIECES = [
    *("admin", "ADMIN", "Admin", "%61dmin", "%2561dmin", "\uff41dmin", "admin;x", "admin."),
    *("help", "Help", "%68elp", "reports", "Reports", "s", "S", "%73", "p", "%70", "hz", "x", ";"),
    *(".", "..", "%2e", "%2E", "%252e", "\uff0e", "\u2024", " ", "%20"),
    *("/", "/", "/", "%2f", "%2F", "%252f", "\\", "%5c", "\uff0f", "%"),
    *("\x00", "\n", "%0a", "\x85", "\u0130", "%c0%ae", "2", "5", "e", "f"),
]
PATHS = st.lists(st.sampled_from(PIECES), max_size=8).map(lambda pieces: "/" + "".join(pieces))


def readings(path: str) -> set[str]:
    """How readers behind the middleware may read ``path``, written independently of it."""
    found = {path}
    for _ in range(4):
        more = set()
        for text in found:
            more |= {
                unquote(text, errors="surrogateescape"),
                unicodedata.normalize("NFKC", text),
                text.replace("\\", "/"),
                "/".join(segment.split(";")[0] for segment in text.split("/")),
                "/".join(segment.rstrip(". ") for segment in text.split("/")),
                text.lower(),
                text.casefold(),
                posixpath.normpath("/" + text.lstrip("/")),
            }
        found |= more
    return found


def oracle_rule(path: str) -> tuple[str, ...]:
    """The groups of the longest rule covering ``path``, by whole non-empty segments."""
    segments = [segment for segment in path.split("/") if segment]
    for prefix in sorted(ORACLE_RULES, key=len, reverse=True):
        wanted = prefix.strip("/").split("/")
        if segments[: len(wanted)] == wanted:
            return ORACLE_RULES[prefix]
    return ()


def at_least_as_strict(applied: Requirement, other: tuple[str, ...]) -> bool:
    """Whether whoever ``applied`` admits, ``other`` (any of these groups) admits too.

    So when ``other`` asks for nothing, or one of the all-must-hold clauses of
    ``applied`` asks for any of a subset of ``other``.
    """
    return not other or any(
        match == "any" and set(names) <= set(other) for match, names in applied.groups
    )


@pytest.mark.slow
@settings(deadline=None, max_examples=400)
@given(PATHS)
def test_rule_applied_is_at_least_as_strict_as_every_reading(path: str) -> None:
    """For any path that is not refused, no reading of it falls under a stricter rule."""
    judge = CloudflareAccessMiddleware(
        admin_app,
        team_domain="team.example.invalid",
        audience="aud",
        load_keys_on_init=False,
        rules={prefix: list(groups) for prefix, groups in ORACLE_RULES.items()},
        public_prefixes=["/p"],
        public_paths=["/hz"],
        background=run_inline,
    )
    try:
        applied = judge.requirement_for(wsgi(path))
    except AccessBadRequest:
        assert not judge.is_public(wsgi(path))
        return
    for reading in readings(path):
        assert at_least_as_strict(applied, oracle_rule(reading)), reading


@pytest.mark.slow
@settings(deadline=None, max_examples=400)
@given(st.sampled_from(["/p", "/p/", "/hz", "/s", "//p"]), PATHS)
def test_public_only_when_every_reading_is(start: str, rest: str) -> None:
    """A public path's every reading stays inside the public tree and outside the rules."""
    path = start + rest
    judge = CloudflareAccessMiddleware(
        admin_app,
        team_domain="team.example.invalid",
        audience="aud",
        load_keys_on_init=False,
        rules={"/s": ["S"]},
        public_prefixes=["/p"],
        public_paths=["/hz"],
        background=run_inline,
    )
    if not judge.is_public(wsgi(path)):
        return
    for reading in readings(path):
        if reading.casefold() != reading:
            continue  # the public tree is matched case-sensitively, as configured
        segments = [segment for segment in reading.split("/") if segment]
        assert segments[:1] == ["p"] or reading == "/hz", reading


# -- log lines cannot be forged --------------------------------------------


def log_app(issuer: AccessIssuer, clock: FrozenClock) -> Flask:
    """A Flask app guarded by the extension, for every path and method, in a hook."""
    app = Flask("logged")
    app.config.update(issuer.settings())
    CloudflareAccess(app, session=issuer.session(), clock=clock, background=run_inline)

    @app.before_request
    def guard() -> None:
        verify_access_in_request()

    return app


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        (
            "/x\r\nWARNING:flask_cf_access:Cloudflare Access admitted /admin",
            "/x\\r\\nWARNING:flask_cf_access:Cloudflare Access admitted /admin",
        ),
        ("/x\u2028forged", "/x\\u2028forged"),
        ("/x\u2029forged", "/x\\u2029forged"),
        ("/x\x85forged", "/x\\x85forged"),
        ("/x\x1b[2Kforged", "/x\\x1b[2Kforged"),
        ("/x\u202eforged", "/x\\u202eforged"),
        ("/x\\r\\nlooks-escaped", "/x\\\\r\\\\nlooks-escaped"),
        ("/stra\u00dfe/\u00e9", "/stra\u00dfe/\u00e9"),
    ],
)
def test_refusal_log_line_escapes_path(
    issuer: AccessIssuer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    path: str,
    escaped: str,
) -> None:
    """A path with line breaks or escapes writes one refusal line, with them escaped."""
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        response = log_app(issuer, clock).test_client().get(quote(path))
    assert response.status_code == 401
    [line] = refusals(caplog)
    assert line == f"Cloudflare Access refused GET {escaped}: 401 missing_token"
    assert line.isprintable()


@pytest.mark.parametrize("method", ["GET\r\nFORGED", "G\x1bET", "GE\u2028T"])
def test_refusal_log_line_escapes_method(
    issuer: AccessIssuer, clock: FrozenClock, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    """A method with control characters is escaped too, by the decorator and the middleware."""
    guard = middleware(backend(), issuer, clock)
    for app in (log_app(issuer, clock), guard):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
            assert Client(app).open("/x", method=method).status_code == 401
        [line] = refusals(caplog)
        assert line.startswith("Cloudflare Access refused ")
        assert line.isprintable()
        assert "\\" in line.split(" /x")[0]


def test_forged_line_over_http(
    guarded: Served, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Through a real server, %0D%0A and U+2028 in the path stay on one escaped line."""
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        assert guarded.send("/x%0D%0AFORGED")[0] == 400
        assert guarded.send("/x%E2%80%A8FORGED")[0] == 401
    assert refusals(caplog) == [
        "Cloudflare Access refused GET /x\\r\\nFORGED: 400 ambiguous_path",
        "Cloudflare Access refused GET /x\\u2028FORGED: 401 missing_token",
    ]


def test_access_error_still_the_base() -> None:
    """AccessBadRequest is an AccessError, so handlers of every refusal see it."""
    assert issubclass(AccessBadRequest, AccessError)
    assert AccessBadRequest(Reason.AMBIGUOUS_PATH).get_body().count("ambiguous") == 0


@pytest.mark.parametrize("target", ["/x\x1b[2Kforged", "/x\rforged", "/x\x85forged"])
def test_stand_in_server_log_escapes_request_line(
    issuer: AccessIssuer, caplog: pytest.LogCaptureFixture, target: str
) -> None:
    """The testing kit's stand-in server logs the client's request line escaped."""
    with issuer.serve() as server, caplog.at_level(logging.DEBUG, "flask_cf_access.testing"):
        with socket.create_connection((server.host, server.port), timeout=30) as conn:
            conn.sendall(f"GET {target} HTTP/1.0\r\n\r\n".encode("latin-1"))
            while conn.recv(65536):
                pass
        server.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "flask_cf_access.testing"]
    assert lines
    assert all(line.isprintable() for line in lines)
