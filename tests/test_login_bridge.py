"""The Flask-Login bridge: @login_required and current_user from the Access token, stateless."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import flask_login
import pytest
import responses
from flask import Flask, render_template_string
from flask_login import LoginManager, UserMixin, login_required, login_user
from flask_login.signals import user_loaded_from_request
from werkzeug.test import TestResponse

import flask_cf_access
from flask_cf_access import AccessIdentity, CloudflareAccess, Reason
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    capture_access,
    run_inline,
)

from .support import FrozenClock


@dataclass
class User(UserMixin):  # type: ignore[misc]
    """An account of the test app."""

    id: str
    email: str


@dataclass
class Accounts:
    """The app's accounts by e-mail, and the identities its loader was asked about."""

    by_email: dict[str, User] = field(default_factory=dict)
    asked: list[AccessIdentity] = field(default_factory=list)

    def load(self, identity: AccessIdentity) -> User | None:
        self.asked.append(identity)
        if identity.is_service_token:
            return User(id="machine", email=str(identity.common_name))
        return self.by_email.get(identity.email or "")


@pytest.fixture
def accounts() -> Accounts:
    """Ada and Bob have accounts."""
    ada, bob = User("1", "ada@example.com"), User("2", "bob@example.com")
    return Accounts({ada.email: ada, bob.email: bob})


@pytest.fixture
def app(
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
    accounts: Accounts,
) -> Flask:
    """An existing Flask-Login app, bridged to Access; it also kept a session-based loader."""
    app = Flask("login")
    app.config.update(issuer.settings(SECRET_KEY="test secret", SESSION_PROTECTION="strong"))
    cf_access = CloudflareAccess(app, clock=clock, background=run_inline)
    cf_access.user_loader(accounts.load)
    login_manager = LoginManager()
    cf_access.init_login_manager(login_manager)
    login_manager.init_app(app)

    # What the app had before the bridge: users found by the id in the session.
    by_id = {user.id: user for user in accounts.by_email.values()}
    login_manager.user_loader(by_id.get)

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {
            "email": flask_login.current_user.email,
            "ours": flask_cf_access.current_user is not None and flask_cf_access.current_user.email,
        }

    @app.get("/async-private")
    @login_required
    async def async_private() -> str:
        return str(flask_login.current_user.email)

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% if current_user.is_authenticated %}Hi {{ current_user.email }}"
            "{% else %}Hi stranger{% endif %}"
        )

    @app.get("/legacy-login/<user_id>")
    def legacy_login(user_id: str) -> str:
        # How the app logged people in before: a session and a remember-me cookie.
        login_user(by_id[user_id], remember=True)
        return "logged in"

    return app


@pytest.fixture
def client(app: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, issuer)


@pytest.fixture
def refusals(app: Flask) -> Iterator[AccessCapture]:
    """Every access decision the app makes while the test runs, with its reason."""
    with capture_access(app) as captured:
        yield captured


def no_cookies_set(response: TestResponse) -> bool:
    """Whether the response sets no cookie at all (no session, no remember-me)."""
    return response.headers.getlist("Set-Cookie") == []


def test_login_required_admits_a_verified_user(client: AccessClient, accounts: Accounts) -> None:
    """@login_required passes with a good token; both current_user proxies are the user."""
    response = client.get("/private", as_user="ada@example.com")
    assert response.status_code == 200
    assert response.json == {"email": "ada@example.com", "ours": "ada@example.com"}
    assert len(accounts.asked) == 1
    assert no_cookies_set(response)


def test_async_login_required_view(client: AccessClient) -> None:
    """An async view under @login_required gets the user from the token."""
    response = client.get("/async-private", as_user="ada@example.com")
    assert response.get_data(as_text=True) == "ada@example.com"


def test_no_token_is_anonymous(
    client: AccessClient, accounts: Accounts, refusals: AccessCapture
) -> None:
    """Without a token the user is anonymous: @login_required answers 401, pages still render."""
    response = client.get("/private")
    assert response.status_code == 401
    assert no_cookies_set(response)
    assert client.get("/page").get_data(as_text=True) == "Hi stranger"
    assert accounts.asked == []
    assert refusals.reasons == []


@pytest.mark.parametrize("path", ["/private", "/page"])
def test_bad_token_is_401(
    client: AccessClient,
    issuer: AccessIssuer,
    accounts: Accounts,
    refusals: AccessCapture,
    path: str,
) -> None:
    """A token that does not verify is a 401 with its reason wherever the user is read."""
    response = client.get(path, token=issuer.user_token("ada@example.com", expired=True))
    assert response.status_code == 401
    assert refusals.reasons == [Reason.EXPIRED]
    assert accounts.asked == []
    assert no_cookies_set(response)


def test_no_account_is_403(client: AccessClient, refusals: AccessCapture) -> None:
    """A verified identity the loader has no account for gets 403 NO_ACCOUNT, not 401."""
    response = client.get("/private", as_user="eve@example.com")
    assert response.status_code == 403
    assert refusals.reasons == [Reason.NO_ACCOUNT]
    assert no_cookies_set(response)


