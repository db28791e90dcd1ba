"""Key refreshes that never hold a request up: stale sets served, rotations taken, junk cheap."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
from cachelib import SimpleCache

from flask_cf_access import AccessUnauthorized, AccessUnavailable, Background, Reason
from flask_cf_access._core import keys as keys_module
from flask_cf_access._core.keys import KeyStore
from flask_cf_access._core.shared_cache import SharedCache
from flask_cf_access.testing import AccessIssuer, run_inline

from .support import FrozenClock, count_calls, never_sleep

MAX_AGE = 900
INTERVAL = 60
TIMEOUT = 5.0


class CountingCache(SimpleCache):
    """A SimpleCache standing for Redis, counting the reads of the key set."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, key: str) -> Any:
        self.reads.append(key)
        return super().get(key)


class Deferred:
    """A background runner that keeps the refreshes it is given until told to run them."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], None]] = []

    def __call__(self, job: Callable[[], None]) -> None:
        self.jobs.append(job)

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()


class Worker:
    """One process's key store, sharing ``backend`` with the other workers."""

    def __init__(
        self,
        issuer: AccessIssuer,
        clock: FrozenClock,
        backend: SimpleCache,
        *,
        background: Background | None = None,
        sleep: Callable[[float], None] = never_sleep,
    ) -> None:
        self.store = KeyStore(
            certs_url=issuer.certs_url,
            session=requests.Session(),
            timeout=TIMEOUT,
            cache=SharedCache(backend, clock=clock),
            clock=clock,
            max_age=MAX_AGE,
            min_refresh_interval=INTERVAL,
            background=background or run_inline,
            spawn=run_inline,  # the first and forced fetches: at once
            sleep=sleep,
        )

    def refusal(self, kid: str) -> Reason | None:
        """Why ``kid`` is refused, or ``None`` if its key is handed out."""
        try:
            self.store.key_for(kid)
        except (AccessUnauthorized, AccessUnavailable) as error:
            return error.reason
        return None


@pytest.fixture
def certs(issuer: AccessIssuer) -> Iterator[responses.RequestsMock]:
    """The team's certs endpoint, answered by ``issuer`` at each call."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(
            responses.GET,
            issuer.certs_url,
            callback=lambda _request: (200, {}, json.dumps(issuer.certs())),
        )
        yield mock


def fetches(mock: responses.RequestsMock, issuer: AccessIssuer) -> int:
    return count_calls(mock, issuer.certs_url)


def test_stale_set_served_while_its_refresh_waits(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """Past max-age, requests keep the stale set while one refresh is pending; it then lands."""
    background = Deferred()
    worker = Worker(issuer, clock, SimpleCache(), background=background)
    assert worker.store.preload()
    first = worker.store.current
    clock.advance(MAX_AGE + 1)
    assert [worker.refusal(issuer.signing_key.kid) for _ in range(50)] == [None] * 50
    assert (fetches(certs, issuer), len(background.jobs)) == (1, 1)  # one refresh, not yet run
    background.run_all()
    assert fetches(certs, issuer) == 2
    assert worker.store.current is not first
    assert worker.refusal(issuer.signing_key.kid) is None


def test_hanging_refresh_holds_no_request(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """While the certs endpoint hangs on the refresh, known kids are served without waiting."""
    release, hanging = threading.Event(), threading.Event()

    def hang(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        hanging.set()
        assert release.wait(30)
        return 200, {}, json.dumps(issuer.certs())

    threads: list[threading.Thread] = []

    def in_a_thread(job: Callable[[], None]) -> None:
        thread = threading.Thread(target=job)
        threads.append(thread)
        thread.start()

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(
            responses.GET,
            issuer.certs_url,
            callback=lambda _request: (200, {}, json.dumps(issuer.certs())),
        )
        worker = Worker(issuer, clock, SimpleCache(), background=in_a_thread)
        assert worker.store.preload()
        mock.replace(responses.CallbackResponse(responses.GET, issuer.certs_url, callback=hang))
        clock.advance(MAX_AGE)
        assert worker.refusal(issuer.signing_key.kid) is None
        assert hanging.wait(30)  # the refresh is under way, and stuck
        # Had any of these waited for the hanging fetch, the test would never get past them.
        assert [worker.refusal(issuer.signing_key.kid) for _ in range(100)] == [None] * 100
        assert len(threads) == 1  # one refresh, not one per request
        release.set()
        threads[0].join(30)
        assert fetches(mock, issuer) == 2


def test_failed_refresh_keeps_the_set_and_waits_the_interval(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """A failed refresh keeps serving the stale set and is tried again after the interval."""
    worker = Worker(issuer, clock, SimpleCache())
    assert worker.store.preload()
    certs.replace(responses.GET, issuer.certs_url, body=requests.Timeout("slow"))
    clock.advance(MAX_AGE)
    assert [worker.refusal(issuer.signing_key.kid) for _ in range(10)] == [None] * 10
    assert fetches(certs, issuer) == 2
    clock.advance(INTERVAL - 1)
    assert worker.refusal(issuer.signing_key.kid) is None
    assert fetches(certs, issuer) == 2
    clock.advance(1)
    assert worker.refusal(issuer.signing_key.kid) is None
    assert fetches(certs, issuer) == 3


def test_rotation_seen_by_another_worker_needs_no_fetch(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """After one worker's forced fetch, another takes the new key from the shared cache."""
    backend = SimpleCache()
    first, second = Worker(issuer, clock, backend), Worker(issuer, clock, backend)
    assert first.store.preload()
    assert second.store.preload()
    assert fetches(certs, issuer) == 1  # the second worker read the shared set
    issuer.rotate()
    clock.advance(1)
    assert first.refusal(issuer.signing_key.kid) is None
    assert second.refusal(issuer.signing_key.kid) is None
    assert fetches(certs, issuer) == 2


