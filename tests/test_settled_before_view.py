"""Whether a request is admitted is settled before any line of the view runs.

An identity without an account is refused (403, ``no_account``) with the
check, before the view: however the view reads the user (``repr``, ``==``,
``in``, a ``try`` around it, async), it cannot swallow the refusal, and the
status, the reason, the log line and the signal agree. Where a route needs no
account, the user is ``None`` and reading it never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import flask_login
import pytest
from flask import Blueprint, Flask
from flask_login import LoginManager, UserMixin, login_required

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    Reason,
    access_guard,
    current_user,
    get_user,
    require,
    require_access,
    require_role,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessClient, AccessIssuer, capture_access, run_inline

from .support import FrozenClock


class Account(UserMixin):  # type: ignore[misc]
    """An account of the test app."""

    def __init__(self, email: str) -> None:
        self.email = email
        self.id = email

    def __repr__(self) -> str:
        return f"Account({self.email!r})"


def _repr() -> object:
    return repr(current_user)


def _str() -> object:
    return str(current_user)


def _equals() -> object:
    return current_user == "someone"


def _in() -> object:
    return current_user in ["someone"]


def _bool() -> object:
    return bool(current_user)


def _getattr() -> object:
    return getattr(current_user, "email", "no email")


def _swallowed() -> object:
    try:
        return current_user.email
    except Exception:
        return "swallowed"


def _get_user_swallowed() -> object:
    try:
        return get_user()
    except Exception:
        return "swallowed"


def _not_at_all() -> object:
    return "never read"


READS: dict[str, Callable[[], object]] = {
    "repr": _repr,
    "str": _str,
    "==": _equals,
    "in": _in,
    "bool": _bool,
    "getattr": _getattr,
    "try/except Exception": _swallowed,
    "get_user in try": _get_user_swallowed,
    "not read": _not_at_all,
}

ROUTES = ("/plain/{}", "/async/{}", "/role/{}", "/area/{}", "/unmarked/{}")


@pytest.fixture
def ran() -> list[str]:
    """The views that ran."""
    return []


@pytest.fixture
def app(issuer: AccessIssuer, clock: FrozenClock, ran: list[str]) -> Flask:
    """Every way of reading the user, behind every kind of guard."""
    app = Flask("settled")
    app.config.update(
        issuer.settings(
            CF_ACCESS_ROLES={"staff": ["Staff"]},
            CF_ACCESS_PROTECT_ALL=True,
            CF_ACCESS_LOAD_KEYS_ON_INIT=False,
        )
    )
    cf_access = CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    accounts = {"ada@example.com": Account("ada@example.com")}

    @cf_access.user_loader
    def load(identity: AccessIdentity) -> Account | None:
        return accounts.get(identity.email or "")

    area = Blueprint("area", __name__, url_prefix="/area")

    @area.before_request
    def guard() -> None:
        verify_access_in_request()

    for name, read in READS.items():

        def view(read: Callable[[], object] = read, name: str = name) -> str:
            ran.append(name)
            return str(read())

        async def async_view(read: Callable[[], object] = read, name: str = name) -> str:
            ran.append(name)
            return str(read())

        app.add_url_rule(f"/plain/{name}", f"plain {name}", require_access(view))
        app.add_url_rule(f"/async/{name}", f"async {name}", require_access(async_view))
        app.add_url_rule(f"/role/{name}", f"role {name}", require_role("staff")(view))
        area.add_url_rule(f"/{name}", f"area {name}", view)
        app.add_url_rule(f"/unmarked/{name}", f"unmarked {name}", view)
        app.add_url_rule(
            f"/no-account/{name}", f"no-account {name}", require_access(account=False)(view)
        )
        app.add_url_rule(
            f"/optional/{name}", f"optional {name}", require_access(optional=True)(view)
        )
    app.register_blueprint(area)
    return app


@pytest.fixture
def client(app: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, issuer)


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("route", ROUTES)
def test_no_account_is_refused_before_the_view(
    client: AccessClient,
    ran: list[str],
    caplog: pytest.LogCaptureFixture,
    route: str,
    read: str,
) -> None:
    """403 no_account, the view never runs, one log line and one signal say the same."""
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"), capture_access() as captured:
        response = client.get(route.format(read), as_user="eve@example.com", groups=["Staff"])
    assert response.status_code == 403
    assert ran == []
    assert [(record.granted, record.reason, record.status) for record in captured] == [
        (False, Reason.NO_ACCOUNT, 403)
    ]
    assert [record.getMessage().rsplit(": ", 1)[1] for record in caplog.records] == [
        "403 no_account"
    ]


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("route", ROUTES)
def test_an_account_reaches_the_view(
    client: AccessClient, ran: list[str], route: str, read: str
) -> None:
    """With an account the view runs, once, with one granted signal."""
    with capture_access() as captured:
        response = client.get(route.format(read), as_user="ada@example.com", groups=["Staff"])
    assert response.status_code == 200
    assert ran == [read]
    assert [record.granted for record in captured] == [True]


EXPECTED_NOBODY = {
    "repr": "None",
    "str": "None",
    "==": "False",
    "in": "False",
    "bool": "False",
    "getattr": "no email",
    "try/except Exception": "swallowed",  # None.email: an AttributeError of the view's own
    "get_user in try": "None",
    "not read": "never read",
}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize(
    ("route", "token"),
    [("/no-account/{}", True), ("/optional/{}", True), ("/optional/{}", False)],
)
def test_where_no_account_is_needed_the_user_is_none(
    client: AccessClient, ran: list[str], route: str, token: bool, read: str
) -> None:
    """account=False and optional routes: nobody is None, reading it never refuses."""
    as_user = "eve@example.com" if token else None
    with capture_access() as captured:
        response = client.get(route.format(read), as_user=as_user)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == EXPECTED_NOBODY[read]
    assert ran == [read]
    assert all(record.granted for record in captured)


def test_flask_login_bridge_refuses_before_the_view(
    issuer: AccessIssuer, clock: FrozenClock, ran: list[str]
) -> None:
    """Through Flask-Login: @login_required refuses no account (403) before the view."""
    app = Flask("bridged")
    app.config.update(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False), SECRET_KEY="x")
    cf_access = CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    login_manager = LoginManager()
    cf_access.init_login_manager(login_manager)
    login_manager.init_app(app)
    cf_access.user_loader(lambda identity: None)

    def home() -> str:
        ran.append("home")
        try:
            return repr(flask_login.current_user)
        except Exception:
            return "swallowed"

    app.add_url_rule("/", "home", login_required(home))

    client = AccessClient.for_app(app, issuer)
    with capture_access() as captured:
        response = client.get("/", as_user="eve@example.com")
    assert (response.status_code, captured.reasons, ran) == (403, [Reason.NO_ACCOUNT], [])


def test_loader_runs_once_for_stacked_guards(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: Any
) -> None:
    """A blueprint guard and the view's decorator: one load, one signal."""
    app = Flask("once")
    app.config.update(issuer.settings())
    cf_access = CloudflareAccess(app, clock=clock, background=run_inline)
    asked: list[str] = []

    @cf_access.user_loader
    def load(identity: AccessIdentity) -> str:
        asked.append(identity.name)
        return identity.name

    area = Blueprint("area", __name__)

    @area.before_request
    def guard() -> None:
        verify_access_in_request()

    @area.get("/")
    @require_access
    def index() -> str:
        return str(current_user)

    app.register_blueprint(area)
    with capture_access() as captured:
        response = AccessClient.for_app(app, issuer).get("/", as_user="ada@example.com")
    assert response.text == "ada@example.com"
    assert asked == ["ada@example.com"]
    assert [record.granted for record in captured] == [True]


