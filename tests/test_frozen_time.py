"""Applications' own test suites freeze time with freezegun or time-machine: both are honoured.

No clock is injected here: the extension and the stand-in run on their
default clocks, which the time-freezing libraries must be able to move.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import freezegun
import pytest
import time_machine
from flask import Flask

from flask_cf_access import (
    CloudflareAccess,
    CloudflareAccessMiddleware,
    Reason,
    require_access,
)
from flask_cf_access.testing import OUT_OF_LEEWAY, AccessIssuer, run_inline

from .support import outcome

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: A moment far from the real time now, so that a clock left unfrozen shows.
FROZEN_AT = 1_900_000_000
LEEWAY = 30

MoveTo = Callable[[float], None]


def utc(moment: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)


@contextmanager
def frozen_with_freezegun(at: float) -> Iterator[MoveTo]:
    """Time frozen by freezegun at ``at``; the function moves it elsewhere."""
    with freezegun.freeze_time(
        datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
    ) as frozen:

        def move_to(moment: float) -> None:
            frozen.move_to(datetime.datetime.fromtimestamp(moment, datetime.timezone.utc))

        yield move_to


@contextmanager
def frozen_with_time_machine(at: float) -> Iterator[MoveTo]:
    """Time frozen by time-machine at ``at``; the function moves it elsewhere."""
    with time_machine.travel(at, tick=False) as traveller:

        def move_to(moment: float) -> None:
            traveller.move_to(moment, tick=False)

        yield move_to


Freezer = Callable[[float], Any]


@pytest.fixture(
    params=[frozen_with_freezegun, frozen_with_time_machine], ids=["freezegun", "time-machine"]
)
def freeze(request: pytest.FixtureRequest) -> Freezer:
    """A way to freeze time at a moment, as an application's tests do."""
    freezer: Freezer = request.param
    return freezer


@pytest.fixture
def team() -> AccessIssuer:
    """A stand-in team on its default clock."""
    return AccessIssuer()


def make_app(team: AccessIssuer, **config: Any) -> Flask:
    """An app on the extension's default clock."""
    app = Flask("frozen")
    app.config.update(team.settings(CF_ACCESS_LEEWAY=LEEWAY, **config))
    CloudflareAccess(app, session=team.session(), background=run_inline)

    @app.get("/")
    @require_access
    def home() -> str:
        return "ok"

    return app


def test_remembered_token_refused_once_frozen_past_its_expiry(
    team: AccessIssuer, freeze: Freezer
) -> None:
    """A token verified (and remembered) before the freeze is refused after freezing past exp."""
    with freeze(FROZEN_AT) as move_to:
        app = make_app(team)
        token = team.user_token("ada@example.com", lifetime=3600)
        assert outcome(app, token) == (200, None)
        assert outcome(app, token) == (200, None)
        move_to(FROZEN_AT + 3600 + LEEWAY + 1)
        assert outcome(app, token) == (401, Reason.EXPIRED)


def test_token_frozen_past_expiry_before_first_use(team: AccessIssuer, freeze: Freezer) -> None:
    """A token first seen in a frozen time past its exp is refused as expired."""
    with freeze(FROZEN_AT) as move_to:
        app = make_app(team)
        token = team.user_token("ada@example.com", lifetime=3600)
        move_to(FROZEN_AT + 2 * 3600)
        assert outcome(app, token) == (401, Reason.EXPIRED)


def test_expired_token_minted_in_frozen_time(team: AccessIssuer, freeze: Freezer) -> None:
    """The stand-in mints on the frozen clock too: expired=True is expired then and there."""
    with freeze(FROZEN_AT):
        app = make_app(team)
        token = team.user_token("ada@example.com", expired=True)
        assert outcome(app, token) == (401, Reason.EXPIRED)
        assert team.clock() == FROZEN_AT


def test_not_yet_valid_until_frozen_time_moves_past_nbf(
    team: AccessIssuer, freeze: Freezer
) -> None:
    """A token whose nbf is ahead is refused, then admitted once time is moved past it."""
    with freeze(FROZEN_AT) as move_to:
        app = make_app(team)
        token = team.user_token("ada@example.com", not_yet_valid=True)
        assert outcome(app, token) == (401, Reason.NOT_YET_VALID)
        move_to(FROZEN_AT + OUT_OF_LEEWAY - LEEWAY)
        assert outcome(app, token) == (200, None)


def test_maximum_age_follows_frozen_time(team: AccessIssuer, freeze: Freezer) -> None:
    """With CF_ACCESS_MAX_TOKEN_AGE, a remembered token grows too old as frozen time moves."""
    with freeze(FROZEN_AT) as move_to:
        app = make_app(team, CF_ACCESS_MAX_TOKEN_AGE=600)
        token = team.user_token("ada@example.com", lifetime=3600)
        assert outcome(app, token) == (200, None)
        move_to(FROZEN_AT + 600 + LEEWAY)
        assert outcome(app, token) == (200, None)
        move_to(FROZEN_AT + 600 + LEEWAY + 1)
        assert outcome(app, token) == (401, Reason.TOKEN_TOO_OLD)


def test_middleware_follows_frozen_time(team: AccessIssuer, freeze: Freezer) -> None:
    """The WSGI middleware, on its default clock, refuses a remembered token frozen past exp."""

    def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with freeze(FROZEN_AT) as move_to:
        middleware = CloudflareAccessMiddleware(
            downstream,
            team_domain=team.team_domain,
            audience=team.audience,
            leeway=LEEWAY,
            session=team.session(),
            background=run_inline,
        )
        token = team.user_token("ada@example.com", lifetime=3600)
        assert outcome(middleware, token) == (200, None)
        move_to(FROZEN_AT + 3600 + LEEWAY + 1)
        assert outcome(middleware, token) == (401, Reason.EXPIRED)
