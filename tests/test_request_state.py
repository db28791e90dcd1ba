"""All a request keeps lives in one object on ``g``, dropped when the next request starts.

Tests, CLI commands and task runners push one app context around several
requests, and ``g`` lives as long as that context: nothing the package put
there for one request (identity, claims, the optional mark, the loaded user,
Flask-Login's user through the bridge) may answer for the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask_login
import pytest
from flask import Blueprint, Flask, g
from flask_login import LoginManager, UserMixin, login_required

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    NoAccessContextError,
    Reason,
    access_guard,
    current_user,
    get_identity,
    get_user,
    require,
    require_access,
    require_group,
    verify_access_in_request,
)
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    capture_access,
    run_inline,
)

from .support import FrozenClock


class Account(UserMixin):  # type: ignore[misc]
    """An account of the test app."""

    def __init__(self, email: str) -> None:
        self.email = email
        self.id = email


def seen_user() -> str:
    """What get_user() says in this request."""
    try:
        user = get_user()
    except NoAccessContextError:
        return "no context"
    return "nobody" if user is None else str(user.email)


@pytest.fixture
def accounts() -> dict[str, Account]:
    """The app's accounts; tests delete some."""
    return {"ada@example.com": Account("ada@example.com")}


@pytest.fixture
def app(issuer: AccessIssuer, clock: FrozenClock, accounts: dict[str, Account]) -> Flask:
    """Routes of every kind: required, optional, no account needed, guarded, bridged."""
    app = Flask("state")
    app.config.update(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False), SECRET_KEY="x")
    cf_access = CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    login_manager = LoginManager()
    cf_access.init_login_manager(login_manager)
    login_manager.init_app(app)

    @cf_access.user_loader
    def load(identity: AccessIdentity) -> Account | None:
        return accounts.get(identity.email or "")

    @app.get("/required")
    @require_access
    def required() -> str:
        return seen_user()

    @app.get("/admins")
    @require_group("Admins")
    def admins() -> str:
        return seen_user()

    @app.get("/optional")
    @require_access(optional=True)
    def optional() -> str:
        return seen_user()

    @app.get("/no-account")
    @require_access(account=False)
    def no_account() -> str:
        return seen_user()

    @app.get("/in-view")
    def in_view() -> str:
        verify_access_in_request(require(), optional=True)
        return seen_user()

    @app.get("/probe")
    def probe() -> dict[str, Any]:
        return {"names": sorted(vars(g._get_current_object())), "user": seen_user()}

    def bridged() -> str:
        return str(flask_login.current_user.email)

    app.add_url_rule("/bridged", "bridged", login_required(bridged))

    @app.get("/bridged-open")
    def bridged_open() -> str:
        return str(flask_login.current_user.is_authenticated)

    area = Blueprint("area", __name__, url_prefix="/area")
    area.before_request(access_guard(require()))
    area.add_url_rule("/", "index", lambda: seen_user())
    app.register_blueprint(area)
    return app


@pytest.fixture
def client(app: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, issuer)


def test_optional_mark_does_not_reach_the_next_request(app: Flask, client: AccessClient) -> None:
    """After an optional request without a token, no account is still a 403, not nobody."""
    with app.app_context():
        assert client.get("/optional").text == "nobody"
        with capture_access() as captured:
            assert client.get("/required", as_user="eve@example.com").status_code == 403
        assert captured.reasons == [Reason.NO_ACCOUNT]
        assert client.get("/optional").text == "nobody"
        assert client.get("/probe").json == {"names": [], "user": "no context"}


def test_loaded_user_is_not_served_to_the_next_request(
    app: Flask, client: AccessClient, issuer: AccessIssuer, accounts: dict[str, Account]
) -> None:
    """The same token in the next request asks the loader again: a deleted account is gone."""
    token = issuer.user_token("ada@example.com")
    with app.app_context():
        assert client.get("/required", token=token).text == "ada@example.com"
        assert client.get("/no-account", token=token).text == "ada@example.com"
        del accounts["ada@example.com"]
        with capture_access() as captured:
            assert client.get("/required", token=token).status_code == 403
        assert captured.reasons == [Reason.NO_ACCOUNT]
        assert client.get("/no-account", token=token).text == "nobody"