def test_templates_see_the_user(client: AccessClient) -> None:
    """current_user in templates is the token's user."""
    response = client.get("/page", as_user="bob@example.com")
    assert response.get_data(as_text=True) == "Hi bob@example.com"
    assert no_cookies_set(response)


def test_service_token_becomes_what_the_loader_says(client: AccessClient) -> None:
    """A service token is whatever principal the loader maps it to."""
    response = client.get("/private", as_service_token="ci.access")
    assert response.json is not None
    assert response.json["email"] == "ci.access"


def test_flask_login_signal_is_sent(client: AccessClient, app: Flask) -> None:
    """Flask-Login's user_loaded_from_request is still sent, with the user."""
    users: list[str] = []
    with user_loaded_from_request.connected_to(lambda _app, user: users.append(user.email), app):
        client.get("/private", as_user="ada@example.com")
    assert users == ["ada@example.com"]


@pytest.fixture
def old_session(client: AccessClient) -> str:
    """A real, signed Flask-Login session and remember-me cookie for Ada, from before the bridge."""
    response = client.get("/legacy-login/1")
    cookies = " ".join(response.headers.getlist("Set-Cookie"))
    assert "session=" in cookies
    assert "remember_token=" in cookies
    assert client.get_cookie("session") is not None
    assert client.get_cookie("remember_token") is not None
    return "ada@example.com"


def test_session_never_stands_in_for_a_bad_token(
    client: AccessClient, issuer: AccessIssuer, old_session: str, refusals: AccessCapture
) -> None:
    """With Ada's session and remember-me cookie, a bad token is 401 and no token is anonymous."""
    assert client.get("/private", token="not.a.token").status_code == 401
    assert client.get("/private").status_code == 401
    assert client.get("/page").get_data(as_text=True) == "Hi stranger"
    revoked = issuer.user_token(old_session, expired=True)
    assert client.get("/private", token=revoked).status_code == 401
    assert refusals.reasons == [Reason.MALFORMED_TOKEN, Reason.EXPIRED]


def test_token_wins_over_a_session(client: AccessClient, old_session: str) -> None:
    """Bob's token with Ada's session and remember-me cookie is Bob, and nothing is written."""
    response = client.get("/private", as_user="bob@example.com")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["email"] == "bob@example.com"
    assert no_cookies_set(response)


def test_nothing_written_with_an_old_session(
    client: AccessClient, issuer: AccessIssuer, old_session: str
) -> None:
    """No response rewrites or refreshes the old session or remember-me cookie."""
    tokens = [
        None,
        "not.a.token",
        issuer.user_token(old_session),
        issuer.user_token("eve@example.com"),
    ]
    another_browser = {"User-Agent": "another browser"}
    for token in tokens:
        for path in ("/private", "/page"):
            response = client.get(path, token=token, headers=another_browser)
            assert no_cookies_set(response), (path, token)


def test_remember_me_cookie_alone_is_ignored(
    client: AccessClient, issuer: AccessIssuer, old_session: str, captured: AccessCapture
) -> None:
    """A remember-me cookie without a session neither hides the token's user nor makes a session."""
    client.delete_cookie("session")
    response = client.get("/private", as_user="bob@example.com")
    assert response.json is not None
    assert response.json["email"] == "bob@example.com"
    assert no_cookies_set(response)
    anonymous = client.get("/private")
    assert anonymous.status_code == 401
    assert captured.denied == []  # Flask-Login's own 401: the access check refused nothing
    assert no_cookies_set(anonymous)


@pytest.mark.slow
def test_without_flask_login_the_bridge_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the bridge without Flask-Login names the extra to install; the package imports."""
    import importlib
    import subprocess
    import sys

    monkeypatch.setitem(sys.modules, "flask_login", None)
    monkeypatch.delitem(sys.modules, "flask_cf_access._flask.login")
    with pytest.raises(ImportError, match=r"flask-cf-access\[login\]"):
        importlib.import_module("flask_cf_access._flask.login")
    without_flask_login = (
        "import sys; sys.modules['flask_login'] = None; "
        "import flask_cf_access, flask_cf_access.testing, flask_cf_access.pytest_plugin"
    )
    finished = subprocess.run(  # noqa: S603 (our interpreter, our code)
        [sys.executable, "-c", without_flask_login], capture_output=True, text=True, check=False
    )
    assert finished.returncode == 0, finished.stderr


@pytest.mark.parametrize("missing", ["_load_user", "_update_request_context_with_user"])
def test_a_flask_login_without_what_the_bridge_replaces_is_refused(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """Were Flask-Login to rename what the bridge relies on, setting it up fails at once,
    rather than leave the session and remember-me lookups in place."""
    monkeypatch.delattr(LoginManager, missing)
    with pytest.raises(RuntimeError, match=f"no LoginManager.{missing}"):
        CloudflareAccess(background=run_inline).init_login_manager(LoginManager())
