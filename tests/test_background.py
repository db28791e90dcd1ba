"""``background=``: how the work no request waits out is started (key fetches and
refreshes, get-identity calls), a daemon thread unless the constructor is given another."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import requests
import responses

from flask_cf_access import (
    Background,
    CloudflareAccessMiddleware,
)
from flask_cf_access.testing import AccessIssuer

from .front_ends import downstream
from .support import FrozenClock, outcome
from .verdicts import protected_app

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


#: ``CF_ACCESS_KEYS_MAX_AGE``'s default: past it, the set is refreshed.
KEYS_MAX_AGE = 900


class Team:
    """The stand-in's certs and get-identity answered through ``responses``, each call's
    thread recorded, the certs held back while :attr:`hold` is set until :attr:`release`."""

    def __init__(self, issuer: AccessIssuer, mock: responses.RequestsMock) -> None:
        self.issuer = issuer
        self.threads: dict[str, list[threading.Thread]] = {"certs": [], "identity": []}
        self.hold = False
        self.holding = threading.Event()
        self.release = threading.Event()
        mock.add_callback(responses.GET, issuer.certs_url, callback=self._certs)
        mock.add_callback(responses.GET, issuer.identity_url, callback=self._identity)

    def _certs(self, _request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.threads["certs"].append(threading.current_thread())
        if self.hold:
            self.holding.set()
            assert self.release.wait(30)
        return 200, {"Content-Type": "application/json"}, json.dumps(self.issuer.certs())

    def _identity(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.threads["identity"].append(threading.current_thread())
        status, body = self.issuer.respond(
            "/cdn-cgi/access/get-identity", request.headers.get("Cookie")
        )
        return status, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture
def team(issuer: AccessIssuer) -> Iterator[Team]:
    """The stand-in team, through ``responses``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield Team(issuer, mock)


def flask_app(
    issuer: AccessIssuer, clock: FrozenClock, background: Background | None
) -> WSGIApplication:
    """``/`` needing a token, ``/admin`` the group Admins (a get-identity call).

    A generous wait: the request waiting for a thread must not depend on the
    machine's load."""
    return protected_app(issuer, clock, background, CF_ACCESS_UPSTREAM_WAIT=30)


def middleware(
    issuer: AccessIssuer, clock: FrozenClock, background: Background | None
) -> WSGIApplication:
    """The same two paths behind the middleware."""
    return CloudflareAccessMiddleware.from_mapping(
        issuer.settings(CF_ACCESS_UPSTREAM_WAIT=30),
        downstream,
        clock=clock,
        rules={"/admin": "Admins"},
        background=background,
    )


FRONT_ENDS = {"extension": flask_app, "middleware": middleware}


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_the_given_background_starts_every_fetch_and_refresh(
    front_end: str, issuer: AccessIssuer, clock: FrozenClock, team: Team
) -> None:
    """The runner given as ``background=`` is handed the get-identity call and the
    refresh of a stale key set: run at once, both are done in the request's own thread."""
    jobs: list[Callable[[], None]] = []

    def at_once(job: Callable[[], None]) -> None:
        jobs.append(job)
        job()

    app = FRONT_ENDS[front_end](issuer, clock, at_once)
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, token, "/admin") == (200, None)
    assert len(jobs) == 1  # the get-identity call (the keys were loaded at start-up)
    clock.advance(KEYS_MAX_AGE + 1)
    assert outcome(app, token, "/") == (200, None)
    assert len(jobs) == 2  # the refresh, done when the request returns
    assert len(team.threads["certs"]) == 2
    here = threading.current_thread()
    assert all(thread is here for thread in team.threads["certs"] + team.threads["identity"])


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_by_default_background_work_runs_in_a_daemon_thread(
    front_end: str, issuer: AccessIssuer, clock: FrozenClock, team: Team
) -> None:
    """Without ``background=``, the get-identity call and the key refresh run in daemon
    threads, and a stale set's refresh hanging holds no request."""
    app = FRONT_ENDS[front_end](issuer, clock, None)
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, token, "/admin") == (200, None)
    clock.advance(KEYS_MAX_AGE + 1)
    team.hold = True
    try:
        # Had the request waited for the refresh, it would not return before the release.
        assert outcome(app, token, "/") == (200, None)
        assert team.holding.wait(30)
        assert outcome(app, token, "/") == (200, None)  # the stale set is still served
    finally:
        team.release.set()
    refresher = team.threads["certs"][-1]
    refresher.join(30)
    here = threading.current_thread()
    assert team.threads["certs"][0] is here  # loaded at start-up, by init_app itself
    for thread in (refresher, *team.threads["identity"]):
        assert thread is not here
        assert thread.daemon
    assert len(team.threads["certs"]) == 2  # one refresh, not one per request
