"""The identity belongs to one request, even when an app context outlives several."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import responses
from flask import Flask, g
from flask.ctx import _AppCtxGlobals

from flask_cf_access import (
    AccessError,
    CloudflareAccess,
    NoAccessContextError,
    get_identity,
    require,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessIssuer, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer


def seen_identity() -> str:
    """The name get_identity() gives in this request, or "nobody"."""
    try:
        return get_identity().name
    except NoAccessContextError:
        return "nobody"


def add_probes(app: Flask) -> None:
    """Routes that read get_identity() after a refused check, or after none."""

    @app.get("/maybe")
    def maybe() -> str:
        with contextlib.suppress(AccessError):
            verify_access_in_request()
        return seen_identity()

    @app.get("/peek")
    def peek() -> str:
        return seen_identity()

    @app.errorhandler(401)
    @app.errorhandler(403)
    def refused(error: Any) -> tuple[str, int]:
        return seen_identity(), error.code


@pytest.fixture
def probed_app(make_app: AppFactory) -> Flask:
    """The test app with the probing routes."""
    app = make_app()
    add_probes(app)
    return app


def test_no_identity_after_a_request_without_token(probed_app: Flask, issuer: AccessIssuer) -> None:
    """In an outer app context, a tokenless request does not see the previous identity."""
    client = probed_app.test_client()
    with probed_app.app_context():
        assert (
            client.get("/", headers=bearer(issuer.user_token("ada@example.com"))).status_code == 200
        )
        assert client.get("/maybe").get_data(as_text=True) == "nobody"
        assert client.get("/peek").get_data(as_text=True) == "nobody"


@pytest.mark.parametrize(("path", "status"), [("/", 401), ("/admin", 403)])
def test_no_identity_in_a_refused_request(
    probed_app: Flask, issuer: AccessIssuer, path: str, status: int
) -> None:
    """A refused request (401 or 403) does not see the identity of the one before."""
    client = probed_app.test_client()
    refused = {
        401: issuer.user_token("eve@example.com", expired=True),
        403: issuer.user_token("bob@example.com", ["Staff"]),
    }[status]
    with probed_app.app_context():
        assert (
            client.get("/", headers=bearer(issuer.user_token("ada@example.com"))).status_code == 200
        )
        response = client.get(path, headers=bearer(refused))
        assert response.status_code == status
        assert response.get_data(as_text=True) == "nobody"


def test_a_failed_check_forgets_a_passed_one_in_the_same_request(
    probed_app: Flask, issuer: AccessIssuer
) -> None:
    """A second, failing check in one request removes what the first one put on g."""

    @probed_app.get("/twice")
    def twice() -> str:
        verify_access_in_request()
        with contextlib.suppress(AccessError):
            verify_access_in_request(require(groups=["Admins"]))
        return seen_identity()

    token = issuer.user_token("bob@example.com", ["Staff"])
    assert probed_app.test_client().get("/twice", headers=bearer(token)).text == "nobody"


def test_guard_registered_before_init_app_still_admits(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """An app-wide before_request guard added before init_app keeps its identity for the view."""
    app = Flask("early_guard")
    app.config.update(issuer.settings())

    @app.before_request
    def guard() -> None:
        verify_access_in_request()

    CloudflareAccess(app, clock=clock, background=run_inline)

    @app.get("/")
    def home() -> str:
        return seen_identity()

    token = issuer.user_token("ada@example.com")
    with app.app_context():
        assert app.test_client().get("/", headers=bearer(token)).text == "ada@example.com"
        assert app.test_client().get("/", headers=bearer(token)).text == "ada@example.com"


class OwnGlobals(_AppCtxGlobals):
    """An app's own g class."""


def test_own_g_class_is_cleared_too(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """With an app's own g class, a tokenless request sees no earlier identity either."""
    app = Flask("own_g")
    app.app_ctx_globals_class = OwnGlobals
    app.config.update(issuer.settings())
    CloudflareAccess(app, clock=clock, background=run_inline)
    add_probes(app)

    @app.get("/")
    def home() -> str:
        verify_access_in_request()
        return seen_identity()

    client = app.test_client()
    with app.app_context():
        assert client.get("/", headers=bearer(issuer.user_token("ada@example.com"))).text == (
            "ada@example.com"
        )
        assert client.get("/maybe").text == "nobody"
        assert client.get("/peek").text == "nobody"


@pytest.mark.parametrize("second", [None, "not-a-token"], ids=["no token", "bad token"])
def test_request_contexts_sharing_an_app_context_are_checked_each(
    probed_app: Flask, issuer: AccessIssuer, second: str | None
) -> None:
    """A request context pushed without dispatch (no request_started) inside an app context
    that served another is checked afresh: the earlier one's decision is not reused."""
    ada = bearer(issuer.user_token("ada@example.com"))
    with probed_app.app_context():
        with probed_app.test_request_context("/peek", headers=ada):
            assert verify_access_in_request().email == "ada@example.com"
        with probed_app.test_request_context("/peek", headers=bearer(second) if second else {}):
            with pytest.raises(AccessError):
                verify_access_in_request()
            assert seen_identity() == "nobody"


def test_accessors_see_nothing_of_another_request_context(
    probed_app: Flask, issuer: AccessIssuer
) -> None:
    """An unchecked request context after a checked one, in one app context, has no identity."""
    ada = bearer(issuer.user_token("ada@example.com"))
    with probed_app.app_context():
        with probed_app.test_request_context("/peek", headers=ada):
            verify_access_in_request()
            assert seen_identity() == "ada@example.com"
        with probed_app.test_request_context("/peek"):
            assert seen_identity() == "nobody"
            assert get_identity(default=None) is None


@pytest.mark.parametrize("second_checked", [False, True], ids=["unchecked", "optional"])
def test_g_holds_nothing_of_a_request_context_torn_down(
    probed_app: Flask, issuer: AccessIssuer, second_checked: bool
) -> None:
    """Once a request context is torn down, g (which the app context keeps) holds none of
    the names a check set, so the next request context, checked or not, reads nothing."""
    ada = bearer(issuer.user_token("ada@example.com"))
    names = ("cf_access_identity", "cf_access_claims", "_cf_access")
    with probed_app.app_context():
        with probed_app.test_request_context("/peek", headers=ada):
            verify_access_in_request()
            assert all(name in g for name in names)
        assert [name for name in names if name in g] == []
        with probed_app.test_request_context("/peek"):
            if second_checked:
                assert verify_access_in_request(optional=True) is None
            assert g.get("cf_access_identity") is None
            assert g.get("cf_access_claims") is None


def test_teardown_functions_still_read_the_identity(
    probed_app: Flask, issuer: AccessIssuer
) -> None:
    """The app's own teardown_request functions run before the names go."""
    seen: list[str] = []

    @probed_app.teardown_request
    def remember(error: BaseException | None) -> None:
        seen.append(g.cf_access_identity.email)

    probed_app.test_client().get("/maybe", headers=bearer(issuer.user_token("ada@example.com")))
    assert seen == ["ada@example.com"]