def test_flask_login_user_is_not_served_to_the_next_request(
    app: Flask, client: AccessClient, captured: AccessCapture
) -> None:
    """The bridge's user on g goes with its request: no token next is anonymous again."""
    with app.app_context():
        assert client.get("/bridged", as_user="ada@example.com").text == "ada@example.com"
        assert client.get("/bridged").status_code == 401
        assert captured.denied == []  # Flask-Login's own 401: the access check refused nothing
        assert client.get("/bridged-open").text == "False"
        assert client.get("/bridged-open", as_user="ada@example.com").text == "True"
        assert client.get("/bridged-open").text == "False"


#: One request of every kind the package answers: (path, token options).
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "required": ("/required", {"as_user": "ada@example.com"}),
    "group": ("/admins", {"as_user": "ada@example.com", "groups": ["Admins"]}),
    "refused, 401": ("/required", {}),
    "refused, 403": ("/admins", {"as_user": "ada@example.com", "groups": ["Staff"]}),
    "refused, no account": ("/required", {"as_user": "eve@example.com"}),
    "optional, nobody": ("/optional", {}),
    "optional, user": ("/optional", {"as_user": "ada@example.com"}),
    "optional, no account": ("/optional", {"as_user": "eve@example.com"}),
    "no account needed": ("/no-account", {"as_user": "eve@example.com"}),
    "checked in the view": ("/in-view", {"as_user": "ada@example.com"}),
    "checked in the view, nobody": ("/in-view", {}),
    "blueprint guard": ("/area/", {"as_user": "ada@example.com"}),
    "login bridge": ("/bridged", {"as_user": "ada@example.com"}),
    "login bridge, anonymous": ("/bridged-open", {}),
    "login bridge, refused": ("/bridged", {"as_user": "eve@example.com"}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_name_set_on_g_survives_into_the_next_request(
    app: Flask, client: AccessClient, kind: str
) -> None:
    """Every name a request of this kind left on g is gone when the next one starts.

    The names are found by looking at g, not from a list: whatever the
    package sets, now or later, is covered.
    """
    path, options = KINDS[kind]
    with app.app_context():
        before = set(vars(g._get_current_object()))
        client.get(path, **options)
        left = set(vars(g._get_current_object())) - before
        answer = client.get("/probe").json
    assert answer is not None
    assert set(answer["names"]) & left == set()
    assert answer["user"] == "no context"


def test_every_kind_keeps_its_state_for_its_request_only(app: Flask, client: AccessClient) -> None:
    """The introspection above sees what it should while a request runs (the request
    state, and Flask-Login's), and nothing of it is left on ``g`` once the request ends."""
    during: set[str] = set()

    @app.teardown_request
    def look(error: BaseException | None) -> None:
        during.update(vars(g._get_current_object()))

    left: set[str] = set()
    for path, options in KINDS.values():
        with app.app_context():
            before = set(vars(g._get_current_object()))
            client.get(path, **options)
            left |= set(vars(g._get_current_object())) - before
    assert {"_cf_access", "cf_access_identity", "cf_access_claims", "_login_user"} <= during
    assert left == set()


@pytest.mark.parametrize(
    "read",
    [get_identity, get_user, lambda: current_user.email],
    ids=["get_identity", "get_user", "current_user"],
)
def test_an_open_view_after_a_protected_request_sees_nobody(
    app: Flask, client: AccessClient, read: Callable[[], object]
) -> None:
    """An open view in the next request raises NoAccessContextError, as in any open view."""

    @app.get("/open")
    def open_view() -> str:
        try:
            read()
        except NoAccessContextError:
            return "no context"
        return "leaked"

    with app.app_context():
        assert client.get("/required", as_user="ada@example.com").status_code == 200
        assert client.get("/open").text == "no context"
