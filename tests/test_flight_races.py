"""SingleFlight across processes: a result stored just before a look is never fetched again.

Another process's fetch can end (result stored, claim let go) at any moment
between two calls this process makes to the shared cache; under CPU load
that happens. Each test makes it happen at one such moment.
"""

from __future__ import annotations

from datetime import timedelta

from cachelib import SimpleCache

from flask_cf_access._core.shared_cache import SharedCache
from flask_cf_access._core.single_flight import CLAIMED, SingleFlight

from .support import FrozenClock

CLAIM = "fetching:k"


class OtherProcessEndsOnRead:
    """What this process reads; on read number ``on_read``, the other process has just
    stored its result and let go of its claim, after the read looked."""

    def __init__(self, cache: SharedCache, on_read: int, *, stores: bool = True) -> None:
        self.cache = cache
        self.on_read = on_read
        self.stores = stores
        self.reads = 0
        self.value: str | None = None
        self.fetches = 0

    def read(self) -> str | None:
        self.reads += 1
        seen = self.value
        if self.reads == self.on_read:
            self.value = "theirs" if self.stores else None
            self.cache.delete(CLAIM)
        return seen

    def fetch(self) -> str:
        self.fetches += 1
        return "ours"

    def unavailable(self) -> str:
        return "unavailable"


def test_result_stored_between_the_first_read_and_the_claim() -> None:
    """The other process ends between our miss and our claim: its result is taken, no fetch."""
    cache = SharedCache(SimpleCache())
    assert cache.add(CLAIM, CLAIMED, timeout=6)  # the other process is fetching
    store = OtherProcessEndsOnRead(cache, on_read=1)
    flights = SingleFlight(cache, wait_limit=5, clock=FrozenClock(), sleep=lambda _: None)
    assert flights.run("k", store.read, store.fetch, store.unavailable) == "theirs"
    assert store.fetches == 0
    assert cache.get(CLAIM) is None


def test_result_stored_between_a_look_and_the_claim_check() -> None:
    """While waiting, the other process ends between a look and the claim check: no fetch."""
    cache = SharedCache(SimpleCache())
    assert cache.add(CLAIM, CLAIMED, timeout=6)
    store = OtherProcessEndsOnRead(cache, on_read=3)
    flights = SingleFlight(cache, wait_limit=5, clock=FrozenClock(), sleep=lambda _: None)
    assert flights.run("k", store.read, store.fetch, store.unavailable) == "theirs"
    assert store.fetches == 0


def test_claim_let_go_without_a_result_takes_their_failure() -> None:
    """A claim let go with nothing stored (their fetch failed): no second fetch, their failure."""
    cache = SharedCache(SimpleCache())
    assert cache.add(CLAIM, CLAIMED, timeout=6)
    store = OtherProcessEndsOnRead(cache, on_read=2, stores=False)
    flights = SingleFlight(cache, wait_limit=5, clock=FrozenClock(), sleep=lambda _: None)
    assert flights.run("k", store.read, store.fetch, store.unavailable) == "unavailable"
    assert store.fetches == 0


class MissingEverything(SimpleCache):
    """A backend that fails by answering every call with a miss, never raising
    (as cachelib's FileSystemCache does when its directory is gone)."""

    def add(self, key: str, value: object, timeout: int | timedelta | None = None) -> bool:
        return False

    def get(self, key: str) -> None:
        return None


def test_backend_refusing_every_claim_still_fetches() -> None:
    """An add that fails with no claim to be seen is a broken backend: fetch here, once."""
    cache = SharedCache(MissingEverything())
    store = OtherProcessEndsOnRead(cache, on_read=0)
    flights = SingleFlight(cache, wait_limit=5, clock=FrozenClock(), sleep=lambda _: None)
    assert flights.run("k", store.read, store.fetch, store.unavailable) == "ours"
    assert store.fetches == 1
