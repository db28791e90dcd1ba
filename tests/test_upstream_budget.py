"""A slow get-identity never holds a request past its budget, and one token's answer
never backs off everyone's look-ups."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from cachelib import SimpleCache
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_cf_access import AccessError, AccessSettings, ConfigurationError, Reason
from flask_cf_access._core.identity_endpoint import IdentityEndpoint
from flask_cf_access._core.shared_cache import SharedCache
from flask_cf_access.testing import AccessIssuer

from .conftest import AppFactory
from .support import START, FrozenClock, Threads, count_calls, outcome


@pytest.fixture
def threads() -> Threads:
    """Background work in real threads (the production default), joined when told."""
    return Threads()


class Gate:
    """A get-identity answer held back until the test opens the gate."""

    def __init__(self, issuer: AccessIssuer) -> None:
        self.issuer = issuer
        self.opened = threading.Event()
        self.arrived = threading.Event()
        self.calls = 0

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.calls += 1
        self.arrived.set()
        assert self.opened.wait(30)

        status, body = self.issuer.respond(
            "/cdn-cgi/access/get-identity", request.headers.get("Cookie")
        )
        return status, {"Content-Type": "application/json"}, json.dumps(body)


@pytest.fixture
def gate(issuer: AccessIssuer, mocked_team: responses.RequestsMock) -> Iterator[Gate]:
    """get-identity answering only once the test opens the gate."""
    held = Gate(issuer)
    mocked_team.remove(responses.GET, issuer.identity_url)
    mocked_team.add_callback(responses.GET, issuer.identity_url, callback=held)
    yield held
    held.opened.set()


def asked(mock: responses.RequestsMock, issuer: AccessIssuer) -> int:
    return count_calls(mock, issuer.identity_url)


# -- one token's answer is about that token ---------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refused_token_is_401_and_backs_off_nobody(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, status: int
) -> None:
    """get-identity refusing one token (a revoked session) answers that request 401
    identity_refused, remembered; the next token's look-up goes out at once."""
    revoked = issuer.user_token("gone@example.com", ["Admins"])
    mocked_team.replace(responses.GET, issuer.identity_url, status=status, json={"err": "no"})
    assert outcome(app, revoked, "/admin") == (401, Reason.IDENTITY_REFUSED)
    assert outcome(app, revoked, "/admin") == (401, Reason.IDENTITY_REFUSED)
    assert asked(mocked_team, issuer) == 1  # remembered: no second call
    mocked_team.replace(
        responses.GET,
        issuer.identity_url,
        json=issuer.identity_for(issuer.user_token("ada@example.com", ["Admins"])),
    )
    fine = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, fine, "/admin") == (200, None)
    assert asked(mocked_team, issuer) == 2


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_endpoint_statuses_back_off(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, status: int
) -> None:
    """A timeout, rate limiting or a 5xx is the endpoint's health: 503, and a back-off."""
    mocked_team.replace(responses.GET, issuer.identity_url, status=status, json={"err": "no"})
    tokens = [issuer.user_token(f"user{index}@example.com", ["Admins"]) for index in range(3)]
    assert [outcome(app, token, "/admin") for token in tokens] == [
        (503, Reason.IDENTITY_UNAVAILABLE)
    ] * 3
    assert asked(mocked_team, issuer) == 1


# -- a request waits its budget, never the endpoint's timeout ------------------------


