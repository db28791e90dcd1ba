"""Signing in on the stand-in works whichever name the browser uses for this machine:
``localhost`` or ``127.0.0.1``, over real HTTP, the cookie following the name."""

from __future__ import annotations

import http.cookiejar
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit
from urllib.request import Request

import pytest
import requests

from examples.protected_app import create_app
from flask_cf_access.testing import AccessIssuer, StandInServer

from .support import served_port

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
#: How many redirects a sign-in may take before it counts as a loop.
MOST_HOPS = 6


def loopback_is_secure(
    policy: http.cookiejar.DefaultCookiePolicy, cookie: http.cookiejar.Cookie, request: Request
) -> bool:
    """Send ``Secure`` cookies to this machine over http, as Chromium and Firefox do
    (loopback is a secure context); elsewhere as the standard library decides."""
    host = urlsplit(request.get_full_url()).hostname
    return host in ("localhost", "127.0.0.1") or SECURE_ONLY(policy, cookie, request)


SECURE_ONLY = http.cookiejar.DefaultCookiePolicy.return_ok_secure


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[requests.Session]:
    """A session that keeps cookies as a browser does and reaches this machine only.

    requests copies the cookies into a jar of the default policy for each
    request, so the policy's class is what is told about loopback.
    """
    monkeypatch.setattr(http.cookiejar.DefaultCookiePolicy, "return_ok_secure", loopback_is_secure)
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    with AccessIssuer(team_domain="local-stand-in.invalid").serve(sign_in=True) as server:
        yield server


def follow(browser: requests.Session, url: str) -> tuple[requests.Response, list[str]]:
    """GET ``url`` and its redirects, at most :data:`MOST_HOPS`; the answer and the way."""
    way = [url]
    response = browser.get(url, headers=BROWSER, allow_redirects=False, timeout=10)
    while response.is_redirect:
        assert len(way) <= MOST_HOPS, f"a redirect loop: {way}"
        url = response.headers["Location"]
        way.append(url)
        response = browser.get(url, headers=BROWSER, allow_redirects=False, timeout=10)
    return response, way


def sign_in(browser: requests.Session, page: str) -> tuple[requests.Response, list[str]]:
    """Post the sign-in form at ``page`` as its own page would, then follow the way back."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page))
    posted = browser.post(
        page,
        data={"email": "ada@example.com", "groups": "Admins, Staff"},
        headers={"Origin": origin, **BROWSER},
        allow_redirects=False,
        timeout=10,
    )
    assert posted.status_code == 302, posted.text
    response, way = follow(browser, posted.headers["Location"])
    return response, [page, *way]


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_sign_in_and_out_under_either_name(
    stand_in: StandInServer, browser: requests.Session, name: str
) -> None:
    """Sent to sign in, signed in, back on the page with the cookie; logged out, sent again."""
    app = create_app(stand_in.settings(CF_ACCESS_UNAUTHORIZED="redirect"))
    with served_port(app) as port:
        app_url = f"http://{name}:{port}"
        page, way = follow(browser, f"{app_url}/admin/")
        assert page.status_code == 200
        login = urlsplit(way[-1])
        assert (login.hostname, login.port) == (name, stand_in.port)
        assert login.path == f"/cdn-cgi/access/login/{name}:{port}"

        admin, back = sign_in(browser, way[-1])
        assert admin.status_code == 200, back
        assert back[-1] == f"{app_url}/admin/"
        assert "ada@example.com" in admin.text
        assert [cookie.name for cookie in browser.cookies] == ["CF_Authorization"]

        logged_out, way_out = follow(browser, f"{app_url}/logout")
        assert logged_out.status_code == 200
        assert urlsplit(way_out[-1]).hostname == name
        assert list(browser.cookies) == []
        _, again = follow(browser, f"{app_url}/admin/")
        assert urlsplit(again[-1]).path.startswith("/cdn-cgi/access/login/")


@pytest.mark.parametrize(
    ("reached", "app_name"), [("127.0.0.1", "localhost"), ("localhost", "127.0.0.1")]
)
def test_sign_in_page_moves_to_the_apps_name(
    stand_in: StandInServer, browser: requests.Session, reached: str, app_name: str
) -> None:
    """A login link naming the stand-in otherwise than the app (an old link, a bookmark)
    is served under the app's name, so the cookie is for it: no loop."""
    app = create_app(stand_in.settings())
    with served_port(app) as port:
        link = (
            f"http://{reached}:{stand_in.port}/cdn-cgi/access/login/{app_name}:{port}"
            f"?kid={stand_in.issuer.audience}&redirect_url=%2Fadmin%2F"
        )
        page, way = follow(browser, link)
        assert page.status_code == 200
        assert urlsplit(way[-1]).hostname == app_name
        admin, back = sign_in(browser, way[-1])
        assert admin.status_code == 200, back
        assert "ada@example.com" in admin.text


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.2"])
def test_sign_in_answers_no_other_name(
    stand_in: StandInServer, browser: requests.Session, host: str
) -> None:
    """A page reached under another name (DNS rebinding) takes no form from that name."""
    query = f"?kid={stand_in.issuer.audience}&redirect_url=%2F"
    url = f"{stand_in.url}/cdn-cgi/access/login/localhost:5000{query}"
    posted = browser.post(
        url,
        data={"email": "a@example.com"},
        headers={"Host": f"{host}:{stand_in.port}", "Origin": f"http://{host}:{stand_in.port}"},
        allow_redirects=False,
        timeout=10,
    )
    assert posted.status_code == 403
    assert "Set-Cookie" not in posted.headers


def test_moving_keeps_to_this_machine(stand_in: StandInServer) -> None:
    """A request target in absolute form (``GET http://evil.example/...``) is moved by its
    path and query alone: the browser stays on this machine."""
    query = f"?kid={stand_in.issuer.audience}&redirect_url=%2F"
    target = f"http://evil.example/cdn-cgi/access/login/localhost:5000{query}"
    with socket.create_connection(("127.0.0.1", stand_in.port), timeout=10) as connection:
        connection.sendall(
            f"GET {target} HTTP/1.0\r\nHost: 127.0.0.1:{stand_in.port}\r\n\r\n".encode()
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head = answer.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
    assert head[0].split()[1] == "303"
    assert (
        f"Location: http://localhost:{stand_in.port}/cdn-cgi/access/login/localhost:5000{query}"
        in head
    )
