"""SingleFlight: callers missing the same key, in threads or in processes, share one fetch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cachelib import SimpleCache

from flask_cf_access import AccessUnavailable, Reason
from flask_cf_access._core import single_flight as flight_module
from flask_cf_access._core.shared_cache import SharedCache
from flask_cf_access._core.single_flight import CLAIMED, POLL_INTERVAL, SingleFlight

from .support import START, FrozenClock, never_sleep

THREADS = 8


class Store:
    """Where fetched results go (the shared cache's part), and a count of the fetches."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.fetches = 0

    def read(self) -> str | None:
        return self.value

    def fetch(self) -> str:
        self.fetches += 1
        self.value = "fetched"
        return "fetched"


class OtherProcess:
    """A fake sleep standing for time passing while another process does ``act`` on a look."""

    def __init__(self, clock: FrozenClock, act: Any = None, on_look: int = 1) -> None:
        self.clock = clock
        self.act = act
        self.on_look = on_look
        self.looks = 0

    def __call__(self, seconds: float) -> None:
        self.looks += 1
        self.clock.advance(seconds)
        if self.looks == self.on_look and self.act is not None:
            self.act()


def shared_cache() -> SharedCache:
    return SharedCache(SimpleCache())


def gave_up() -> Any:
    """What a caller gets when the fetch it waited for came to nothing."""
    return "gave up"


class Followers:
    """Counts the callers waiting for another one's fetch in this process."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def arrived(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def fetch_once_all_wait(
        self, then: Callable[[], str], waiting: int = THREADS - 1
    ) -> Callable[[], str]:
        """A fetch that holds on until ``waiting`` callers wait for it (every other
        thread, by default), counted from now, then does ``then``.

        At least, not exactly: two callers may arrive between two looks at the count.
        """
        start = self.count

        def fetch() -> str:
            with self.changed:
                assert self.changed.wait_for(lambda: self.count - start >= waiting, timeout=30)
            return then()

        return fetch


@pytest.fixture
def followers(monkeypatch: pytest.MonkeyPatch) -> Followers:
    """SingleFlight whose waiting callers are counted."""
    counted = Followers()

    class CountedEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            counted.arrived()
            return super().wait(timeout)

    class CountedFlight(flight_module._Flight[Any]):
        def __init__(self) -> None:
            super().__init__()
            self.done = CountedEvent()

    monkeypatch.setattr(flight_module, "_Flight", CountedFlight)
    return counted


def test_threads_share_one_fetch(followers: Followers) -> None:
    """Threads missing the same key at once make one fetch and all get its result."""
    flights = SingleFlight(shared_cache(), wait_limit=5)
    fetches: list[str] = []

    def then() -> str:
        fetches.append("fetch")
        return "fetched"

    fetch = followers.fetch_once_all_wait(then)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(lambda _: flights.run("k", lambda: None, fetch, gave_up), range(THREADS))
        )
    assert results == ["fetched"] * THREADS
    assert fetches == ["fetch"]


def test_threads_share_one_refusal(followers: Followers) -> None:
    """When the one fetch is refused, every waiting thread gets the same refusal, not a fetch."""
    flights = SingleFlight(shared_cache(), wait_limit=5)
    fetches: list[str] = []

    def then() -> str:
        fetches.append("fetch")
        raise AccessUnavailable(Reason.IDENTITY_UNAVAILABLE)

    fetch = followers.fetch_once_all_wait(then)

    def call(_: int) -> Reason:
        with pytest.raises(AccessUnavailable) as refusal:
            flights.run("k", lambda: None, fetch, gave_up)
        return refusal.value.reason

    with ThreadPoolExecutor(THREADS) as pool:
        reasons = list(pool.map(call, range(THREADS)))
    assert reasons == [Reason.IDENTITY_UNAVAILABLE] * THREADS
    assert fetches == ["fetch"]


def test_a_stored_result_is_not_fetched() -> None:
    """What read() finds is the answer: no fetch, no claim."""
    cache = shared_cache()
    store = Store()
    store.value = "stored"
    assert SingleFlight(cache, wait_limit=5).run("k", store.read, store.fetch, gave_up) == "stored"
    assert store.fetches == 0


def test_fetcher_claims_then_releases() -> None:
    """The fetching process claims the key in the shared cache while it fetches, then lets go."""
    cache = shared_cache()
    claims: list[Any] = []
    flights = SingleFlight(cache, wait_limit=5)
    assert (
        flights.run("k", lambda: None, lambda: claims.append(cache.get("fetching:k")), gave_up)
        is None
    )
    assert claims == [CLAIMED]  # no time: no host reads another's clock
    assert cache.get("fetching:k") is None


def test_claim_released_after_a_refusal() -> None:
    """A refused fetch lets go of its claim, so other processes need not wait it out."""
    cache = shared_cache()

    def refused() -> str:
        raise AccessUnavailable(Reason.IDENTITY_UNAVAILABLE)

    with pytest.raises(AccessUnavailable):
        SingleFlight(cache, wait_limit=5).run("k", lambda: None, refused, gave_up)
    assert cache.get("fetching:k") is None


def test_waits_for_another_process_result() -> None:
    """With the key claimed by another process, its stored result is taken, and nothing fetched."""
    cache, store, clock = shared_cache(), Store(), FrozenClock()
    assert cache.add("fetching:k", CLAIMED, timeout=6)

    def other_process_stores() -> None:
        store.value = "theirs"

    sleep = OtherProcess(clock, other_process_stores, on_look=3)
    flights = SingleFlight(cache, wait_limit=5, clock=clock, sleep=sleep)
    assert flights.run("k", store.read, store.fetch, gave_up) == "theirs"
    assert (store.fetches, sleep.looks) == (0, 3)


def test_takes_the_failure_when_the_other_process_gives_up() -> None:
    """A claim let go without a result (their fetch failed) is a failure here: no second fetch."""
    cache, store, clock = shared_cache(), Store(), FrozenClock()
    assert cache.add("fetching:k", CLAIMED, timeout=6)
    sleep = OtherProcess(clock, lambda: cache.delete("fetching:k"), on_look=2)
    flights = SingleFlight(cache, wait_limit=5, clock=clock, sleep=sleep)
    assert flights.run("k", store.read, store.fetch, gave_up) == "gave up"
    assert (store.fetches, sleep.looks) == (0, 2)


def test_gives_up_at_the_wait_limit() -> None:
    """A claim held past the wait limit with no result (a stuck process): one wait, no fetch."""
    cache, store, clock = shared_cache(), Store(), FrozenClock()
    assert cache.add("fetching:k", CLAIMED, timeout=6)
    sleep = OtherProcess(clock)
    flights = SingleFlight(cache, wait_limit=5, clock=clock, sleep=sleep)
    assert flights.run("k", store.read, store.fetch, gave_up) == "gave up"
    assert store.fetches == 0
    waited = clock.now - START
    assert 5 <= waited < 5 + 2 * POLL_INTERVAL


def test_thread_takes_the_leaders_empty_result(followers: Followers) -> None:
    """When the one fetch comes to nothing (``None``), waiting threads take that, not a fetch."""
    flights = SingleFlight(shared_cache(), wait_limit=5)
    fetches: list[str] = []

    def then() -> Any:
        fetches.append("fetch")
        return None

    fetch = followers.fetch_once_all_wait(then)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(lambda _: flights.run("k", lambda: None, fetch, gave_up), range(THREADS))
        )
    assert results == [None] * THREADS
    assert fetches == ["fetch"]


def test_thread_wait_is_bounded_by_the_wait_limit() -> None:
    """A thread waiting for a stuck fetch in its own process gives up after the wait limit."""
    flights = SingleFlight(shared_cache(), wait_limit=0.05)
    release = threading.Event()
    started = threading.Event()

    def stuck() -> str:
        started.set()
        assert release.wait(30)
        return "late"

    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(flights.run, "k", lambda: None, stuck, gave_up)
        assert started.wait(30)
        assert flights.run("k", lambda: None, stuck, gave_up) == "gave up"
        release.set()
        assert leader.result(30) == "late"


def test_unreachable_cache_means_fetching_alone() -> None:
    """Without a working shared cache, a process fetches as if it were the only one."""

    class Down(SimpleCache):
        def _fail(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError

        get = add = set = delete = _fail

    store = Store()
    flights = SingleFlight(SharedCache(Down()), wait_limit=5, sleep=never_sleep)
    assert flights.run("k", store.read, store.fetch, gave_up) == "fetched"
    assert store.fetches == 1


# -- claims: atomic, expiring, holding no time -----------------------------------


class AddCounting(SimpleCache):
    """A backend counting the calls made to it, by method."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, key: str) -> Any:
        self.calls.append("get")
        return super().get(key)

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        self.calls.append("add")
        return super().add(key, value, timeout)

    def set(self, key: str, value: Any, timeout: Any = None) -> bool | None:
        self.calls.append("set")
        return super().set(key, value, timeout)

    def delete(self, key: str) -> bool:
        self.calls.append("delete")
        return super().delete(key)


def test_claim_in_place_costs_two_commands() -> None:
    """A claim made in the result's own entry: a new result costs the claim and the store,
    a result another process stored costs the failed claim and the read."""
    backend = AddCounting()
    cache = SharedCache(backend)
    flights = SingleFlight(cache, wait_limit=5, claim_in_place=True)

    def read() -> str | None:
        value = cache.get("k")
        return value if value != CLAIMED else None

    def fetch() -> str:
        cache.set("k", "fetched", timeout=60)
        return "fetched"

    assert flights.run("k", read, fetch, gave_up) == "fetched"
    assert backend.calls == ["add", "set"]
    backend.calls.clear()
    assert (
        SingleFlight(cache, wait_limit=5, claim_in_place=True).run("k", read, fetch, gave_up)
        == "fetched"
    )
    assert backend.calls == ["add", "get"]


def test_claim_in_place_let_go_after_a_refusal() -> None:
    """A refused fetch deletes its claim made in place: the next caller fetches at once."""
    cache = shared_cache()

    def refused() -> str:
        raise AccessUnavailable(Reason.IDENTITY_UNAVAILABLE)

    flights = SingleFlight(cache, wait_limit=5, claim_in_place=True)
    with pytest.raises(AccessUnavailable):
        flights.run("k", lambda: None, refused, gave_up)
    assert cache.get("k") is None


# -- a caller's budget and the bulkhead -------------------------------------------


class Parked:
    """A background runner that keeps its jobs until told to run them."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], None]] = []

    def __call__(self, job: Callable[[], None]) -> None:
        self.jobs.append(job)

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()


def test_caller_waits_its_budget_and_the_fetch_serves_the_next() -> None:
    """A fetch not done within the budget: the caller takes unavailable() and says it was
    late; the fetch goes on, and the callers after it take its result."""
    store, parked, late = Store(), Parked(), []
    flights = SingleFlight(shared_cache(), wait_limit=5, budget=0, spawn=parked)
    assert flights.run("k", store.read, store.fetch, gave_up, late=lambda: late.append(1)) == (
        "gave up"
    )
    assert (late, store.fetches, len(parked.jobs)) == ([1], 0, 1)
    # Another caller of the same key joins the flight under way: no second fetch.
    assert flights.run("k", store.read, store.fetch, gave_up) == "gave up"
    assert len(parked.jobs) == 1
    parked.run_all()
    assert (store.fetches, store.read()) == (1, "fetched")
    served = SingleFlight(shared_cache(), wait_limit=5, budget=0)  # its fetch runs at once
    assert served.run("k", store.read, store.fetch, gave_up) == "fetched"
    assert store.fetches == 1


class CountedParked(Parked):
    """A parked runner that says when it holds ``count`` jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def __call__(self, job: Callable[[], None]) -> None:
        with self.changed:
            super().__call__(job)
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.jobs) == count, timeout=30)


