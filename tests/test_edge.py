"""The local Access edge over real HTTP: what it admits, what it answers, what it strips."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_cf_access import CloudflareAccess, current_identity, require_access
from flask_cf_access.testing import AccessIssuer, EdgeApplication, LocalEdge, run_inline

from .support import FrozenClock, served

AUD_MAIN, AUD_ADMIN, AUD_OTHER = "e1" * 32, "f2" * 32, "a3" * 32
SERVICE_ID, SERVICE_SECRET = "deployer.access", "5ec7" * 16


def echo_app(issuer: AccessIssuer, clock: FrozenClock) -> Flask:
    """An app that says which Access headers reached it, and verifies the token it got."""
    app = Flask("echo")
    app.config.update(issuer.settings(CF_ACCESS_AUDIENCE=[AUD_MAIN, AUD_ADMIN]))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.route("/<path:anything>", methods=["GET", "POST"])
    @app.route("/", methods=["GET", "POST"])
    def headers(anything: str = "") -> dict[str, Any]:
        return {
            name: value
            for name, value in request.headers.items()
            if name.lower().startswith("cf-access")
        }

    @app.route("/main/who", methods=["GET", "POST"])
    @app.get("/admin/who")
    @require_access
    def who() -> dict[str, Any]:
        return {"name": current_identity.name, "body": request.get_data(as_text=True)}

    return app


@pytest.fixture
def edge(issuer: AccessIssuer, clock: FrozenClock) -> Iterator[LocalEdge]:
    """An edge with an application on /main (ada, Staff, one service token), one on /admin."""
    with ExitStack() as stack:
        upstream = stack.enter_context(served(echo_app(issuer, clock)))
        applications = [
            EdgeApplication(
                "main",
                AUD_MAIN,
                paths=("/main",),
                emails=frozenset({"Ada@Example.com"}),
                groups=frozenset({"Staff"}),
                service_tokens={SERVICE_ID: SERVICE_SECRET},
                linked_apps=frozenset({AUD_OTHER}),
                session_duration=3600,
            ),
            EdgeApplication("admin", AUD_ADMIN, paths=("/main/admin", "/admin"), everyone=True),
        ]
        yield stack.enter_context(
            LocalEdge(issuer, upstream, applications, login_origin="http://127.0.0.1:9")
        )


def get(edge: LocalEdge, path: str, token: str | None = None, **options: Any) -> requests.Response:
    """GET ``path`` through the edge, ``token`` as the browser's cookie; no redirect followed."""
    cookies = {"CF_Authorization": token} if token else None
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: only 127.0.0.1 is reached
        return session.get(
            edge.url + path, cookies=cookies, allow_redirects=False, timeout=10, **options
        )


def test_the_edge_is_only_ever_on_loopback(issuer: AccessIssuer) -> None:
    """Another address to listen on, or an app off this machine, is refused."""
    main = EdgeApplication("main", AUD_MAIN)
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        LocalEdge(issuer, "http://127.0.0.1:5000", [main], host="0.0.0.0")  # noqa: S104
    for upstream in ("http://10.0.0.1:80", "https://127.0.0.1:5000", "http://127.0.0.1:5000/app"):
        with pytest.raises(ValueError, match="forwards only"):
            LocalEdge(issuer, upstream, [main])


def test_a_browser_session_is_forwarded_as_the_assertion(
    edge: LocalEdge, issuer: AccessIssuer
) -> None:
    """The cookie's token reaches the app as Cf-Access-Jwt-Assertion, with the user's e-mail."""
    token = issuer.user_token("ada@example.com", audience=AUD_MAIN)
    seen = get(edge, "/main/x", token).json()
    assert seen == {
        "Cf-Access-Jwt-Assertion": token,
        "Cf-Access-Authenticated-User-Email": "ada@example.com",
    }
    assert get(edge, "/main/who", token).json()["name"] == "ada@example.com"
    assert edge.admissions["session"] == 2


def test_a_group_admits_and_a_stranger_gets_the_block_page(
    edge: LocalEdge, issuer: AccessIssuer
) -> None:
    """The policy admits by e-mail or group; anyone else gets Access's 403 block page."""
    staff = issuer.user_token("bob@example.com", ["Staff"], audience=AUD_MAIN)
    assert get(edge, "/main/who", staff).json()["name"] == "bob@example.com"
    stranger = issuer.user_token("eve@example.com", ["Guests"], audience=AUD_MAIN)
    blocked = get(edge, "/main/who", stranger)
    assert blocked.status_code == 403
    assert f"&quot;aud&quot;: &quot;{AUD_MAIN}&quot;" in blocked.text
    assert 'name="json_data"' in blocked.text


