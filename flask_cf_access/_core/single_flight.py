"""One fetch per key at a time, and a bounded wait for it: no request waits out an upstream.

Many requests can miss the same entry at once: the first requests of a new
token on several workers, or every worker when the key set grows stale. Each
would ask Cloudflare. :class:`SingleFlight` lets one of them ask while the others
wait for its answer, and no caller waits longer than its budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeAlias, TypeVar, cast

from .errors import AccessError
from .shared_cache import SharedCache

T = TypeVar("T")
#: What a flight calls for its result: ``read`` (``None`` for nothing found),
#: ``fetch``, ``unavailable``.
Source: TypeAlias = Callable[[], T]
#: How work is started in the background: given a job taking no argument,
#: start it (:func:`run_in_thread` by default; :func:`run_inline` in tests).
Background: TypeAlias = Callable[[Callable[[], None]], None]

#: How often a process waiting for another one's fetch looks in the shared cache.
POLL_INTERVAL = 0.02
#: What a claim in the shared cache holds: no time, so that no decision
#: compares the clocks of two hosts. The backend's own expiry ends it.
CLAIMED = "fetching"


def run_in_thread(job: Callable[[], None]) -> None:
    """Run ``job`` in a daemon thread: how background work starts by default."""
    threading.Thread(target=job, name="cf-access-background", daemon=True).start()


def run_inline(job: Callable[[], None]) -> None:
    """Run ``job`` now, in the caller's thread: the ``background=`` of tests.

    ``CloudflareAccess(app, background=run_inline)`` (or the middleware's
    ``background=``) has a key refresh or a get-identity call done by the
    request that starts it, so the test sees it done when that request returns.
    """
    job()


class _Flight(Generic[T]):
    """One fetch under way in this process, and what it came to."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        #: No slot was free within the budget: the fetch never went out.
        self.no_slot = False
        #: Another process's fetch, waited for, came to nothing.
        self.gave_up = False


