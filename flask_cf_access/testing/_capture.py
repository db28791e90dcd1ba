"""What a test asserts on: the access decisions with their reasons, the users the
app's loader gave, and whether every route is protected."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blinker import ANY

from .._core.errors import AccessError, Reason
from .._core.identity import AccessIdentity
from .._core.signals import access_denied, access_granted, user_loaded
from .._flask.routes import RouteAudit, audit_routes

if TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "AccessCapture",
    "AccessRecord",
    "UserLoad",
    "assert_routes_protected",
    "capture_access",
    "capture_user_loads",
]


# -- access decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRecord:
    """One decision, as the :data:`~flask_cf_access.access_granted` or
    :data:`~flask_cf_access.access_denied` signal reported it.

    :ivar granted: ``True`` if the request was let through.
    :ivar reason: why it was refused (a :class:`~flask_cf_access.Reason`);
        ``None`` when granted.
    :ivar status: the status the refusal was answered with (400, 401, 403 or
        503; 302 for a browser sent to the login page instead of a 401, see
        ``error.login_redirect``); ``None`` when granted (the view chooses the
        status then).
    :ivar method: the request method, as the client sent it.
    :ivar path: the request path, as the client sent it.
    :ivar identity: who was admitted or refused, when the token verified.
    :ivar error: the refusal raised; ``None`` when granted.
    :ivar sender: who sent the signal: the Flask app, or the
        :class:`~flask_cf_access.CloudflareAccessMiddleware`.
    """

    granted: bool
    reason: Reason | None
    status: int | None
    method: str
    path: str
    identity: AccessIdentity | None
    error: AccessError | None
    sender: Any


class AccessCapture(list[AccessRecord]):
    """The records captured by :func:`capture_access`, in the order they were sent.

    A plain list of :class:`AccessRecord`, with a few shortcuts for assertions.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    @property
    def reasons(self) -> list[Reason]:
        """The reasons of the refusals, in order (grants have none)."""
        return [record.reason for record in self if record.reason is not None]

    @property
    def denied(self) -> list[AccessRecord]:
        """The refusals, in order."""
        return [record for record in self if not record.granted]

    @property
    def granted(self) -> list[AccessRecord]:
        """The requests let through, in order."""
        return [record for record in self if record.granted]

    @property
    def last(self) -> AccessRecord:
        """The latest record.

        :raises AssertionError: nothing was captured (no protected request was checked).
        """
        if not self:
            raise AssertionError("No access decision was captured.")
        return self[-1]

    def record_granted(
        self, sender: Any, *, identity: AccessIdentity, method: str, path: str, **_: Any
    ) -> None:
        """Receiver of :data:`~flask_cf_access.access_granted`."""
        self._add(AccessRecord(True, None, None, method, path, identity, None, sender))

    def record_denied(
        self,
        sender: Any,
        *,
        error: AccessError,
        reason: Reason,
        method: str,
        path: str,
        identity: AccessIdentity | None = None,
        **_: Any,
    ) -> None:
        """Receiver of :data:`~flask_cf_access.access_denied`."""
        record = AccessRecord(
            False, reason, error.sent_status, method, path, identity, error, sender
        )
        self._add(record)

    def _add(self, record: AccessRecord) -> None:
        with self._lock:  # requests may be checked in several threads at once
            self.append(record)


@contextmanager
def capture_access(sender: Any = None) -> Iterator[AccessCapture]:
    """Record every access decision made while the block runs.

    ::

        with capture_access(app) as captured:
            client.get("/admin", headers={"Cf-Access-Jwt-Assertion": token})
        assert captured.last.reason is Reason.NOT_IN_GROUP
        assert captured.last.status == 403

    Built on the :data:`~flask_cf_access.access_granted` and
    :data:`~flask_cf_access.access_denied` signals, so it sees what your own
    receivers see: the decisions of the decorators, of
    :func:`~flask_cf_access.verify_access_in_request` and of the WSGI
    middleware, in every thread. Receivers connected before stay connected.

    :param sender: only decisions sent by this object: a Flask app (for the
        decorators and guards), or a
        :class:`~flask_cf_access.CloudflareAccessMiddleware`. ``None``
        captures every sender.
    :returns: the :class:`AccessCapture` (a list) filled while the block runs,
        and left as it was when the block ended.
    """
    captured = AccessCapture()
    from_whom = ANY if sender is None else sender
    with (
        access_granted.connected_to(captured.record_granted, from_whom),
        access_denied.connected_to(captured.record_denied, from_whom),
    ):
        yield captured


# -- user loads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserLoad:
    """One answer of the app's user loader: the user, for which identity, and whether new."""

    user: Any
    identity: AccessIdentity
    created: bool


@contextmanager
def capture_user_loads(app: Flask) -> Iterator[list[UserLoad]]:
    """Collect every user the app's loader gives while the block runs (from any thread)::

        with capture_user_loads(app) as loads:
            client.get("/", as_user="new@example.com")
        assert [load.created for load in loads] == [True]  # a first visit

    A loader's ``None`` (no account) is not a load: it is an ``access_denied``.
    """
    loads: list[UserLoad] = []

    def record(_sender: Flask, *, user: Any, identity: AccessIdentity, created: bool) -> None:
        loads.append(UserLoad(user, identity, created))

    with user_loaded.connected_to(record, app):
        yield loads


# -- every route protected ----------------------------------------------------------------


def assert_routes_protected(app: Flask) -> list[RouteAudit]:
    """Fail unless every endpoint of ``app`` is protected or explicitly public.

    The check ``flask cf-access routes --strict`` makes, for a test::

        def test_every_route_is_protected(app):
            assert_routes_protected(app)

    :returns: the audit of every URL rule, for further assertions.
    :raises AssertionError: naming each unprotected endpoint, each whose
        requirement was declared but not applied (a decorator above ``@app.route``),
        and, with ``CF_ACCESS_APPLICATIONS``, each protected one under no
        application or under another than its decorator or guard names.
    """
    audits = audit_routes(app)
    problems = [audit for audit in audits if audit.is_problem]
    if problems:
        lines = [
            f"  {audit.rule} ({audit.endpoint}): " + (audit.application_problem or audit.requires)
            for audit in problems
        ]
        raise AssertionError(
            "Endpoints neither protected nor marked public, or under the wrong Access"
            " application:\n" + "\n".join(lines)
        )
    return audits