@pytest.mark.parametrize(
    ("stack", "status"),
    [
        ((require_access(account=False), require_role("staff")), 200),
        ((require_role("staff"), require_access(account=False)), 200),
        ((require_role("staff", account=False),), 200),
        ((require_role("staff"),), 403),
    ],
)
def test_account_false_holds_for_the_whole_stack(
    app: Flask, client: AccessClient, stack: tuple[Callable[[Any], Any], ...], status: int
) -> None:
    """account=False on any decorator of a view's stack, in either order, is the view's."""

    def page() -> str:
        return "nobody" if get_user() is None else "someone"

    for decorator in reversed(stack):
        page = decorator(page)
    app.add_url_rule("/stack", "stack", page)
    response = client.get("/stack", as_user="eve@example.com", groups=["Staff"])
    assert response.status_code == status
    if status == 200:
        assert response.text == "nobody"


def test_account_false_does_not_waive_a_blueprint_guards_account(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """A view's account=False under a guard that needs an account: the account is needed."""
    app = Flask("waive")
    app.config.update(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    cf_access = CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    cf_access.user_loader(lambda identity: None)
    area = Blueprint("area", __name__)
    area.before_request(access_guard(require()))
    area.add_url_rule("/", "index", require_access(account=False)(lambda: "index"))
    relaxed = Blueprint("relaxed", __name__, url_prefix="/relaxed")
    relaxed.before_request(access_guard(require(), account=False))
    relaxed.add_url_rule("/", "index", require_access(account=False)(lambda: "relaxed"))
    app.register_blueprint(area)
    app.register_blueprint(relaxed)
    client = AccessClient.for_app(app, issuer)
    with capture_access() as captured:
        assert client.get("/", as_user="eve@example.com").status_code == 403
        assert client.get("/relaxed/", as_user="eve@example.com").text == "relaxed"
    assert captured.reasons == [Reason.NO_ACCOUNT]
