"""CORS preflights: never refused when Flask answers them, passed by the middleware on request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint
from werkzeug.test import Client

from flask_cf_access import (
    CloudflareAccessMiddleware,
    Reason,
    require_access,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessCapture, AccessIssuer, run_inline

from .conftest import AppFactory
from .support import FrozenClock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

PREFLIGHT = {
    "Origin": "https://other.example",
    "Access-Control-Request-Method": "POST",
}


def test_automatic_options_is_never_refused(make_app: AppFactory, captured: AccessCapture) -> None:
    """Flask's own OPTIONS answer runs no guard, not even a blueprint's before_request."""
    app = make_app()
    guarded = Blueprint("guarded", __name__)

    @guarded.before_request
    def guard() -> None:
        verify_access_in_request()

    @guarded.post("/thing")
    def thing() -> str:
        return "done"

    app.register_blueprint(guarded, url_prefix="/g")
    client = app.test_client()
    for path in ("/g/thing", "/"):
        response = client.options(path, headers=PREFLIGHT)
        assert response.status_code == 200, path
        assert "OPTIONS" in response.headers["Allow"]
    assert client.post("/g/thing").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN


def test_hand_written_options_is_protected(make_app: AppFactory, captured: AccessCapture) -> None:
    """A view that handles OPTIONS itself is protected like any other method."""
    app = make_app()

    @app.route("/cors", methods=["OPTIONS", "POST"])
    @require_access
    def cors() -> str:
        return "handled"

    response = app.test_client().options("/cors", headers=PREFLIGHT)
    assert response.status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN


def _downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("204 No Content", [])
    return []


def _client(issuer: AccessIssuer, clock: FrozenClock, **options: Any) -> Client:
    return Client(
        CloudflareAccessMiddleware(
            _downstream,
            team_domain=issuer.team_domain,
            audience=issuer.audience,
            session=issuer.session(),
            clock=clock,
            **options,
            background=run_inline,
        )
    )


def test_middleware_refuses_preflights_by_default(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """Without ``allow_preflight`` an OPTIONS without a token gets 401."""
    assert _client(issuer, clock).options("/api", headers=PREFLIGHT).status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN


def test_middleware_passes_preflights_when_allowed(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """With ``allow_preflight=True`` only a real preflight passes without a token."""
    client = _client(issuer, clock, allow_preflight=True)
    assert client.options("/api", headers=PREFLIGHT).status_code == 204
    assert client.options("/api", headers={"Origin": "https://x.example"}).status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
    assert (
        client.options("/api", headers={"Access-Control-Request-Method": "POST"}).status_code == 401
    )
    assert captured.last.reason is Reason.MISSING_TOKEN
    assert client.post("/api", headers=PREFLIGHT).status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
