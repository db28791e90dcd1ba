"""A failing get-identity is backed off: new look-ups refused at once, cached ones served."""

from __future__ import annotations

import logging

import pytest
import requests
import responses
from flask import Flask

from flask_cf_access._core.identity_endpoint import LONGEST_BACK_OFF, BackOff
from flask_cf_access.testing import AccessIssuer

from .support import FrozenClock, bearer, count_calls


def get(app: Flask, path: str, token: str) -> int:
    return app.test_client().get(path, headers=bearer(token)).status_code


def asked(mock: responses.RequestsMock, issuer: AccessIssuer) -> int:
    return count_calls(mock, issuer.identity_url)


def test_timeout_backs_off_then_recovers(
    app: Flask,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a timeout, new look-ups get 503 with no call; one probe per back-off; success ends."""
    known = issuer.user_token("known@example.com", ["Admins"])
    assert get(app, "/admin", known) == 200
    mocked_team.replace(responses.GET, issuer.identity_url, body=requests.Timeout("slow"))
    tokens = [issuer.user_token(f"user{index}@example.com", ["Admins"]) for index in range(10)]
    with caplog.at_level(logging.INFO, logger="flask_cf_access"):
        assert get(app, "/admin", tokens[0]) == 503
        assert asked(mocked_team, issuer) == 2
        assert [get(app, "/admin", token) for token in tokens[1:]] == [503] * 9
        assert asked(mocked_team, issuer) == 2  # refused at once, the endpoint left alone
        assert get(app, "/admin", known) == 200  # a cached identity is still served
        assert get(app, "/", tokens[1]) == 200  # routes without groups are untouched
        clock.advance(1)
        # Refused at once, its token probing the endpoint (in the background in
        # production, at once here): failing, the back-off doubles.
        assert get(app, "/admin", tokens[1]) == 503
        assert asked(mocked_team, issuer) == 3
        clock.advance(1)
        assert get(app, "/admin", tokens[2]) == 503
        assert asked(mocked_team, issuer) == 3
        clock.advance(1)
        mocked_team.replace(responses.GET, issuer.identity_url, json=issuer.identity_for(tokens[2]))
        # Its probe succeeds (in the background in production, at once here),
        # and the probe's answer, remembered, is read.
        assert get(app, "/admin", tokens[2]) == 200
        assert asked(mocked_team, issuer) == 4
        mocked_team.replace(responses.GET, issuer.identity_url, json=issuer.identity_for(tokens[3]))
        assert get(app, "/admin", tokens[3]) == 200  # and look-ups go out again
        assert asked(mocked_team, issuer) == 5
    down = [record for record in caplog.records if "is failing" in record.getMessage()]
    back = [record for record in caplog.records if "answers again" in record.getMessage()]
    assert (len(down), len(back)) == (1, 1)


def test_http_error_backs_off(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A 5xx from get-identity backs off like a timeout."""
    mocked_team.replace(responses.GET, issuer.identity_url, status=502)
    tokens = [issuer.user_token(f"user{index}@example.com", ["Admins"]) for index in range(5)]
    assert [get(app, "/admin", token) for token in tokens] == [503] * 5
    assert asked(mocked_team, issuer) == 1


def test_unusable_answer_does_not_back_off(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """An identity with malformed groups is that identity's problem: others are still asked."""
    mocked_team.replace(responses.GET, issuer.identity_url, json={"groups": "not a list"})
    tokens = [issuer.user_token(f"user{index}@example.com", ["Admins"]) for index in range(3)]
    assert [get(app, "/admin", token) for token in tokens] == [503] * 3
    assert asked(mocked_team, issuer) == 3


def test_back_off_grows_to_its_limit_and_resets(clock: FrozenClock) -> None:
    """Each failed probe doubles the back-off up to 4 s; a success resets it to nothing."""
    back_off = BackOff(clock, name="endpoint")
    assert back_off.admit() is True
    back_off.failed(probe=False)
    delays = []
    for _ in range(8):
        waited = 0
        while back_off.admit() is False:
            clock.advance(1)
            waited += 1
        delays.append(waited)
        back_off.failed(probe=True)
    assert delays == [1, 2, 4, 4, 4, 4, 4, 4]
    assert LONGEST_BACK_OFF == 4
    clock.advance(4)
    assert back_off.admit() is None
    back_off.succeeded()
    assert back_off.admit() is True


def test_one_probe_at_a_time(clock: FrozenClock) -> None:
    """When the back-off ends, one caller probes; the others are refused until it is answered."""
    back_off = BackOff(clock, name="endpoint")
    back_off.failed(probe=False)
    clock.advance(1)
    assert [back_off.admit() for _ in range(3)] == [None, False, False]
    back_off.failed(probe=False)  # a call admitted before the back-off: it changes nothing
    assert back_off.admit() is False
    back_off.succeeded()
    assert back_off.admit() is True
