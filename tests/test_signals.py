"""access_granted and access_denied: sent by the decorators and by the middleware."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.test import Client

import flask_cf_access
from flask_cf_access import (
    AccessError,
    AccessForbidden,
    AccessIdentity,
    AccessUnauthorized,
    AccessUnavailable,
    CloudflareAccessMiddleware,
    Reason,
    access_denied,
    access_granted,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessIssuer, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer, identity_endpoint_down

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


@dataclass
class Sent:
    """One signal as a receiver got it."""

    signal: str
    sender: Any
    kwargs: dict[str, Any]


@pytest.fixture
def sent() -> Iterator[list[Sent]]:
    """Every access signal sent while the test runs, from any sender."""
    received: list[Sent] = []

    def on_granted(sender: Any, **kwargs: Any) -> None:
        received.append(Sent("granted", sender, kwargs))

    def on_denied(sender: Any, **kwargs: Any) -> None:
        received.append(Sent("denied", sender, kwargs))

    with access_granted.connected_to(on_granted), access_denied.connected_to(on_denied):
        yield received


def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def middleware(issuer: AccessIssuer, clock: FrozenClock) -> CloudflareAccessMiddleware:
    """A middleware around a plain WSGI app, /admin for Admins, /healthz open."""
    return CloudflareAccessMiddleware(
        downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        public_paths=["/healthz"],
        rules={"/admin": ["Admins"]},
        background=run_inline,
    )


def assert_no_token(token: str, signals: list[Sent]) -> None:
    """Nothing a receiver is given, nor the error's message or cause, holds the token."""
    for item in signals:
        assert token not in repr(item.kwargs)
        error = item.kwargs.get("error")
        while error is not None:
            assert token not in f"{error!s} {error!r} {error.args!r}"
            error = error.__cause__


def test_signals_reexported() -> None:
    """The package exports the same signal objects as flask_cf_access._core.signals."""
    assert flask_cf_access.access_granted is access_granted
    assert flask_cf_access.access_denied is access_denied


# -- Flask: decorators and verify_access_in_request --------------------------


def test_decorator_grant_sent_by_the_app(
    app: Flask, issuer: AccessIssuer, sent: list[Sent]
) -> None:
    """An admitted request sends access_granted once, the app (not a proxy) as sender."""
    response = app.test_client().get("/?q=1", headers=bearer(issuer.user_token("ada@example.com")))
    assert response.status_code == 200
    assert [item.signal for item in sent] == ["granted"]
    assert sent[0].sender is app
    assert set(sent[0].kwargs) == {"identity", "method", "path"}
    identity = sent[0].kwargs["identity"]
    assert isinstance(identity, AccessIdentity)
    assert identity.email == "ada@example.com"
    assert sent[0].kwargs["method"] == "GET"
    assert sent[0].kwargs["path"] == "/"