def test_bulkhead_refuses_beyond_its_slots() -> None:
    """With every slot taken by a fetch under way, another key's caller gets unavailable()
    at once (not after its budget), without a fetch and without calling the upstream
    late; a freed slot is used again."""
    parked, late = CountedParked(), []
    flights = SingleFlight(shared_cache(), wait_limit=5, budget=60, slots=2, spawn=parked)
    stores = [Store() for _ in range(4)]
    with ThreadPoolExecutor(2) as pool:
        leaders = [
            pool.submit(flights.run, f"k{index}", store.read, store.fetch, gave_up)
            for index, store in enumerate(stores[:2])
        ]
        parked.wait_for(2)  # both leaders hold a slot, their fetches parked
        started = time.monotonic()
        outcome = flights.run(
            "k2", stores[2].read, stores[2].fetch, gave_up, late=lambda: late.append(1)
        )
        assert (outcome, late) == ("gave up", [])
        assert time.monotonic() - started < 30  # not the 60 s budget
        parked.run_all()
        assert [leader.result(30) for leader in leaders] == ["fetched", "fetched"]
        third = pool.submit(flights.run, "k3", stores[3].read, stores[3].fetch, gave_up)
        parked.wait_for(1)  # a slot was free again
        parked.run_all()
        assert third.result(30) == "fetched"
    assert [store.fetches for store in stores] == [1, 1, 0, 1]


