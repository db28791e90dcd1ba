"""The stand-in's local sign-in page: a real token in the Access cookie, on 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask

from flask_cf_access import CloudflareAccess, current_identity, require_context, require_group
from flask_cf_access.testing import AccessIssuer, StandInServer, run_inline

APP_HOST = "127.0.0.1:5000"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session that ignores proxy settings: only 127.0.0.1 is reached."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A stand-in team serving the sign-in page."""
    with AccessIssuer(team_domain="local-stand-in.invalid").serve(sign_in=True) as server:
        yield server


def _login_url(server: StandInServer, *, host: str = APP_HOST, kid: str | None = None) -> str:
    query = urlencode({"kid": kid or server.issuer.audience, "redirect_url": "/admin/?x=1"})
    return f"{server.url}/cdn-cgi/access/login/{host}?{query}"


@pytest.mark.parametrize("host", ["0.0.0.0", "::1", "localhost", "192.0.2.1"])  # noqa: S104
def test_sign_in_page_only_on_127_0_0_1(host: str) -> None:
    """The stand-in refuses to serve the sign-in page unless bound to 127.0.0.1."""
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        AccessIssuer().serve(host=host, sign_in=True)


def test_sign_in_page_shows_a_form(stand_in: StandInServer, http: requests.Session) -> None:
    """GET of Access's login URL on the stand-in shows a form for an e-mail and groups."""
    response = http.get(_login_url(stand_in), allow_redirects=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'name="email"' in response.text
    assert 'name="groups"' in response.text


def test_sign_in_page_is_off_unless_asked_for(http: requests.Session) -> None:
    """A stand-in started without ``sign_in`` serves no sign-in page."""
    with AccessIssuer().serve() as server:
        response = http.get(_login_url(server), allow_redirects=False)
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("host", "kid"),
    [("evil.example", None), ("127.0.0.1.evil.example:80", None), (APP_HOST, "another-app")],
)
def test_sign_in_refuses_other_hosts_and_apps(
    stand_in: StandInServer, http: requests.Session, host: str, kid: str | None
) -> None:
    """The way back must be this machine, and the kid the stand-in's application."""
    url = _login_url(stand_in, host=host, kid=kid)
    assert http.get(url, allow_redirects=False).status_code == 400
    posted = http.post(
        url,
        data={"email": "a@example.com"},
        headers={"Origin": stand_in.url},
        allow_redirects=False,
    )
    assert posted.status_code == 400
    assert "Set-Cookie" not in posted.headers


def test_sign_in_sets_a_real_token_and_goes_back(
    stand_in: StandInServer, http: requests.Session
) -> None:
    """POST sets CF_Authorization (SameSite=None, Secure, HttpOnly) and redirects back."""
    response = http.post(
        _login_url(stand_in),
        data={"email": "ada@example.com", "groups": "Admins, Staff"},
        headers={"Origin": stand_in.url},
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"http://{APP_HOST}/admin/?x=1"
    cookie = response.headers["Set-Cookie"]
    name, _, rest = cookie.partition("=")
    token, _, attributes = rest.partition(";")
    assert name == "CF_Authorization"
    for attribute in ("Path=/", "HttpOnly", "Secure", "SameSite=None"):
        assert attribute in attributes
    assert "Domain" not in attributes  # host-only: reaches every port of 127.0.0.1

    app = Flask("signed-in")
    app.config.update(stand_in.settings())
    CloudflareAccess(app, background=run_inline)

    @app.get("/admin/")
    @require_group("Admins")
    def admin() -> str:
        return current_identity.email or ""

    client = app.test_client()
    client.set_cookie("CF_Authorization", token)
    assert client.get("/admin/").text == "ada@example.com"


@pytest.mark.parametrize("origin", [None, "http://localhost:9", "null"])
def test_sign_in_refuses_posts_from_elsewhere(
    stand_in: StandInServer, http: requests.Session, origin: str | None
) -> None:
    """The form must be posted from the stand-in's own page (no login CSRF)."""
    headers = {} if origin is None else {"Origin": origin}
    response = http.post(
        _login_url(stand_in),
        data={"email": "a@example.com"},
        headers=headers,
        allow_redirects=False,
    )
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers


def test_sign_in_needs_an_email(stand_in: StandInServer, http: requests.Session) -> None:
    """An empty e-mail is refused."""
    response = http.post(
        _login_url(stand_in), data={"groups": "Admins"}, headers={"Origin": stand_in.url}
    )
    assert response.status_code == 400


def test_logout_drops_the_cookie(stand_in: StandInServer, http: requests.Session) -> None:
    """GET /cdn-cgi/access/logout expires the CF_Authorization cookie."""
    response = http.get(stand_in.url + "/cdn-cgi/access/logout")
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("CF_Authorization=;")
    assert "Max-Age=0" in cookie


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"mfa": "yes", "posture": "disk, firewall"}, 200),
        ({"posture": "disk"}, 403),
        ({"mfa": "yes", "posture": "firewall", "failing_posture": "disk"}, 403),
    ],
)
def test_sign_in_picks_mfa_and_posture(
    stand_in: StandInServer, http: requests.Session, fields: dict[str, str], status: int
) -> None:
    """The form's MFA box and posture fields become the identity's profile."""
    response = http.post(
        _login_url(stand_in),
        data={"email": "ada@example.com", "groups": "Staff", **fields},
        headers={"Origin": stand_in.url},
        allow_redirects=False,
    )
    token = response.headers["Set-Cookie"].partition("=")[2].partition(";")[0]
    app = Flask("signed-in")
    app.config.update(stand_in.settings())
    CloudflareAccess(app, background=run_inline)
    app.get("/keys")(require_context(mfa=True, posture=["disk"])(lambda: "keys"))
    client = app.test_client()
    client.set_cookie("CF_Authorization", token)
    assert client.get("/keys").status_code == status


def test_sign_in_form_offers_mfa_and_posture(
    stand_in: StandInServer, http: requests.Session
) -> None:
    """The form has the MFA box, checked, and the posture fields."""
    text = http.get(_login_url(stand_in), allow_redirects=False).text
    assert 'name="mfa" type="checkbox" value="yes" checked' in text
    assert 'name="posture"' in text
    assert 'name="failing_posture"' in text
