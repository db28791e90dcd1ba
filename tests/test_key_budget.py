"""Key fetches a request waits a budget for, never a lock; shared sets chosen without
reading another host's clock; a set that withdraws every key looked at again soon."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import cachelib.simple
import pytest
import requests
import responses
from cachelib import SimpleCache

from flask_cf_access import AccessUnauthorized, AccessUnavailable, Background, Reason
from flask_cf_access._core.keys import RECHECK_AFTER, KeyStore
from flask_cf_access._core.shared_cache import SharedCache
from flask_cf_access.testing import AccessIssuer, SigningKey

from .support import FrozenClock, Threads, never_sleep

MAX_AGE = 900
INTERVAL = 60
TIMEOUT = 5.0


def store(
    issuer: AccessIssuer,
    clock: Callable[[], float],
    backend: SimpleCache,
    *,
    budget: float | None = None,
    spawn: Background | None = None,
) -> KeyStore:
    """One worker's key store, sharing ``backend``; background work run at once."""
    return KeyStore(
        certs_url=issuer.certs_url,
        session=requests.Session(),
        timeout=TIMEOUT,
        cache=SharedCache(backend),
        clock=clock,
        max_age=MAX_AGE,
        min_refresh_interval=INTERVAL,
        budget=budget,
        background=lambda job: job(),
        spawn=spawn or (lambda job: job()),
        sleep=never_sleep,
    )


def refusal(keys: KeyStore, kid: str) -> Reason | None:
    """Why ``kid`` is refused, or ``None`` if its key is handed out."""
    try:
        keys.key_for(kid)
    except (AccessUnauthorized, AccessUnavailable) as error:
        return error.reason
    return None