class SingleFlight:
    """Makes the callers missing the same key share one fetch, each waiting a bounded time.

    - In this process, callers of a key wait for the first one's fetch, then
      take its result, or a copy of its refusal.
    - The fetch runs through ``spawn`` (a thread): a caller waits ``budget``
      seconds for it and then takes ``unavailable()``, while the fetch goes on
      to its own deadline and serves the callers after it.
    - At most ``slots`` fetches are in flight in this process at once (a
      bulkhead); a caller finding them all busy takes ``unavailable()`` at
      once, so that callers waiting on an upstream never hold more than
      ``slots`` of the server's threads (the callers of the same key aside).
    - Across processes sharing the cache, the first one to claim the key in it
      fetches; the others look for its result every :data:`POLL_INTERVAL`
      seconds until it is there, the claim is gone (the fetch failed), or
      ``wait_limit`` seconds have passed. A claim is one atomic
      "set if absent, with an expiry" (:meth:`SharedCache.add`) holding
      :data:`CLAIMED`, never a time.
    - ``claim_in_place``: the claim is made in the result's own entry, which the
      fetch then overwrites, so that a new entry costs two cache commands (the
      claim, the result) and an entry another process stored costs two (the
      failed claim, the read). Otherwise the claim has an entry of its own.

    :param cache: the shared cache the fetched results are stored in, and claims made in.
    :param wait_limit: the longest a fetch waits for another process's fetch.
    :param budget: the longest a caller waits, ``wait_limit`` when ``None``.
    :param clock: a monotonic time source; ``sleep``, the wait between looks.
    """

    def __init__(
        self,
        cache: SharedCache,
        *,
        wait_limit: float,
        budget: float | None = None,
        slots: int | None = None,
        spawn: Background = run_inline,
        claim_in_place: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cache = cache
        self._wait_limit = wait_limit
        self._budget = wait_limit if budget is None else budget
        self._slots = threading.BoundedSemaphore(slots) if slots is not None else None
        self._spawn = spawn
        self._claim_in_place = claim_in_place
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}

    def run(
        self,
        key: str,
        read: Source[T | None],
        fetch: Source[T],
        unavailable: Source[T],
        *,
        late: Callable[[], None] | None = None,
        store: Callable[[T], None] | None = None,
        shared: bool = True,
    ) -> T:
        """What ``read()`` finds for ``key``, else what one ``fetch()`` gives.

        ``fetch`` stores its result where ``read`` finds it (the shared cache),
        so that the callers waiting in other processes can have it; or
        ``store(result)`` does, after the callers in this process have it, so
        that a slow cache does not hold them up.
        ``unavailable()`` is what a caller gets (or raises) when the fetch it
        waited for, in another thread or process, failed, outlasted its
        budget, or could not start for want of a free slot; ``late()`` is
        called first when the budget ran out (the upstream is slow).
        ``shared=False``: the flight is this process's alone: no claim, no
        look in the shared cache, ``fetch()`` at once (for a result that only
        this process's own fetch will do).

        :raises AccessError: what ``fetch`` or ``unavailable`` raised, in this
            caller or the one it waited for.
        """
        started = time.monotonic()
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leading:
            self._start(key, flight, read, fetch, store, shared=shared)
        remaining = self._budget - (time.monotonic() - started)
        if flight.no_slot:
            return unavailable()
        if not flight.done.wait(max(0.0, remaining)):
            if late is not None:
                late()
            return unavailable()
        error = flight.error
        if flight.gave_up:
            return unavailable()
        if error is None:
            return cast(T, flight.result)  # the leader's, even if it came to nothing
        if leading:
            raise error
        if isinstance(error, AccessError):
            raise type(error)(error.reason) from error
        return unavailable()

    def _start(
        self,
        key: str,
        flight: _Flight[Any],
        read: Source[Any],
        fetch: Source[Any],
        store: Callable[[Any], None] | None,
        *,
        shared: bool = True,
    ) -> None:
        """Start the fetch of ``flight``, once a slot is free within the budget."""
        if self._slots is not None and not self._slots.acquire(blocking=False):
            # Every slot busy: fail fast rather than hold one more of the server's
            # threads, which the routes that need no upstream are waiting for.
            flight.no_slot = True
            self._end(key, flight, slot=False)
            return

        def job() -> None:
            fetched = False
            try:
                if shared:
                    found, gave_up, fetched = self._across_processes(key, read, fetch)
                else:
                    found, gave_up, fetched = fetch(), False, True
                flight.result, flight.gave_up = found, gave_up
            except BaseException as error:  # handed to the callers, raised there
                flight.error = error
            finally:
                self._end(key, flight, slot=True)
            if fetched and store is not None:
                store(flight.result)

        try:
            self._spawn(job)
        except BaseException:
            if not flight.done.is_set():
                flight.no_slot = True
                self._end(key, flight, slot=True)
            raise

    def _end(self, key: str, flight: _Flight[Any], *, slot: bool) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        if slot and self._slots is not None:
            self._slots.release()
        flight.done.set()

    def _across_processes(
        self, key: str, read: Source[T | None], fetch: Source[T]
    ) -> tuple[T | None, bool, bool]:
        """The result, whether another process's fetch came to nothing (the result is
        then ``None``), and whether the result is this process's own fetch."""
        if self._claim_in_place:
            claim = key
        else:
            found = read()
            if found is not None:
                return found, False, False
            claim = "fetching:" + key
        lifetime = math.ceil(self._wait_limit) + 1
        claimed = self._cache.add(claim, CLAIMED, timeout=lifetime)
        if not claimed:
            if self._claim_in_place:
                found = read()  # what the entry holds: another process's result, or its claim
                if found is not None:
                    return found, False, False
            if self._cache.get(claim) is not None:
                found = self._wait_for_other_process(claim, read)
                return found, found is None, False
            # The add failed while no claim can be seen, as with a backend that
            # answers every call with a miss instead of raising: fetch alone.
        if not self._claim_in_place:
            # Another process may have stored its result, and let go of its
            # claim, between the first read and the claim.
            found = read()
            if found is not None:
                if claimed:
                    self._cache.delete(claim)
                return found, False, False
        succeeded = False
        try:
            result = fetch()
            succeeded = True
            return result, False, True
        finally:
            # In place, the result has replaced the claim.
            if claimed and not (succeeded and self._claim_in_place):
                self._cache.delete(claim)

    def _wait_for_other_process(self, claim: str, read: Source[T | None]) -> T | None:
        """What another process's fetch stored, or ``None`` if it gave up or took too long."""
        deadline = self._clock() + self._wait_limit
        while self._clock() < deadline:
            self._sleep(POLL_INTERVAL)
            found = read()
            if found is not None:
                return found
            if self._cache.get(claim) != CLAIMED:
                return read()  # its result may have been stored since the look before
        return None
