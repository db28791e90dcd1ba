"""Helpers the tests share: a frozen clock, the token header, call counts, outcomes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import responses
from werkzeug.serving import make_server
from werkzeug.test import Client

from flask_cf_access import AccessUnauthorized, Reason
from flask_cf_access.testing import AccessIssuer, AccessRecord, capture_access

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: 2027-01-15T08:00:00Z: tests never read the real clock.
START = 1_800_000_000.0


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def identity_endpoint_down(issuer: AccessIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in's get-identity answers 503 to every token from now on (certs unchanged).

    An unknown user is not the way to a failing endpoint: the stand-in answers
    it 400, a refusal of that token (``Reason.IDENTITY_REFUSED``).
    """
    respond = issuer.respond

    def down(path: str, cookie_header: str | None) -> tuple[int, Any]:
        if path == "/cdn-cgi/access/get-identity":
            return 503, {"err": "down"}
        return respond(path, cookie_header)

    monkeypatch.setattr(issuer, "respond", down)


class Threads:
    """A background runner starting each job in a real thread, and joining them when told.

    Set :attr:`inline` to run the jobs after that at once, in the caller's thread.
    """

    def __init__(self) -> None:
        self.started: list[threading.Thread] = []
        self.inline = False

    def __call__(self, job: Callable[[], None]) -> None:
        if self.inline:
            job()
            return
        thread = threading.Thread(target=job, daemon=True)
        self.started.append(thread)
        thread.start()

    def join_all(self) -> None:
        """Wait for every job started so far to end."""
        for thread in self.started:
            thread.join(30)
            assert not thread.is_alive()


def never_sleep(seconds: float) -> None:
    """A sleep for code that must not wait: calling it fails the test."""
    pytest.fail(f"slept {seconds} s where no wait was expected")


def count_calls(mock: responses.RequestsMock, url: str) -> int:
    """How many requests ``mock`` answered for ``url``."""
    return sum(1 for call in mock.calls if call.request.url == url)


def sent_kwargs(call: responses.Call) -> dict[str, Any]:
    """The keyword arguments requests was called with for ``call``.

    responses keeps them on the request as ``req_kwargs``, an attribute that
    ``PreparedRequest`` does not declare.
    """
    kwargs: dict[str, Any] = vars(call.request)["req_kwargs"]
    return kwargs


def bearer(token: str) -> dict[str, str]:
    """The header Cloudflare Access puts the token in."""
    return {"Cf-Access-Jwt-Assertion": token}


def reason_of(check: Callable[[], object]) -> Reason | None:
    """The reason ``check`` refuses with (a 401), or ``None`` if it passes."""
    try:
        check()
    except AccessUnauthorized as refusal:
        return refusal.reason
    return None


def decisions(records: Iterable[AccessRecord]) -> list[tuple[str, Reason | str | None]]:
    """Each captured decision in order: ``("granted", identity name)`` or ``("denied", reason)``."""
    return [
        ("granted", record.identity.name if record.identity else None)
        if record.granted
        else ("denied", record.reason)
        for record in records
    ]


class Outcome(NamedTuple):
    """What a request got: the response status, and the refusal's reason if refused."""

    status: int
    reason: Reason | None


def outcome(app: WSGIApplication, token: str | None, path: str = "/") -> Outcome:
    """GET ``path`` of ``app`` (a Flask app or any WSGI app) with ``token`` in the header.

    ``path`` is sent exactly as given, as ``PATH_INFO`` (``/%61dmin`` stays so).

    The reason is the one the access check reported (through
    :func:`~flask_cf_access.testing.capture_access`); ``None`` when nothing
    was refused.
    """
    headers = bearer(token) if token is not None else {}
    with capture_access() as captured:
        response = Client(app).get(path, headers=headers, environ_overrides={"PATH_INFO": path})
        status = response.status_code
    denied = captured.denied
    if not denied:
        return Outcome(status, None)
    assert denied[-1].status == status, f"refused with {denied[-1].status}, answered {status}"
    return Outcome(status, denied[-1].reason)


@contextmanager
def served_port(wsgi_app: WSGIApplication) -> Iterator[int]:
    """``wsgi_app`` served on 127.0.0.1 by werkzeug in a thread; its port."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def served(wsgi_app: WSGIApplication) -> Iterator[str]:
    """``wsgi_app`` served on 127.0.0.1 by werkzeug in a thread; its URL."""
    with served_port(wsgi_app) as port:
        yield f"http://127.0.0.1:{port}"