def test_budget_holds_while_the_fetch_hangs() -> None:
    """A caller's wait ends at its budget even though the fetch, in a thread, hangs."""
    release = threading.Event()

    def hanging() -> str:
        assert release.wait(30)
        return "late"

    def spawn(job: Callable[[], None]) -> None:
        threading.Thread(target=job, daemon=True).start()

    flights = SingleFlight(shared_cache(), wait_limit=5, budget=0.01, slots=1, spawn=spawn)
    try:
        assert flights.run("k", lambda: None, hanging, gave_up) == "gave up"
    finally:
        release.set()


def test_callers_have_the_result_before_it_is_stored() -> None:
    """``store`` runs after the callers in this process have the result: a slow cache
    does not hold them up (here the store waits until the caller has returned)."""
    returned, stored = threading.Event(), []

    def slow_store(result: str) -> None:
        assert returned.wait(30)
        stored.append(result)

    threads: list[threading.Thread] = []

    def spawn(job: Callable[[], None]) -> None:
        threads.append(threading.Thread(target=job, daemon=True))
        threads[-1].start()

    flights = SingleFlight(shared_cache(), wait_limit=5, budget=30, spawn=spawn)
    assert flights.run("k", lambda: None, lambda: "fetched", gave_up, store=slow_store) == (
        "fetched"
    )
    returned.set()
    threads[0].join(30)
    assert stored == ["fetched"]


def test_unshared_flight_fetches_without_the_shared_cache(followers: Followers) -> None:
    """``shared=False``: no claim and no look in the shared cache, whatever it holds; the
    threads of this process still share one fetch."""
    backend = AddCounting()
    cache = SharedCache(backend)
    cache.set("k", "stored by another process", timeout=60)
    backend.calls.clear()
    flights = SingleFlight(cache, wait_limit=5)
    fetches: list[str] = []

    def then() -> str:
        fetches.append("fetch")
        return "fetched here"

    fetch = followers.fetch_once_all_wait(then)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(
            pool.map(
                lambda _: flights.run("k", lambda: cache.get("k"), fetch, gave_up, shared=False),
                range(THREADS),
            )
        )
    assert results == ["fetched here"] * THREADS
    assert fetches == ["fetch"]
    assert backend.calls == []
