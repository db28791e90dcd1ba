"""CF_ACCESS_PROTECT_ALL: every endpoint needs a token unless marked public."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, g

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    Reason,
    access_guard,
    current_identity,
    require,
    require_role,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessCapture, AccessIssuer, run_inline

from .support import FrozenClock, bearer, decisions

cf_access = CloudflareAccess(background=run_inline)


def make_app(issuer: AccessIssuer, clock: FrozenClock, tmp_path: Path, **config: Any) -> Flask:
    """An app with deny by default on, a static folder and views of every kind."""
    (tmp_path / "static").mkdir(exist_ok=True)
    (tmp_path / "static" / "app.css").write_text("body {}")
    app = Flask("deny", static_folder=str(tmp_path / "static"))
    app.config.update(
        issuer.settings(
            CF_ACCESS_PROTECT_ALL=True,
            CF_ACCESS_ROLES={"admin": ["Admins"]},
            CF_ACCESS_LOAD_KEYS_ON_INIT=False,
            **config,
        )
    )
    ran: list[str] = []
    app.extensions["ran"] = ran

    @app.before_request
    def earlier_hook() -> None:
        ran.append("earlier hook")

    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.get("/")
    def home() -> str:
        return current_identity.name

    @app.get("/health")
    @cf_access.public
    def health() -> str:
        return "ok"

    @cf_access.public
    @app.get("/ping")
    def ping() -> str:
        return "pong"

    @app.get("/listed")
    def listed() -> str:
        return "listed"

    @app.get("/admin")
    @require_role("admin")
    def admin() -> str:
        return "admin"

    @app.route("/own-options", methods=["GET", "OPTIONS"])
    def own_options() -> str:
        return "own"

    @app.get("/async")
    async def async_view() -> str:
        await asyncio.sleep(0)
        return current_identity.name

    guarded = Blueprint("guarded", __name__)
    guarded.before_request(access_guard(require(roles=["admin"])))
    guarded.add_url_rule("/", "index", lambda: "guarded")
    app.register_blueprint(guarded, url_prefix="/guarded")

    plain_guard = Blueprint("plain_guard", __name__)

    @plain_guard.before_request
    def only_admins() -> None:
        verify_access_in_request(require(roles=["admin"]))

    plain_guard.add_url_rule("/", "index", lambda: "plain guard")
    app.register_blueprint(plain_guard, url_prefix="/plain-guard")
    return app


@pytest.fixture
def app(issuer: AccessIssuer, clock: FrozenClock, tmp_path: Path) -> Flask:
    """The deny-by-default app, 'listed' in CF_ACCESS_PUBLIC_ENDPOINTS."""
    return make_app(issuer, clock, tmp_path, CF_ACCESS_PUBLIC_ENDPOINTS=["listed"])


def test_unmarked_view_needs_a_token(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A view with no decorator answers 401 without a token and 200 with one."""
    client = app.test_client()
    assert client.get("/").status_code == 401
    assert decisions(captured) == [("denied", Reason.MISSING_TOKEN)]
    response = client.get("/", headers=bearer(issuer.user_token("ada@example.com")))
    assert response.get_data(as_text=True) == "ada@example.com"


def test_refused_before_the_apps_own_hooks(app: Flask, captured: AccessCapture) -> None:
    """The hook runs first: a hook registered before init_app does not run for a refusal."""
    assert app.test_client().get("/").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
    assert app.extensions["ran"] == []


def test_public_views(app: Flask, captured: AccessCapture) -> None:
    """@cf_access.public (on either side of the route) and listed endpoints need no token."""
    client = app.test_client()
    assert client.get("/health").get_data(as_text=True) == "ok"
    assert client.get("/ping").get_data(as_text=True) == "pong"
    assert client.get("/listed").get_data(as_text=True) == "listed"
    assert decisions(captured) == []


def test_static_needs_a_token_unless_listed(
    issuer: AccessIssuer, clock: FrozenClock, tmp_path: Path, captured: AccessCapture
) -> None:
    """The static endpoint is protected too, unless CF_ACCESS_PUBLIC_ENDPOINTS lists it."""
    closed = make_app(issuer, clock, tmp_path).test_client()
    assert closed.get("/static/app.css").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
    token = issuer.user_token("ada@example.com")
    with closed.get("/static/app.css", headers=bearer(token)) as response:
        assert response.status_code == 200
    opened = make_app(issuer, clock, tmp_path, CF_ACCESS_PUBLIC_ENDPOINTS=["static"])
    with opened.test_client().get("/static/app.css") as response:
        assert response.get_data(as_text=True) == "body {}"