def test_worker_waits_for_another_workers_forced_fetch(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """A new kid arriving while another worker's forced fetch is under way takes its result."""
    backend = SimpleCache()
    first = Worker(issuer, clock, backend)
    assert first.store.preload()
    issuer.rotate()
    fetching = Worker(issuer, clock, backend)  # the other worker, in the middle of its fetch
    assert fetching.store._cache.add(
        fetching.store._forced_marker, [clock(), False], timeout=INTERVAL
    )
    looks: list[float] = []

    def other_worker_stores(seconds: float) -> None:
        looks.append(seconds)
        clock.advance(seconds)
        if len(looks) == 3:
            fetching.store._fetch(clock())

    first.store._sleep = other_worker_stores
    assert first.refusal(issuer.signing_key.kid) is None
    assert (len(looks), fetches(certs, issuer)) == (3, 2)


def test_wait_for_another_workers_forced_fetch_is_bounded(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """A forced fetch elsewhere that never stores is waited for one timeout, then refused."""
    backend = SimpleCache()
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds)

    worker = Worker(issuer, clock, backend, sleep=sleep)
    assert worker.store.preload()
    started = clock()
    assert worker.store._cache.add(worker.store._forced_marker, [started, False], timeout=INTERVAL)
    assert worker.refusal("rotated") == Reason.UNKNOWN_KID
    assert TIMEOUT <= clock() - started < TIMEOUT + 0.1
    assert fetches(certs, issuer) == 1
    waited.clear()
    assert worker.refusal("rotated") == Reason.UNKNOWN_KID  # no second wait in the interval
    assert waited == []


def test_flood_bound_across_workers(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """Workers sharing a cache force one fetch per interval between them, whatever the flood."""
    backend = SimpleCache()
    workers = [Worker(issuer, clock, backend, sleep=clock.advance) for _ in range(4)]
    for worker in workers:
        assert worker.store.preload()
    for second in range(2 * INTERVAL):
        for index, worker in enumerate(workers):
            assert worker.refusal(f"made-up-{second}-{index}") == Reason.UNKNOWN_KID
        clock.advance(1)
    # The load, then one forced fetch per interval (the waits for it move the clock too).
    assert 2 <= fetches(certs, issuer) <= 4


def many_keys_certs(issuer: AccessIssuer, count: int) -> dict[str, Any]:
    """The issuer's certs, padded to ``count`` keys (copies under other kids)."""
    document = issuer.certs()
    (jwk,) = document["keys"]
    extra = [{**jwk, "kid": f"extra-{index}"} for index in range(count - 1)]
    return {**document, "keys": [jwk, *extra]}


@pytest.mark.parametrize("published", [2, 100])
def test_unknown_kid_refusal_cost_does_not_grow_with_keys(
    issuer: AccessIssuer,
    clock: FrozenClock,
    certs: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    published: int,
) -> None:
    """200 made-up kids in the interval: no key import; shared reads bounded, not per request."""
    certs.replace(responses.GET, issuer.certs_url, json=many_keys_certs(issuer, published))
    backend = CountingCache()
    other, worker = Worker(issuer, clock, backend), Worker(issuer, clock, backend)
    assert other.store.preload()
    assert worker.store.preload()
    assert other.refusal("made-up") == Reason.UNKNOWN_KID  # the other worker's forced fetch
    clock.advance(TIMEOUT)  # that fetch is over
    parses: list[int] = []
    real_parse = keys_module.parse_certs

    def counted_parse(document: object) -> Any:
        parses.append(1)
        return real_parse(document)

    monkeypatch.setattr(keys_module, "parse_certs", counted_parse)
    backend.reads.clear()
    refusals = [worker.refusal(f"made-up-{index}") for index in range(200)]
    assert refusals == [Reason.UNKNOWN_KID] * 200
    assert len(parses) <= 1  # the other worker's new set at most, once
    assert len(backend.reads) <= 3  # the shared set and the forced-fetch marker, once
    assert fetches(certs, issuer) == 2


def test_shared_set_parsed_once_per_document(
    issuer: AccessIssuer,
    clock: FrozenClock,
    certs: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers reading the same shared document import its keys once each, not per read."""
    backend = SimpleCache()
    fetcher = Worker(issuer, clock, backend)
    assert fetcher.store.preload()
    parses: list[int] = []
    real_parse = keys_module.parse_certs

    def counted_parse(document: object) -> Any:
        parses.append(1)
        return real_parse(document)

    monkeypatch.setattr(keys_module, "parse_certs", counted_parse)
    reader = Worker(issuer, clock, backend)
    for _ in range(5):
        assert reader.store._shared_keyset() is not None
    assert parses == [1]


def test_forced_fetch_finishing_between_two_looks_is_taken(
    issuer: AccessIssuer, clock: FrozenClock, certs: responses.RequestsMock
) -> None:
    """A forced fetch elsewhere that ends between this worker's two looks is still taken up."""

    class RacingCache(SimpleCache):
        """Another worker's forced fetch completes right after this worker reads the set."""

        def __init__(self) -> None:
            super().__init__()
            self.other: KeyStore | None = None

        def get(self, key: str) -> Any:
            value = super().get(key)
            other, self.other = self.other, None
            if other is not None and key.startswith("flask_cf_access:certs:"):
                marker = other._forced_marker
                assert other._cache.add(marker, [clock(), False], timeout=INTERVAL)
                assert other._fetch(clock()) is not None
                other._cache.set(marker, [clock(), True], timeout=INTERVAL)
            return value

    backend = RacingCache()
    worker, other = Worker(issuer, clock, backend), Worker(issuer, clock, backend)
    assert worker.store.preload()
    issuer.rotate()
    clock.advance(1)
    backend.other = other.store
    assert worker.refusal(issuer.signing_key.kid) is None
    assert fetches(certs, issuer) == 2


def test_threads_wait_for_a_forced_fetch_under_way(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """While a forced fetch runs, a thread with a new kid waits for it instead of a quick 401."""
    worker = Worker(issuer, clock, SimpleCache())
    seen_during_fetch: list[Reason | None] = []
    others: list[threading.Thread] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(
            responses.GET,
            issuer.certs_url,
            callback=lambda _request: (200, {}, json.dumps(issuer.certs())),
        )
        assert worker.store.preload()
        issuer.rotate()

        def fetch_while_another_thread_asks(
            _request: requests.PreparedRequest,
        ) -> tuple[int, dict[str, str], str]:
            other = threading.Thread(
                target=lambda: seen_during_fetch.append(worker.refusal(issuer.signing_key.kid))
            )
            others.append(other)
            other.start()
            other.join(0.2)  # it must still be waiting: it has not been answered
            assert seen_during_fetch == []
            return 200, {}, json.dumps(issuer.certs())

        mock.replace(
            responses.CallbackResponse(
                responses.GET, issuer.certs_url, callback=fetch_while_another_thread_asks
            )
        )
        assert worker.refusal(issuer.signing_key.kid) is None
        others[0].join(30)
        assert seen_during_fetch == [None]
        assert fetches(mock, issuer) == 2
