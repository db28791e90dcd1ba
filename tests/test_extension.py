"""The extension object: app factory, per-app state, start-up behaviour."""

from __future__ import annotations

import pytest
import responses
from flask import Flask

from flask_cf_access import CloudflareAccess, Reason, require_access
from flask_cf_access._core.checker import AccessChecker
from flask_cf_access._flask.app_state import AccessState, access_state
from flask_cf_access.testing import AccessIssuer, run_inline

from .support import FrozenClock, bearer, outcome


def test_one_instance_serves_many_apps(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """init_app on two apps keeps their settings and state apart."""
    other = AccessIssuer("other-team.cloudflareaccess.com", clock=clock)
    mocked_team.get(other.certs_url, json=other.certs())
    cf_access = CloudflareAccess(clock=clock, background=run_inline)
    apps = []
    for team in (issuer, other):
        app = Flask(team.team_domain)
        app.config.update(team.settings())
        cf_access.init_app(app)

        @app.get("/")
        @require_access
        def home() -> str:
            return "ok"

        apps.append(app)
    first, second = apps
    assert first.extensions["cf_access"] is not second.extensions["cf_access"]
    assert not hasattr(cf_access, "app")
    token = issuer.user_token("ada@example.com")
    assert first.test_client().get("/", headers=bearer(token)).status_code == 200
    assert outcome(second, token) == (401, Reason.UNKNOWN_KID)
    other_token = other.user_token("ada@example.com")
    assert second.test_client().get("/", headers=bearer(other_token)).status_code == 200


def test_state_lives_in_app_extensions(app: Flask) -> None:
    """The per-app state is in app.extensions['cf_access'] and reached by access_state()."""
    with app.app_context():
        state = access_state()
    assert state is app.extensions["cf_access"]
    assert isinstance(state, AccessState)
    assert isinstance(state.checker, AccessChecker)


def test_init_app_adds_exactly_one_extensions_entry(issuer: AccessIssuer) -> None:
    """Everything init_app keeps for an app is under the one key 'cf_access'."""
    app = Flask("one-key")
    app.config.update(
        issuer.settings(CF_ACCESS_PROTECT_ALL=True, CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    )
    before = dict(app.extensions)
    cf_access = CloudflareAccess(app, background=run_inline)
    added = {key: value for key, value in app.extensions.items() if key not in before}
    assert list(added) == ["cf_access"]
    state = added["cf_access"]
    assert isinstance(state, AccessState)
    assert state.routes.protect_all

    @cf_access.user_loader
    def load(identity: object) -> str:
        return "user"

    assert state.users.loader is load


def test_access_state_without_init_app_or_app_context_is_a_clear_error() -> None:
    """access_state() says to call init_app, or that there is no app, never a KeyError."""
    with pytest.raises(RuntimeError, match="app context"):
        access_state()
    app = Flask("bare")
    with pytest.raises(RuntimeError, match="init_app"):
        access_state(app)
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        access_state()


def test_forgotten_init_app_is_a_clear_error() -> None:
    """Using the decorators on an app without init_app says what to do."""
    app = Flask("bare")

    @app.get("/")
    @require_access
    def home() -> str:
        return "never"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().get("/")


def test_init_app_with_constructor_app(issuer: AccessIssuer, mocked_team: object) -> None:
    """CloudflareAccess(app) calls init_app."""
    app = Flask("direct")
    app.config.update(issuer.settings())
    CloudflareAccess(app, background=run_inline)
    assert isinstance(app.extensions["cf_access"], AccessState)


def test_second_init_app_on_the_same_app_is_an_error(
    issuer: AccessIssuer, mocked_team: object
) -> None:
    """A second init_app on one app raises instead of silently replacing the first's state."""
    app = Flask("twice")
    app.config.update(issuer.settings())
    cf_access = CloudflareAccess(app, background=run_inline)
    first = app.extensions["cf_access"]
    for extension in (cf_access, CloudflareAccess(background=run_inline)):
        with pytest.raises(RuntimeError, match="already called"):
            extension.init_app(app)
    assert app.extensions["cf_access"] is first


def test_init_app_does_not_raise_when_keys_unavailable(
    issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A certs outage at start-up is logged; the app still starts."""
    mocked_team.replace(responses.GET, issuer.certs_url, status=500)
    app = Flask("outage")
    app.config.update(issuer.settings())
    CloudflareAccess(app, background=run_inline)
    assert app.extensions["cf_access"].checker.keys.current is None
