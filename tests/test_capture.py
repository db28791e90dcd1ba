"""flask_cf_access.testing.capture_access: decisions captured with their reasons."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.test import Client

from flask_cf_access import (
    AccessForbidden,
    AccessUnauthorized,
    CloudflareAccessMiddleware,
    Reason,
    access_denied,
    access_granted,
)
from flask_cf_access.testing import (
    AccessCapture,
    AccessIssuer,
    AccessRecord,
    capture_access,
    run_inline,
)

from .conftest import AppFactory
from .support import FrozenClock, Outcome, bearer, outcome

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.fixture
def middleware(issuer: AccessIssuer, clock: FrozenClock) -> CloudflareAccessMiddleware:
    """A middleware around a plain WSGI app, /admin for Admins."""
    return CloudflareAccessMiddleware(
        downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        rules={"/admin": ["Admins"]},
        background=run_inline,
    )


def test_refusal_recorded_with_reason_and_status(app: Flask, issuer: AccessIssuer) -> None:
    """A refused request is one record: not granted, its reason, status, method and path."""
    with capture_access(app) as captured:
        app.test_client().get("/", headers=bearer(issuer.user_token("a@x.com", expired=True)))
    assert captured == [
        AccessRecord(
            granted=False,
            reason=Reason.EXPIRED,
            status=401,
            method="GET",
            path="/",
            identity=None,
            error=captured.last.error,
            sender=app,
        )
    ]
    assert isinstance(captured.last.error, AccessUnauthorized)
    assert captured.reasons == [Reason.EXPIRED]


def test_grant_recorded_with_identity(app: Flask, issuer: AccessIssuer) -> None:
    """A request let through is a record with the identity and no reason, status or error."""
    with capture_access(app) as captured:
        app.test_client().get("/", headers=bearer(issuer.user_token("ada@example.com")))
    record = captured.last
    assert record.granted
    assert (record.reason, record.status, record.error) == (None, None, None)
    assert record.identity is not None
    assert record.identity.email == "ada@example.com"
    assert captured.reasons == []
    assert captured.granted == [record]
    assert captured.denied == []


def test_forbidden_refusal_carries_the_identity(app: Flask, issuer: AccessIssuer) -> None:
    """A 403 names who was refused."""
    token = issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True)
    with capture_access(app) as captured:
        app.test_client().get("/admin", headers=bearer(token))
    assert captured.last.reason is Reason.NOT_IN_GROUP
    assert isinstance(captured.last.error, AccessForbidden)
    assert captured.last.identity is not None
    assert captured.last.identity.email == "bob@example.com"


def test_records_in_order(app: Flask, issuer: AccessIssuer) -> None:
    """Several requests are recorded in the order they were decided."""
    client = app.test_client()
    with capture_access() as captured:
        client.get("/")
        client.get("/", headers=bearer(issuer.user_token("ada@example.com")))
        client.get("/", headers=bearer("garbage"))
    assert [record.granted for record in captured] == [False, True, False]
    assert captured.reasons == [Reason.MISSING_TOKEN, Reason.MALFORMED_TOKEN]
    assert [record.reason for record in captured.denied] == captured.reasons


def test_stops_capturing_after_the_block(app: Flask) -> None:
    """Once the block ends the capture is left as it was and its receivers are gone."""
    receivers_before = (len(access_granted.receivers), len(access_denied.receivers))
    with capture_access(app) as captured:
        app.test_client().get("/")
    app.test_client().get("/")
    assert captured.reasons == [Reason.MISSING_TOKEN]
    assert (len(access_granted.receivers), len(access_denied.receivers)) == receivers_before


def test_stops_capturing_when_the_block_raises(app: Flask) -> None:
    """An exception in the block disconnects the capture too."""
    receivers_before = len(access_denied.receivers)
    captures: list[AccessCapture] = []

    def failing_test() -> None:
        with capture_access(app) as captured:
            captures.append(captured)
            app.test_client().get("/")
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    app.test_client().get("/")
    assert len(captures[0]) == 1
    assert len(access_denied.receivers) == receivers_before


def test_sender_filter(make_app: AppFactory) -> None:
    """With a sender, only that app's decisions are captured; without, every app's."""
    first, second = make_app(), make_app()
    with capture_access(first) as only_first, capture_access() as every:
        first.test_client().get("/")
        second.test_client().get("/")
    assert [record.sender for record in only_first] == [first]
    assert [record.sender for record in every] == [first, second]


def test_middleware_as_sender(
    middleware: CloudflareAccessMiddleware, issuer: AccessIssuer, app: Flask
) -> None:
    """The middleware's decisions are captured with the middleware as sender."""
    client = Client(middleware)
    with capture_access(middleware) as captured, capture_access(app) as from_app:
        client.get("/", headers=bearer(issuer.user_token("ada@example.com")))
        client.get("/admin", headers=bearer(issuer.user_token("bob@example.com")))
        client.get("/%2e%2e/admin")
    assert [(record.sender, record.status, record.reason) for record in captured] == [
        (middleware, None, None),
        (middleware, 403, Reason.NOT_IN_GROUP),
        (middleware, 400, Reason.AMBIGUOUS_PATH),
    ]
    assert from_app == []


def test_last_of_nothing_says_so() -> None:
    """.last on an empty capture fails an assertion that says nothing was captured."""
    with pytest.raises(AssertionError, match="No access decision"):
        _ = AccessCapture().last


def test_capture_is_a_list(app: Flask) -> None:
    """The capture is a plain list, so list assertions and comparisons work."""
    with capture_access(app) as captured:
        pass
    assert isinstance(captured, list)
    assert captured == []


def test_nested_captures_see_the_same_decisions(app: Flask) -> None:
    """Two captures at once each get every decision; other receivers still get theirs."""
    seen: list[object] = []

    def audit(sender: object, **kwargs: object) -> None:
        seen.append(kwargs["reason"])

    with (
        access_denied.connected_to(audit, app),
        capture_access(app) as outer,
        capture_access(app) as inner,
    ):
        app.test_client().get("/")
    assert outer.reasons == inner.reasons == seen == [Reason.MISSING_TOKEN]


def test_requests_in_many_threads_all_captured(app: Flask, issuer: AccessIssuer) -> None:
    """Decisions made in other threads at once are all captured, none lost."""
    threads_count, per_thread = 8, 25
    token = issuer.user_token("ada@example.com")
    start = threading.Barrier(threads_count)

    def work(index: int) -> None:
        client = app.test_client()
        start.wait()
        for _ in range(per_thread):
            client.get("/", headers=bearer(token if index % 2 else "garbage"))

    with capture_access(app) as captured:
        threads = [threading.Thread(target=work, args=(index,)) for index in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(captured) == threads_count * per_thread
    assert len(captured.granted) == len(captured.denied) == threads_count * per_thread // 2
    assert set(captured.reasons) == {Reason.MALFORMED_TOKEN}


def test_outcome_helper(app: Flask, issuer: AccessIssuer) -> None:
    """The tests' outcome() helper gives the status and the reason captured."""
    assert outcome(app, None) == Outcome(401, Reason.MISSING_TOKEN)
    assert outcome(app, issuer.user_token("ada@example.com")) == (200, None)
    assert outcome(app, None, "/open") == (200, None)