class Certs:
    """The team's certs endpoint: what the issuer publishes, or a set of keys given, or held."""

    def __init__(self, issuer: AccessIssuer, mock: responses.RequestsMock) -> None:
        self.issuer = issuer
        self.mock = mock
        self.published: list[SigningKey] | None = None
        self.gate: threading.Event | None = None
        self.arrived = threading.Event()
        self.calls = 0

    def __call__(self, _request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.calls += 1
        self.arrived.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        keys = self.published if self.published is not None else self.issuer.published_keys()
        return 200, {}, json.dumps({"keys": [key.jwk() for key in keys]})


@pytest.fixture
def certs(issuer: AccessIssuer) -> Iterator[Certs]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        endpoint = Certs(issuer, mock)
        mock.add_callback(responses.GET, issuer.certs_url, callback=endpoint)
        yield endpoint
        if endpoint.gate is not None:
            endpoint.gate.set()


@pytest.fixture(autouse=True)
def backend_clock(monkeypatch: pytest.MonkeyPatch, clock: FrozenClock) -> None:
    """The shared backend's expiries follow the frozen clock: the backend's own clock,
    from which each host's may be off."""
    monkeypatch.setattr(cachelib.simple, "time", clock)


# -- a request waits its budget, never a lock --------------------------------------


def test_hanging_forced_fetch_holds_known_kids_not_at_all(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """While a forced fetch for a made-up kid hangs, its request gets 401 within the budget,
    known kids are served at once, and one forced fetch is in flight, not one per request."""
    threads = Threads()
    keys = store(issuer, clock, SimpleCache(), budget=0.001, spawn=threads)
    assert keys.preload()
    certs.gate = threading.Event()
    assert refusal(keys, "made-up") == Reason.UNKNOWN_KID
    assert certs.arrived.wait(30)
    known = issuer.signing_key.kid
    # Had any of these waited for the hanging fetch, the test would never get past them.
    assert [refusal(keys, known) for _ in range(50)] == [None] * 50
    assert [refusal(keys, f"other-{index}") for index in range(5)] == [Reason.UNKNOWN_KID] * 5
    assert len(threads.started) == 1
    certs.gate.set()
    threads.join_all()
    assert certs.calls == 2


def test_first_keys_wait_the_budget_then_serve_the_next_request(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """With no key set yet and the endpoint slow, a request gets 503 within its budget; the
    fetch goes on and the next request is served from it."""
    threads = Threads()
    keys = store(issuer, clock, SimpleCache(), budget=0.001, spawn=threads)
    certs.gate = threading.Event()
    kid = issuer.signing_key.kid
    assert refusal(keys, kid) == Reason.KEYS_UNAVAILABLE
    assert certs.arrived.wait(30)
    assert refusal(keys, kid) == Reason.KEYS_UNAVAILABLE  # waits on the same fetch
    certs.gate.set()
    threads.join_all()
    assert refusal(keys, kid) is None
    assert (certs.calls, len(threads.started)) == (1, 1)


# -- no decision reads another host's clock ------------------------------------------


class SkewedClock:
    """A host's clock: the shared frozen clock, plus ``offset`` seconds."""

    def __init__(self, clock: FrozenClock, offset: float) -> None:
        self.clock = clock
        self.offset = offset

    def __call__(self) -> float:
        return self.clock() + self.offset


@pytest.mark.parametrize("offset", [-25, 25, -3600, 3600])
def test_hosts_with_skewed_clocks_share_a_rotation(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs, offset: float
) -> None:
    """Two hosts sharing a cache, clocks ``offset`` seconds apart: after a rotation each
    takes the new key at once, with one fetch between them, whichever fetches it."""
    backend = SimpleCache()
    ahead = store(issuer, SkewedClock(clock, offset), backend)
    behind = store(issuer, clock, backend)
    assert ahead.preload()
    assert behind.preload()
    assert certs.calls == 1
    for first, second in ((ahead, behind), (behind, ahead)):
        issuer.rotate()
        clock.advance(1)
        new = issuer.signing_key.kid
        assert (refusal(first, new), refusal(second, new)) == (None, None)
        clock.advance(INTERVAL)
    assert certs.calls == 3


def test_forced_fetch_is_one_per_interval_between_workers(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """Workers with clocks all over the place, each meeting a new kid at the same moment:
    one atomic marker, one fetch, every worker taking its set."""
    backend = SimpleCache()
    workers = [store(issuer, SkewedClock(clock, offset), backend) for offset in (-20, 0, 7, 25)]
    for worker in workers:
        assert worker.preload()
    issuer.rotate()
    new = issuer.signing_key.kid
    assert [refusal(worker, new) for worker in workers] == [None] * 4
    assert certs.calls == 2


# -- a set that withdraws every key ---------------------------------------------------


def test_set_without_the_signing_key_is_looked_at_again_within_seconds(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """A set sharing no key with the last one (a rotation done too early elsewhere): tokens
    of the old key are refused, the keys looked at again every few seconds while they
    arrive (not once per interval), and served again as soon as the old key is back."""
    keys = store(issuer, clock, SimpleCache())
    assert keys.preload()
    signing = issuer.signing_key
    certs.published = [SigningKey.generate()]  # every key withdrawn at once
    clock.advance(MAX_AGE)  # the routine refresh takes it
    # Refused, after the one forced fetch any unknown kid may make after a routine one.
    assert refusal(keys, signing.kid) == Reason.UNKNOWN_KID
    assert certs.calls == 3
    assert [refusal(keys, signing.kid) for _ in range(10)] == [Reason.UNKNOWN_KID] * 10
    assert certs.calls == 3  # never more than one look per few seconds
    clock.advance(RECHECK_AFTER)
    assert refusal(keys, signing.kid) == Reason.UNKNOWN_KID  # still withdrawn: refused
    assert certs.calls == 4
    certs.published = None  # healed: the old key is published again
    clock.advance(RECHECK_AFTER)
    assert refusal(keys, signing.kid) is None
    assert certs.calls == 5
    assert RECHECK_AFTER < INTERVAL


def test_made_up_kids_after_a_disjoint_set_wait_the_interval(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """Only kids of the withdrawn set are looked at again early; made-up ones wait the
    interval as always."""
    keys = store(issuer, clock, SimpleCache())
    assert keys.preload()
    certs.published = [SigningKey.generate()]
    clock.advance(MAX_AGE)
    assert refusal(keys, issuer.signing_key.kid) == Reason.UNKNOWN_KID
    calls = certs.calls
    for _ in range(INTERVAL // RECHECK_AFTER - 1):
        clock.advance(RECHECK_AFTER)
        assert refusal(keys, "made-up") == Reason.UNKNOWN_KID
    assert certs.calls == calls


def test_rechecks_end_after_max_age(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs, monkeypatch: Any
) -> None:
    """Tokens of keys withdrawn longer ago than the set's lifetime are back to one forced
    fetch per interval."""
    keys = store(issuer, clock, SimpleCache())
    assert keys.preload()
    old = issuer.signing_key.kid
    certs.published = [SigningKey.generate()]
    clock.advance(MAX_AGE)
    assert refusal(keys, old) == Reason.UNKNOWN_KID
    clock.advance(MAX_AGE - 1)
    assert refusal(keys, "x") == Reason.UNKNOWN_KID
    calls = certs.calls
    clock.advance(RECHECK_AFTER + 1)
    assert refusal(keys, old) == Reason.UNKNOWN_KID
    assert certs.calls == calls


def test_joining_a_hanging_forced_fetch_waits_from_its_start(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests with unknown kids joining a forced fetch wait until one budget after it
    started, not one budget each: while it hangs, a stream of them costs one budget."""
    import flask_cf_access._core.keys as keys_module

    class Monotonic:
        now = 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            raise AssertionError("no sleep")

    fake = Monotonic()
    monkeypatch.setattr(keys_module, "time", fake)
    threads = Threads()
    keys = store(issuer, clock, SimpleCache(), budget=TIMEOUT, spawn=threads)
    assert keys.preload()
    certs.gate = threading.Event()
    first: list[Reason | None] = []
    waiting = threading.Thread(target=lambda: first.append(refusal(keys, "made-up")))
    waiting.start()
    assert certs.arrived.wait(30)
    fake.now += TIMEOUT  # one budget since the forced fetch started
    assert [refusal(keys, f"other-{index}") for index in range(20)] == [Reason.UNKNOWN_KID] * 20
    certs.gate.set()
    waiting.join(30)
    threads.join_all()
    assert first == [Reason.UNKNOWN_KID]


def test_a_lost_generation_counter_does_not_hide_a_rotation(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """The counter lost (a Redis restarted, an entry evicted) counts from 1 again: a set
    fetched since, with other keys, is still taken by a worker holding a later generation."""
    backend = SimpleCache()
    first, second = store(issuer, clock, backend), store(issuer, clock, backend)
    assert first.preload()
    for _ in range(3):  # the counter at 4, the first worker at generation 4
        clock.advance(MAX_AGE)
        assert refusal(first, issuer.signing_key.kid) is None
    assert second.preload()
    assert first.current is not None
    assert first.current.generation == 4
    first._cache.delete(first._generation_key)  # the counter is lost
    issuer.rotate()
    assert refusal(second, issuer.signing_key.kid) is None  # fetches, as generation 1
    assert second.current is not None
    assert second.current.generation == 1
    assert refusal(first, issuer.signing_key.kid) is None  # takes it, with no fetch
    assert certs.calls == 5


def test_generation_counter_never_expires(clock: FrozenClock) -> None:
    """The counter is written without expiry on cachelib's backends other than Redis (whose
    INCR keeps none), so it does not fall back to 1 after their default timeout."""
    cache = SharedCache(SimpleCache(default_timeout=300))
    assert [cache.inc("counter") for _ in range(3)] == [1, 2, 3]
    clock.advance(3600)  # the backend's clock (see backend_clock)
    assert cache.inc("counter") == 4


def test_no_wait_for_another_workers_forced_fetch_once_over(
    issuer: AccessIssuer, clock: FrozenClock, certs: Certs
) -> None:
    """A worker that already holds the set another worker's forced fetch stored, and
    finds that fetch's marker, does not wait for it: the fetch said it is over."""
    backend = SimpleCache()
    first, second = store(issuer, clock, backend), store(issuer, clock, backend)
    assert first.preload()
    assert second.preload()
    assert refusal(first, "made-up") == Reason.UNKNOWN_KID  # its forced fetch, over
    assert refusal(second, "made-up") == Reason.UNKNOWN_KID  # takes the set it stored
    assert refusal(second, "other-made-up") == Reason.UNKNOWN_KID  # quiet: no look
    clock.advance(INTERVAL)  # the local interval is over; the marker is too (backend clock)
    assert refusal(first, "again") == Reason.UNKNOWN_KID  # a second forced fetch
    assert second._newer_shared_keyset(second.current, install=True) is not None
    second._quiet_until = -float("inf")  # as if its own interval ended at once
    # second has the newest set and finds first's marker: never_sleep would fail the test.
    assert refusal(second, "made-up-too") == Reason.UNKNOWN_KID
    assert certs.calls == 3
