"""One fetch per key at a time: across threads by waiting, across processes by a claim.

Many requests can miss the same entry at once: the first requests of a new
token on several workers, or every worker when the key set grows stale. Each
would ask Cloudflare. :class:`SingleFlight` lets one of them ask while the others
wait for its answer.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar, cast

from ._clock import system_time
from ._errors import AccessError
from ._shared_cache import SharedCache

T = TypeVar("T")
#: What a flight calls for its result: ``read`` (``None`` for nothing found),
#: ``fetch``, ``unavailable``.
Source: TypeAlias = Callable[[], T]

#: How often a process waiting for another one's fetch looks in the shared cache.
POLL_INTERVAL = 0.02


def _still_held(made_at: object, now: float, lifetime: int) -> bool:
    """Whether a claim made at ``made_at`` may still be held, ``lifetime`` seconds long.

    Clocks of other hosts may be off by a lifetime either way; a claim
    further off, or not a time at all, was abandoned.
    """
    if isinstance(made_at, bool) or not isinstance(made_at, (int, float)):
        return False
    return now - 2 * lifetime <= made_at <= now + lifetime


class _Flight(Generic[T]):
    """One fetch under way in this process, and what it came to."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: AccessError | None = None


class SingleFlight:
    """Makes the callers missing the same key share one fetch.

    - In this process, callers of a key wait for the first one, then take its
      result, or a copy of its refusal.
    - Across processes sharing the cache, the first one to claim the key in it
      fetches; the others look for its result every :data:`POLL_INTERVAL`
      seconds until it is there, the claim is gone (the fetch failed), or
      ``wait_limit`` seconds have passed.
    - No caller waits longer than ``wait_limit`` for another's fetch, and one
      whose wait came to nothing (that fetch failed or is stuck) takes
      ``unavailable()`` rather than fetching again: a caller pays for one
      timeout at most, never for its own after someone else's.
    - A claim holds the wall-clock time it was made, and counts only for as
      long as it could be real: one a backend kept past its expiry (cachelib's
      ``RedisCache.add`` sets the expiry in a second command, which a timeout
      or a crash can lose) is taken over, rather than blocking every later
      fetch of the key.

    :param cache: the shared cache the fetched results are stored in, and claims made in.
    :param wait_limit: the longest a process waits for another one's fetch.
    :param clock: a monotonic time source; ``sleep``, the wait between looks.
    """

    def __init__(
        self,
        cache: SharedCache,
        *,
        wait_limit: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cache = cache
        self._wait_limit = wait_limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}

    def run(self, key: str, read: Source[T | None], fetch: Source[T], unavailable: Source[T]) -> T:
        """What ``read()`` finds for ``key``, else what one ``fetch()`` gives.

        ``fetch`` stores its result where ``read`` finds it (the shared cache),
        so that the callers waiting in other processes can have it.
        ``unavailable()`` is what a caller gets (or raises) when the fetch it
        waited for, in another thread or process, failed or outlasted ``wait_limit``.

        :raises AccessError: what ``fetch`` or ``unavailable`` raised, in this
            caller or the one it waited for.
        """
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leading:
            if not flight.done.wait(self._wait_limit):
                return unavailable()
            if flight.error is not None:
                raise type(flight.error)(flight.error.reason) from flight.error
            return cast(T, flight.result)  # the leader's, even if it came to nothing
        try:
            result = self._across_processes(key, read, fetch, unavailable)
            flight.result = result
            return result
        except AccessError as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _across_processes(
        self, key: str, read: Source[T | None], fetch: Source[T], unavailable: Source[T]
    ) -> T:
        found = read()
        if found is not None:
            return found
        claim = "fetching:" + key
        lifetime = math.ceil(self._wait_limit) + 1
        made_at = system_time()  # wall-clock: other hosts read the claim
        claimed = self._cache.add(claim, made_at, timeout=lifetime)
        if not claimed:
            held_since = self._cache.get(claim)
            if _still_held(held_since, made_at, lifetime):
                found = self._wait_for_other_process(claim, read)
                return unavailable() if found is None else found
            if held_since is not None:  # abandoned: take it over
                self._cache.set(claim, made_at, timeout=lifetime)
                claimed = True
        # Claimed; or the add failed while no claim can be seen, as with a
        # backend that answers every call with a miss instead of raising.
        try:
            # Claimed, read again: another process may have stored its result,
            # and let go of its claim, between the first read and the claim.
            found = read()
            if found is not None:
                return found
            return fetch()
        finally:
            if claimed:
                self._cache.delete(claim)

    def _wait_for_other_process(self, claim: str, read: Source[T | None]) -> T | None:
        """What another process's fetch stored, or ``None`` if it gave up or took too long."""
        deadline = self._clock() + self._wait_limit
        while self._clock() < deadline:
            self._sleep(POLL_INTERVAL)
            found = read()
            if found is not None:
                return found
            if self._cache.get(claim) is None:
                return read()  # its result may have been stored since the look before
        return None