def test_slow_call_answers_503_within_the_budget_then_serves_the_next(
    threads: Threads,
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    gate: Gate,
) -> None:
    """A call outlasting the budget: its request gets 503 and the back-off starts (later new
    tokens refused with no call); the call goes on, its answer serves the token's next
    request, and its success ends the back-off."""
    app = make_app(background=threads, CF_ACCESS_UPSTREAM_WAIT=0.001)
    slow = issuer.user_token("slow@example.com", ["Admins"])
    assert outcome(app, slow, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert gate.arrived.wait(30)
    other = issuer.user_token("other@example.com", ["Admins"])
    assert outcome(app, other, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert gate.calls == 1  # backed off from the first late call
    assert outcome(app, slow, "/") == (200, None)  # token-only routes never wait
    gate.opened.set()
    threads.join_all()
    threads.inline = True  # from here on, no request depends on a thread's timing
    assert outcome(app, slow, "/admin") == (200, None)  # the call's answer, kept
    # Its success ended the back-off: the next look-up goes out.
    assert outcome(app, other, "/admin") == (200, None)
    assert gate.calls == 2


def test_bulkhead_bounds_calls_in_flight(
    threads: Threads,
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    gate: Gate,
) -> None:
    """With CF_ACCESS_IDENTITY_CONCURRENCY calls hanging, another token's request gets 503
    within its budget and makes no call."""
    app = make_app(
        background=threads, CF_ACCESS_UPSTREAM_WAIT=0.001, CF_ACCESS_IDENTITY_CONCURRENCY=1
    )
    checker = app.extensions["cf_access"].checker
    first = issuer.user_token("first@example.com", ["Admins"])
    assert outcome(app, first, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert gate.arrived.wait(30)
    checker.identity_endpoint._back_off.succeeded()  # leave the back-off out of it
    second = issuer.user_token("second@example.com", ["Admins"])
    assert outcome(app, second, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert gate.calls == 1
    gate.opened.set()
    threads.join_all()


# -- settings ------------------------------------------------------------------------


def settings_of(**values: Any) -> AccessSettings:
    return AccessSettings.from_mapping(
        {"CF_ACCESS_TEAM_DOMAIN": "t.cloudflareaccess.com", "CF_ACCESS_AUDIENCE": "a", **values}
    )


def test_budget_settings_defaults_and_environment() -> None:
    """A one-second budget and four identity calls by default; environment strings read."""
    assert (settings_of().upstream_wait, settings_of().identity_concurrency) == (1.0, 4)
    read = settings_of(CF_ACCESS_UPSTREAM_WAIT="0.25", CF_ACCESS_IDENTITY_CONCURRENCY="2")
    assert (read.upstream_wait, read.identity_concurrency) == (0.25, 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CF_ACCESS_UPSTREAM_WAIT", 0),
        ("CF_ACCESS_UPSTREAM_WAIT", 61),
        ("CF_ACCESS_UPSTREAM_WAIT", "soon"),
        ("CF_ACCESS_UPSTREAM_WAIT", True),
        ("CF_ACCESS_IDENTITY_CONCURRENCY", 0),
        ("CF_ACCESS_IDENTITY_CONCURRENCY", 65),
        ("CF_ACCESS_IDENTITY_CONCURRENCY", 1.5),
    ],
)
def test_bad_budget_settings_name_their_key(key: str, value: object) -> None:
    """Each invalid value is refused at start-up, naming its key."""
    with pytest.raises(ConfigurationError, match=key):
        settings_of(**{key: value})


# -- every status: about the token, or about the endpoint ---------------------------

IDENTITY_URL = "https://team.example/cdn-cgi/access/get-identity"


def endpoint_answering() -> IdentityEndpoint:
    """An identity endpoint, its background work run at once."""
    return IdentityEndpoint(
        url=IDENTITY_URL,
        session=requests.Session(),
        timeout=5.0,
        cache=SharedCache(SimpleCache()),
        clock=FrozenClock(),
        background=lambda job: job(),
    )


def claims_of(user: str) -> dict[str, Any]:
    return {"email": f"{user}@example.com", "sub": user, "exp": START + 3600}


@given(status=st.integers(min_value=300, max_value=599))
@settings(max_examples=60)
def test_every_status_is_about_the_token_or_the_endpoint(status: int) -> None:
    """A 4xx but 408 and 429 is about the one token: 401 identity_refused, and the next
    token is asked at once. Anything else not 2xx is about the endpoint: 503
    identity_unavailable, and the next token is refused without a call (the back-off)."""
    about_the_token = 400 <= status < 500 and status not in (408, 429)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, IDENTITY_URL, status=status, json={"err": "no"})
        endpoint = endpoint_answering()
        with pytest.raises(AccessError) as refused:
            endpoint.groups("token-of-ada", START + 3600, claims_of("ada"))
        expected = Reason.IDENTITY_REFUSED if about_the_token else Reason.IDENTITY_UNAVAILABLE
        assert refused.value.reason == expected
        mock.replace(
            responses.GET, IDENTITY_URL, json={"email": "bob@example.com", "groups": ["Staff"]}
        )
        if about_the_token:
            assert [
                group.name for group in endpoint.groups("b", START + 3600, claims_of("bob"))
            ] == ["Staff"]
            assert len(mock.calls) == 2
        else:
            with pytest.raises(AccessError) as backed_off:
                endpoint.groups("b", START + 3600, claims_of("bob"))
            assert backed_off.value.reason == Reason.IDENTITY_UNAVAILABLE
            assert len(mock.calls) == 1