def test_automatic_options_not_refused(app: Flask, captured: AccessCapture) -> None:
    """Flask's automatic OPTIONS answer passes; a view handling OPTIONS itself is protected."""
    client = app.test_client()
    response = client.options("/")
    assert response.status_code == 200
    assert "GET" in response.headers["Allow"]
    assert client.options("/admin").status_code == 200
    assert decisions(captured) == []
    assert client.options("/own-options").status_code == 401
    assert decisions(captured) == [("denied", Reason.MISSING_TOKEN)]


def test_unknown_urls_still_404(app: Flask, captured: AccessCapture) -> None:
    """No route: 404, not 401; a route without the method: 405; no signal either way."""
    client = app.test_client()
    assert client.get("/nowhere").status_code == 404
    assert client.post("/").status_code == 405
    assert decisions(captured) == []


def test_decorated_view_checked_once(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A view with its own requirement is verified once: one signal, the view's reason."""
    client = app.test_client()
    ada = issuer.user_token("ada@example.com", ["Admins"])
    assert client.get("/admin", headers=bearer(ada)).status_code == 200
    assert [kind for kind, _ in decisions(captured)] == ["granted"]
    captured.clear()
    bob = issuer.user_token("bob@example.com", ["Staff"])
    assert client.get("/admin", headers=bearer(bob)).status_code == 403
    assert decisions(captured) == [("denied", Reason.NO_ROLE)]
    captured.clear()
    assert client.get("/admin").status_code == 401
    assert decisions(captured) == [("denied", Reason.MISSING_TOKEN)]


def test_access_guard_checked_once(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A blueprint guarded by access_guard is verified once, by the guard."""
    client = app.test_client()
    ada = issuer.user_token("ada@example.com", ["Admins"])
    assert client.get("/guarded/", headers=bearer(ada)).status_code == 200
    assert [kind for kind, _ in decisions(captured)] == ["granted"]
    captured.clear()
    bob = issuer.user_token("bob@example.com", ["Staff"])
    assert client.get("/guarded/", headers=bearer(bob)).status_code == 403
    assert decisions(captured) == [("denied", Reason.NO_ROLE)]


def test_plain_blueprint_guard_adds_to_it(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A hand-written guard still applies after the hook, and the request is decided once:
    the guard's refusal or grant is the one reported."""
    client = app.test_client()
    bob = issuer.user_token("bob@example.com", ["Staff"])
    assert client.get("/plain-guard/", headers=bearer(bob)).status_code == 403
    assert decisions(captured) == [("denied", Reason.NO_ROLE)]
    captured.clear()
    ada = issuer.user_token("ada@example.com", ["Admins"])
    assert client.get("/plain-guard/", headers=bearer(ada)).status_code == 200
    assert [kind for kind, _ in decisions(captured)] == ["granted"]
    captured.clear()
    assert client.get("/plain-guard/").status_code == 401
    assert decisions(captured) == [("denied", Reason.MISSING_TOKEN)]


def test_app_hook_that_checks_nothing_still_gets_one_grant(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A before_request function of the app's own that does not check: the hook's grant
    is reported once, when the request ends."""

    @app.before_request
    def locale() -> None:
        return None

    ada = issuer.user_token("ada@example.com")
    assert app.test_client().get("/", headers=bearer(ada)).text == "ada@example.com"
    assert [kind for kind, _ in decisions(captured)] == ["granted"]


def test_async_view_protected(app: Flask, issuer: AccessIssuer, captured: AccessCapture) -> None:
    """An async view without a decorator is protected too."""
    client = app.test_client()
    assert client.get("/async").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
    token = issuer.user_token("ada@example.com")
    assert client.get("/async", headers=bearer(token)).get_data(as_text=True) == "ada@example.com"


def test_identity_on_g_for_unmarked_views(app: Flask, issuer: AccessIssuer) -> None:
    """The hook leaves the identity where the decorators do."""
    seen: list[Any] = []

    @app.get("/g")
    def on_g() -> str:
        seen.append(g.cf_access_identity)
        return ""

    app.test_client().get("/g", headers=bearer(issuer.user_token("ada@example.com")))
    assert isinstance(seen[0], AccessIdentity)


def test_off_by_default(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Without CF_ACCESS_PROTECT_ALL, an undecorated view stays open."""
    app = Flask("open")
    app.config.update(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    app.add_url_rule("/", "home", lambda: "open")
    assert app.test_client().get("/").status_code == 200


def test_foreign_wrapper_of_a_guarded_view_still_checked(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """A decorator above ours copies our attributes (functools.wraps) but may not call the
    view: the hook does not trust the copy and still asks for a token."""

    def short_circuit(view: Any) -> Any:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> str:
            return "served without calling the view"

        return wrapper

    @app.get("/cached")
    @short_circuit
    @require_role("admin")
    def cached() -> str:
        return "view"

    client = app.test_client()
    assert client.get("/cached").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
    token = issuer.user_token("ada@example.com")
    assert client.get("/cached", headers=bearer(token)).status_code == 200