@pytest.mark.parametrize(
    ("path", "who", "error_type", "reason"),
    [
        ("/", None, AccessUnauthorized, Reason.MISSING_TOKEN),
        ("/admin", "bob", AccessForbidden, Reason.NOT_IN_GROUP),
        ("/admin", "ghost", AccessUnavailable, Reason.IDENTITY_UNAVAILABLE),
        ("/humans", "service", AccessForbidden, Reason.SERVICE_TOKEN_REFUSED),
    ],
)
def test_decorator_denial_sent_by_the_app(
    app: Flask,
    issuer: AccessIssuer,
    sent: list[Sent],
    path: str,
    who: str | None,
    error_type: type[AccessError],
    reason: Reason,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused request sends access_denied with the error and its reason, never the token."""
    if who == "ghost":
        identity_endpoint_down(issuer, monkeypatch)
    tokens = {
        None: None,
        "bob": issuer.user_token("bob@example.com", ["Staff"]),
        "ghost": issuer.mint({"email": "ghost@example.com", "sub": "ghost"}),
        "service": issuer.service_token(),
    }
    token = tokens[who]
    headers = bearer(token) if token else {}
    response = app.test_client().get(path, headers=headers)
    assert [item.signal for item in sent] == ["denied"]
    assert sent[0].sender is app
    assert set(sent[0].kwargs) == {"error", "reason", "method", "path", "identity"}
    error = sent[0].kwargs["error"]
    assert isinstance(error, error_type)
    identity = sent[0].kwargs["identity"]
    if error.code == 401:
        assert identity is None
    else:
        names = {"bob": "bob@example.com", "ghost": "ghost@example.com"}
        assert identity.name == names.get(str(who), "test-client.access")
    assert sent[0].kwargs["reason"] is reason is error.reason
    assert response.status_code == error.code
    assert sent[0].kwargs["path"] == path
    if token:
        assert_no_token(token, sent)


def test_bad_token_denial_carries_no_token(
    app: Flask, issuer: AccessIssuer, sent: list[Sent], clock: FrozenClock
) -> None:
    """Expired or badly signed tokens: the denial names the reason, not the token."""
    expired = issuer.user_token("ada@example.com")
    tampered = expired[:-4] + ("AAAA" if not expired.endswith("AAAA") else "BBBB")
    assert app.test_client().get("/", headers=bearer(tampered)).status_code == 401
    clock.advance(2 * 24 * 3600)
    assert app.test_client().get("/", headers=bearer(expired)).status_code == 401
    assert [item.kwargs["reason"] for item in sent] == [Reason.BAD_SIGNATURE, Reason.EXPIRED]
    assert_no_token(expired, sent)
    assert_no_token(tampered, sent)


def test_custom_guard_sends_signals(
    make_app: AppFactory, issuer: AccessIssuer, sent: list[Sent]
) -> None:
    """verify_access_in_request() in a before_request sends them too."""
    app = make_app()

    @app.before_request
    def guard() -> None:
        verify_access_in_request()

    client = app.test_client()
    assert client.get("/open").status_code == 401
    assert (
        client.get("/open", headers=bearer(issuer.user_token("a@example.com"))).status_code == 200
    )
    assert [(item.signal, item.sender) for item in sent] == [("denied", app), ("granted", app)]


def test_connect_via_one_app_hears_only_that_app(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """Receivers connected for one app are not told about another's requests."""
    first, second = make_app(), make_app()
    heard: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        heard.append(sender)

    token = issuer.user_token("ada@example.com")
    with access_granted.connected_to(receiver, first):
        assert second.test_client().get("/", headers=bearer(token)).status_code == 200
        assert heard == []
        assert first.test_client().get("/", headers=bearer(token)).status_code == 200
    assert heard == [first]


def test_unprotected_view_sends_nothing(app: Flask, sent: list[Sent]) -> None:
    """A view without a check sends no signal."""
    assert app.test_client().get("/open").status_code == 200
    assert sent == []


# -- the middleware ---------------------------------------------------------


def test_middleware_grant_sent_by_the_middleware(
    middleware: CloudflareAccessMiddleware, issuer: AccessIssuer, sent: list[Sent]
) -> None:
    """The middleware sends access_granted itself, with the same arguments."""
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert Client(middleware).get("/admin/x", headers=bearer(token)).status_code == 200
    assert [(item.signal, item.sender) for item in sent] == [("granted", middleware)]
    assert set(sent[0].kwargs) == {"identity", "method", "path"}
    assert sent[0].kwargs["identity"].email == "ada@example.com"
    assert (sent[0].kwargs["method"], sent[0].kwargs["path"]) == ("GET", "/admin/x")
    assert_no_token(token, sent)


def test_middleware_denials(
    middleware: CloudflareAccessMiddleware,
    issuer: AccessIssuer,
    sent: list[Sent],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """401, 403 and 503 refusals each send access_denied, sender the middleware."""
    client = Client(middleware)
    bob = issuer.user_token("bob@example.com", ["Staff"])
    ghost = issuer.mint({"email": "ghost@example.com", "sub": "ghost"})
    assert client.post("/", headers=bearer("not-a-token")).status_code == 401
    assert client.get("/admin", headers=bearer(bob)).status_code == 403
    identity_endpoint_down(issuer, monkeypatch)
    assert client.get("/admin", headers=bearer(ghost)).status_code == 503
    assert all(item.signal == "denied" and item.sender is middleware for item in sent)
    assert [
        (item.kwargs["method"], item.kwargs["reason"], item.kwargs["error"].code) for item in sent
    ] == [
        ("POST", Reason.MALFORMED_TOKEN, 401),
        ("GET", Reason.NOT_IN_GROUP, 403),
        ("GET", Reason.IDENTITY_UNAVAILABLE, 503),
    ]
    assert_no_token(bob, sent)
    assert_no_token(ghost, sent)


def test_middleware_public_path_sends_nothing(
    middleware: CloudflareAccessMiddleware, sent: list[Sent]
) -> None:
    """Public paths are not checked, so nothing is sent."""
    assert Client(middleware).get("/healthz").status_code == 200
    assert sent == []


def test_middleware_and_decorator_send_one_signal_the_one_that_decided(
    make_app: AppFactory, issuer: AccessIssuer, sent: list[Sent]
) -> None:
    """A Flask app behind the middleware: each request sends one signal, saying what
    the client got. Where the app checks too, its decision is the one reported
    (its refusal included: no grant from the middleware before it); where it
    does not, the middleware's grant is, as the answer starts."""
    app = make_app()
    middleware = CloudflareAccessMiddleware.from_flask(app)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    client = app.test_client()
    ada = issuer.user_token("ada@example.com")
    assert client.get("/", headers=bearer(ada)).status_code == 200
    assert [(item.signal, item.sender) for item in sent] == [("granted", app)]

    sent.clear()
    response = client.get("/admin", headers=bearer(ada))
    assert response.status_code == 403
    assert [(item.signal, item.sender, item.kwargs["reason"]) for item in sent] == [
        ("denied", app, Reason.NOT_IN_GROUP)
    ]

    sent.clear()
    assert client.get("/open", headers=bearer(ada)).status_code == 200
    assert [(item.signal, item.sender) for item in sent] == [("granted", middleware)]
    assert sent[0].kwargs["identity"].email == "ada@example.com"

    sent.clear()
    assert client.get("/open").status_code == 401
    assert [(item.signal, item.sender, item.kwargs["reason"]) for item in sent] == [
        ("denied", middleware, Reason.MISSING_TOKEN)
    ]