def test_without_a_session_a_browser_is_sent_to_sign_in(edge: LocalEdge) -> None:
    """302 to the login page of the path's application, coming back to the same path; XHR 401."""
    answer = get(edge, "/main/admin/page?x=1")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert (location.scheme, location.netloc) == ("http", "127.0.0.1:9")
    assert location.path == f"/cdn-cgi/access/login/127.0.0.1:{edge.port}"
    assert parse_qs(location.query) == {
        "kid": [AUD_ADMIN],
        "redirect_url": ["/main/admin/page?x=1"],
    }
    assert get(edge, "/main/x", headers={"X-Requested-With": "XMLHttpRequest"}).status_code == 401
    assert edge.calls["/main/x"] == 1


def test_another_applications_cookie_is_no_session(edge: LocalEdge, issuer: AccessIssuer) -> None:
    """A token for /admin's application opens nothing on /main: the browser signs in there."""
    admin = issuer.user_token("ada@example.com", audience=AUD_ADMIN)
    assert get(edge, "/admin/who", admin).status_code == 200
    assert get(edge, "/main/who", admin).status_code == 302


def test_sessions_expire_on_the_edges_clock(
    edge: LocalEdge, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """After the application's session duration the cookie no longer opens anything."""
    token = issuer.user_token("ada@example.com", audience=AUD_MAIN)
    assert get(edge, "/main/who", token).status_code == 200
    clock.advance(3600)
    assert get(edge, "/main/who", token).status_code == 302


def test_logout_ends_the_session(edge: LocalEdge, issuer: AccessIssuer) -> None:
    """/cdn-cgi/access/logout drops the cookie, and the token it held opens nothing more."""
    token = issuer.user_token("ada@example.com", audience=AUD_MAIN)
    answer = get(edge, "/cdn-cgi/access/logout", token)
    assert answer.status_code == 200
    assert answer.headers["Set-Cookie"].startswith("CF_Authorization=; Max-Age=0")
    assert get(edge, "/main/who", token).status_code == 302


def test_a_service_token_is_exchanged_for_a_token(edge: LocalEdge) -> None:
    """Known id and secret: the app gets a service token's assertion, the client a cookie."""
    credentials = {"CF-Access-Client-Id": SERVICE_ID, "CF-Access-Client-Secret": SERVICE_SECRET}
    answer = get(edge, "/main/who", headers=credentials)
    assert answer.json()["name"] == SERVICE_ID
    cookie = answer.cookies["CF_Authorization"]
    assert get(edge, "/main/who", cookie).json()["name"] == SERVICE_ID
    wrong = {**credentials, "CF-Access-Client-Secret": SERVICE_SECRET[:-1] + "0"}
    assert get(edge, "/main/who", headers=wrong).status_code == 302
    assert (edge.admissions["service token"], edge.admissions["challenged"]) == (1, 1)


def test_a_linked_app_token_is_exchanged_for_this_applications(
    edge: LocalEdge, issuer: AccessIssuer
) -> None:
    """Another app's token in Cf-Access-Token becomes one for this app, when it is linked."""
    theirs = issuer.user_token("ada@example.com", audience=AUD_OTHER)
    seen = get(edge, "/main/x", headers={"Cf-Access-Token": theirs}).json()
    assertion = seen["Cf-Access-Jwt-Assertion"]
    assert assertion != theirs
    assert get(edge, "/main/who", headers={"Cf-Access-Token": theirs}).json()["name"] == (
        "ada@example.com"
    )
    unlinked = issuer.user_token("ada@example.com", audience="not-linked")
    assert get(edge, "/main/x", headers={"Cf-Access-Token": unlinked}).status_code == 403


FORGED = st.sampled_from(
    [
        "Cf-Access-Jwt-Assertion",
        "cf-access-jwt-assertion",
        "CF-ACCESS-JWT-ASSERTION",
        "Cf-Access-Authenticated-User-Email",
        "Cf-Access-Client-Id-Extra",
        "Cf-Access-Anything",
    ]
)


@pytest.mark.slow
@settings(max_examples=20)
@given(name=FORGED, covered=st.booleans())
def test_forged_access_headers_never_reach_the_app(name: str, covered: bool) -> None:
    """Whatever Cf-Access-* header a client sends, the app sees only the edge's, or none."""
    clock = FrozenClock()
    issuer = AccessIssuer(clock=clock)
    forged = issuer.user_token("mallory@example.com", audience=AUD_MAIN)
    token = issuer.user_token("ada@example.com", audience=AUD_MAIN)
    with ExitStack() as stack:
        upstream = stack.enter_context(served(echo_app(issuer, clock)))
        main = EdgeApplication("main", AUD_MAIN, paths=("/main",), everyone=True)
        edge = stack.enter_context(LocalEdge(issuer, upstream, [main]))
        path = "/main/x" if covered else "/public"
        answer = get(edge, path, token, headers={name: forged})
    seen = answer.json()
    assert forged not in json.dumps(seen)
    if covered:
        assert seen == {
            "Cf-Access-Jwt-Assertion": token,
            "Cf-Access-Authenticated-User-Email": "ada@example.com",
        }
    else:
        assert seen == {}


def test_a_post_body_goes_through(edge: LocalEdge, issuer: AccessIssuer) -> None:
    """Methods and bodies are forwarded as sent."""
    token = issuer.user_token("ada@example.com", audience=AUD_MAIN)
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(
            edge.url + "/main/who",
            data=b"hello",
            cookies={"CF_Authorization": token},
            headers={"Origin": edge.url},
            timeout=10,
        )
    assert answer.json() == {"name": "ada@example.com", "body": "hello"}


def test_a_browser_signs_in_through_the_stand_in_and_comes_back(clock: FrozenClock) -> None:
    """Edge → the stand-in's sign-in page → back to the edge with a cookie it admits."""
    issuer = AccessIssuer(clock=clock)
    with (
        served(echo_app(issuer, clock)) as upstream,
        issuer.serve(sign_in=True) as team,
        requests.Session() as browser,
    ):
        browser.trust_env = False
        main = EdgeApplication("main", issuer.audience, everyone=True)
        with LocalEdge(issuer, upstream, [main], login_origin=team.url) as edge:
            sent_away = browser.get(edge.url + "/main/x?y=1", allow_redirects=False, timeout=10)
            login = sent_away.headers["Location"]
            assert login.startswith(team.url + "/cdn-cgi/access/login/")
            back = browser.post(
                login,
                data={"email": "ada@example.com", "groups": ""},
                headers={"Origin": team.url},
                allow_redirects=False,
                timeout=10,
            )
            assert back.headers["Location"] == edge.url + "/main/x?y=1"
            # The cookie is Secure, as Access's: a browser sends it to loopback, requests does not.
            cookie = {"CF_Authorization": back.cookies["CF_Authorization"]}
            seen = browser.get(
                back.headers["Location"], cookies=cookie, allow_redirects=False, timeout=10
            )
    assert seen.json()["Cf-Access-Authenticated-User-Email"] == "ada@example.com"


SPELLINGS = st.sampled_from(
    [
        "/main/x",
        "//main/x",
        "/MAIN/x",
        "/Main/./x",
        "/main;jsessionid=1/x",
        "/%6Dain/x",
        "/%2e%2e/main/x",
        "/public/../main/x",
        "/public/%2e%2e/main/x",
        "/main%2fx",
        "/main\\x",
        "/%EF%BD%8D%EF%BD%81%EF%BD%89%EF%BD%8E/x",  # fullwidth "main"
        "/main./x",
        "/main%00/x",
    ]
)


@pytest.mark.slow
@settings(max_examples=30)
@given(spelling=SPELLINGS)
def test_no_spelling_of_a_covered_path_goes_through_unauthenticated(spelling: str) -> None:
    """Every spelling of a covered path is challenged (or refused as ambiguous), never passed on."""
    clock = FrozenClock()
    issuer = AccessIssuer(clock=clock)
    seen: list[str] = []

    def upstream_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"reached"]

    with ExitStack() as stack:
        upstream = stack.enter_context(served(upstream_app))
        main = EdgeApplication("main", AUD_MAIN, paths=("/main",), everyone=True)
        edge = stack.enter_context(LocalEdge(issuer, upstream, [main]))
        with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as connection:
            connection.sendall(f"GET {spelling} HTTP/1.0\r\n\r\n".encode())
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status in (302, 400)
    assert seen == []
