"""The team's signing keys: fetched, cached, refreshed, never lost to an outage."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import requests
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .errors import Reason, refusal
from .fetch import FetchError, get_json
from .shared_cache import SharedCache
from .single_flight import POLL_INTERVAL, Background, SingleFlight, run_in_thread

logger = logging.getLogger("flask_cf_access")

#: RSA keys shorter than this are never trusted, whoever publishes them.
MIN_RSA_BITS = 2048

#: Set while ``flask cf-access`` loads the app (:func:`keys_fetched_on_demand`).
_ON_DEMAND: ContextVar[bool] = ContextVar("cf_access_keys_on_demand", default=False)


@contextmanager
def keys_fetched_on_demand() -> Iterator[None]:
    """While the block runs, :meth:`KeyStore.preload` fetches nothing.

    For the command line: ``flask cf-access routes`` needs no keys and must
    not wait for them, and ``check`` fetches them itself, once, to report
    what went wrong. Keys are still fetched when a token is verified.
    """
    token = _ON_DEMAND.set(True)
    try:
        yield
    finally:
        _ON_DEMAND.reset(token)


class CertsError(Exception):
    """A certs document holds no usable signing key."""


#: Seconds after a key set that shares no key with the one it replaced before a
#: token of a withdrawn key may make the keys be fetched again (once per this
#: many seconds between every worker sharing the cache).
RECHECK_AFTER = 5


@dataclass(frozen=True)
class KeySet:
    """One published set of keys, by ``kid``: its generation, and until when it is fresh.

    ``generation`` orders the sets the workers sharing a cache fetched (a
    counter in the cache, incremented by each fetch): a set is taken from the
    cache when its generation is higher than the one in use, never by the
    time another host's clock gave it. ``fresh_until`` is on this process's clock.
    """

    keys: Mapping[str, RSAKey]
    generation: int
    fresh_until: float


def parse_certs(document: object) -> dict[str, RSAKey]:
    """The RS256 signing keys of a certs document, by ``kid``.

    Entries that are not RSA signing keys for RS256, carry no ``kid``, have
    a ``key_ops`` without ``verify`` (RFC 7517, section 4.3) or are shorter
    than 2048 bits are skipped; only the public members are imported.
    ``public_cert`` and ``public_certs`` are not needed: ``keys`` says it all.

    :raises CertsError: when the document holds no usable key at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise CertsError("the certs document has no 'keys' list")
    keys: dict[str, RSAKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        key_ops = jwk.get("key_ops", ["verify"])
        if (
            not isinstance(kid, str)
            or not kid
            or jwk.get("kty") != "RSA"
            or jwk.get("alg", "RS256") != "RS256"
            or jwk.get("use", "sig") != "sig"
            or not isinstance(key_ops, list)
            or "verify" not in key_ops
        ):
            continue
        try:
            public_members = {"kty": "RSA", "n": jwk.get("n"), "e": jwk.get("e"), "kid": kid}
            key = RSAKey.import_key(cast(Any, public_members))
        except (JoseError, ValueError, TypeError):
            continue
        if key.public_key.key_size >= MIN_RSA_BITS:
            keys[kid] = key
    if not keys:
        raise CertsError("the certs document holds no usable RS256 key")
    return keys


def _supersedes(shared: KeySet, current: KeySet | None) -> bool:
    """Whether a set read from the shared cache replaces ``current``.

    One of a later generation does. So does one of an earlier generation
    with other keys: generations only grow while the counter lives, so the
    counter was lost (a Redis restarted, an entry evicted) and counts again
    from 1; a set fetched since is taken rather than ignored until this
    worker fetches its own.
    """
    if current is None or shared.generation > current.generation:
        return True
    return shared.generation < current.generation and shared.keys.keys() != current.keys.keys()


class _Job:
    """A fetch under way in the background, which requests wait for a bounded time."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.started = time.monotonic()


class KeyStore:
    """Hands out the team's key for a ``kid``, fetching the set only when needed.

    - The set is kept for ``max_age`` seconds, in this process and in the
      shared cache, so that other workers need not fetch it again. Sets in the
      cache are ordered by a generation counter the cache keeps, never by the
      clocks of the hosts that fetched them.
    - Once it is older, requests go on being served from it while one
      refresh runs in the background (one per process, and one fetch between
      the workers sharing the cache, :class:`~flask_cf_access._single_flight.SingleFlight`):
      no request waits for a refresh it does not need.
    - A ``kid`` not in the set forces a fetch, at once the first time after any
      routine or start-up fetch (a rotation is taken up without refusals),
      then at most once per ``min_refresh_interval`` across every worker
      sharing the cache (one atomic "set if absent, with an expiry" of a
      marker decides which), so a flood of made-up key ids never becomes a
      flood of fetches. Within that interval such a ``kid`` is refused without
      a fetch, a lock or a read of the shared cache.
    - The first fetch, and a forced one, run in the background, one at a time
      per process; a request needing it waits ``budget`` seconds at most
      (then 503, or 401 for the unknown kid), and requests with known kids
      never wait for it: no lock is held during a fetch.
    - A set sharing no key with the one it replaces (keys withdrawn at once,
      or a rotation done too early on the other side) is looked at again
      when a token of a withdrawn key arrives, every :data:`RECHECK_AFTER`
      seconds across the workers, for ``max_age`` seconds: those tokens are
      refused meanwhile, and served again within seconds of a heal.
    - A failed or garbage fetch keeps the last good set, and is not retried
      for ``min_refresh_interval``. With no set at all, requests get 503.
    - Every fetch is bounded by ``timeout``, every wait of a request by ``budget``.

    :param background: how a refresh of a stale set is started
        (default :func:`~flask_cf_access._core.single_flight.run_in_thread`;
        tests run it when they choose).
    :param spawn: how the first and the forced fetches are started
        (default: as ``background``).
    :param sleep: the wait between looks at the shared cache (tests inject theirs).
    """

    def __init__(
        self,
        *,
        certs_url: str,
        session: requests.Session,
        timeout: float,
        cache: SharedCache,
        clock: Callable[[], float],
        max_age: int,
        min_refresh_interval: int,
        budget: float | None = None,
        background: Background = run_in_thread,
        spawn: Background | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.certs_url = certs_url
        self._session = session
        self._timeout = timeout
        self._budget = timeout if budget is None else min(budget, timeout)
        self._cache = cache
        self._clock = clock
        self._max_age = max_age
        self._min_interval = min_refresh_interval
        self._recheck_after = min(RECHECK_AFTER, min_refresh_interval)
        self._background = background
        self._spawn = spawn if spawn is not None else background
        self._sleep = sleep
        self._cache_key = f"certs:{certs_url}"
        self._generation_key = f"certs-generation:{certs_url}"
        self._forced_marker = f"forced:{certs_url}"
        self._recheck_marker = f"recheck:{certs_url}"
        #: Held only for a moment, never across a fetch.
        self._state_lock = threading.Lock()
        self._flights = SingleFlight(cache, wait_limit=timeout, clock=clock, sleep=sleep)
        #: The key set in use now, if any was ever had. Read it; only the store replaces it.
        self.current: KeySet | None = None
        #: No fetch of any kind before this time (set by a failed fetch).
        self._retry_at = -math.inf
        #: Unknown kids are refused without a look anywhere until this time.
        self._quiet_until = -math.inf
        self._refreshing = False
        #: The first or forced fetch under way in this process, if any.
        self._job: _Job | None = None
        #: How many forced fetches this store claimed: each claim is named apart.
        self._claims = 0
        #: The kids of a set replaced by one sharing none of them, and until when
        #: (then after when) their tokens may make the keys be looked at again.
        self._withdrawn: frozenset[str] = frozenset()
        self._recheck_until = -math.inf
        self._recheck_at = -math.inf
        #: The last documents parsed, and their keys: each is parsed once.
        self._parsed: list[tuple[object, dict[str, RSAKey]]] = []

    def preload(self) -> bool:
        """Fetch the keys now, waiting for them; log a failure instead of raising it.

        Inside :func:`keys_fetched_on_demand` (the command line loading the
        app), nothing is fetched: ``False``.
        """
        if _ON_DEMAND.get():
            return False
        if self.current is None and self._clock() >= self._retry_at:
            self._take_one_keyset()
        return self.current is not None

    def key_for(self, kid: str) -> RSAKey:
        """The published key named ``kid``.

        :raises AccessUnauthorized: no such key, even after a refresh.
        :raises AccessUnavailable: no key set could be had at all.
        """
        return self.keyset_for(kid).keys[kid]

    def keyset_for(self, kid: str) -> KeySet:
        """The set in use that publishes ``kid``.

        While this set is still :attr:`current` and fresh, ``kid`` is still
        published: a caller may keep the set to skip the look-up until then.

        :raises AccessUnauthorized: no such key, even after a refresh.
        :raises AccessUnavailable: no key set could be had at all.
        """
        keyset = self._usable_keyset()
        if kid not in keyset.keys:
            now = self._clock()
            recheck = self._may_recheck(kid, now)
            if now < self._quiet_until and not recheck:
                raise refusal(Reason.UNKNOWN_KID)
            self._wait_for_job(lambda: self._forced_fetch(kid, now, recheck=recheck))
            keyset = self.current or keyset
            if kid not in keyset.keys:
                raise refusal(Reason.UNKNOWN_KID)
        return keyset

    # -- a set to use: the one in memory, refreshed behind the requests -------

    def _usable_keyset(self) -> KeySet:
        current = self.current
        if current is None:
            return self._first_keyset()
        if self._clock() >= current.fresh_until:
            self._start_refresh()
            current = self.current or current  # a refresh run at once may have replaced it
        return current

    def _start_refresh(self) -> None:
        """Start one refresh of the stale set, unless one runs or failed lately."""
        if self._refreshing or self._clock() < self._retry_at:
            return  # the common case while stale: no lock taken
        with self._state_lock:
            if self._refreshing or self._clock() < self._retry_at:
                return
            self._refreshing = True
        try:
            self._background(self._refresh)
        except BaseException:
            self._refreshing = False
            raise

    def _refresh(self) -> None:
        try:
            self._take_one_keyset()
        finally:
            self._refreshing = False

    def _take_one_keyset(self) -> None:
        """A newer set from the shared cache or one fetch between the callers, installed
        (or failed)."""
        keyset = self._flights.run(
            self._cache_key,
            lambda: self._newer_shared_keyset(self.current),
            lambda: self._fetch(self._clock()),
            lambda: None,
        )
        if keyset is None:
            self._failed(self._clock())
        else:
            self._install(keyset, own=False)

    def _first_keyset(self) -> KeySet:
        """The set, when there is none yet: one fetch in the background, a bounded wait.

        :raises AccessUnavailable: it could not be had within the budget.
        """
        if self._clock() >= self._retry_at:
            self._wait_for_job(self._take_one_keyset)
        if self.current is None:
            raise refusal(Reason.KEYS_UNAVAILABLE)
        return self.current

    def _wait_for_job(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the background unless a first or forced fetch already runs, and
        wait for whichever runs until ``budget`` seconds after it started.

        Counted from its start, not from each request's arrival: while a fetch
        hangs, a stream of unknown kids costs one budget in all, not one each.
        """
        with self._state_lock:
            running = self._job
            if running is None:
                running = self._job = _Job()
                start = True
            else:
                start = False
        if start:
            try:
                self._spawn(lambda: self._run_job(running, job))
            except BaseException:
                with self._state_lock:
                    self._job = None
                running.done.set()
                raise
        running.done.wait(max(0.0, running.started + self._budget - time.monotonic()))

    def _run_job(self, running: _Job, job: Callable[[], None]) -> None:
        try:
            job()
        finally:
            with self._state_lock:
                self._job = None
            running.done.set()

    # -- an unknown kid: a forced fetch, at most one per interval --------------

    def _may_recheck(self, kid: str, now: float) -> bool:
        """Whether ``kid``, withdrawn by a set sharing no key with the one before, may
        make the keys be looked at again now."""
        return kid in self._withdrawn and self._recheck_at <= now < self._recheck_until

    def _forced_fetch(self, kid: str, started: float, *, recheck: bool) -> None:
        """For an unknown ``kid``: a newer set in the shared cache that has it, else one
        fetch per interval across the workers, else the set another worker's fetch stores."""
        try:
            newer = self._newer_shared_keyset(self.current, install=True)
            if newer is not None and kid in newer.keys:
                return
            current = self.current
            if started < self._retry_at:
                return
            if recheck:
                marker, lifetime = self._recheck_marker, self._recheck_after
            else:
                marker, lifetime = self._forced_marker, self._min_interval
            claimed, held = self._claim(marker, lifetime)
            if claimed:
                try:
                    self._fetch(started)
                finally:
                    # Workers that found the marker need not wait for this fetch.
                    self._cache.set(marker + ":over", held, timeout=lifetime)
            elif newer is None:
                # Another worker forced a fetch within the interval: take its set
                # if it is still coming (one already stored was taken above).
                self._wait_for_forced_fetch(current, marker, held)
        finally:
            with self._state_lock:
                if recheck:
                    self._recheck_at = started + self._recheck_after
                else:
                    self._quiet_until = max(self._quiet_until, started + self._min_interval)

    def _claim(self, marker: str, lifetime: int) -> tuple[bool, object]:
        """Whether this worker may fetch now, and the claim the marker holds.

        One atomic "set if absent, with an expiry" of ``marker`` between the
        workers, its expiry kept by the backend's clock. Each claim is named
        apart (process, store, count); one this store left, which its own
        clock says is over (the backend's may lag), does not stop it.
        """
        self._claims += 1
        ours = f"{os.getpid()}:{id(self)}:"
        mine = f"{ours}{self._claims}"
        if self._cache.add(marker, mine, timeout=lifetime):
            return True, mine
        held = self._cache.get(marker)
        if isinstance(held, str) and held.startswith(ours):
            self._cache.set(marker, mine, timeout=lifetime)
            return True, mine
        return False, held

    def _wait_for_forced_fetch(self, current: KeySet | None, marker: str, held: object) -> None:
        """Take the set another worker's forced fetch (its claim ``held``) stores, if it
        comes within a timeout; none is waited for once that fetch says it is over."""
        deadline = self._clock() + self._timeout
        # Counted as well as timed: a clock that stands still ends the wait too.
        for _ in range(math.ceil(self._timeout / POLL_INTERVAL) + 1):
            if self._newer_shared_keyset(current, install=True) is not None:
                return
            if held is None or self._cache.get(marker + ":over") == held:
                return  # over, and its set was no newer than ours
            if self._clock() >= deadline:
                return
            self._sleep(POLL_INTERVAL)

    def _newer_shared_keyset(
        self, current: KeySet | None, *, install: bool = False
    ) -> KeySet | None:
        """The set in the shared cache, if it supersedes ``current`` (:func:`_supersedes`)."""
        shared = self._shared_keyset()
        if shared is None or not _supersedes(shared, current):
            return None
        if install:
            self._install(shared, own=False)
        return shared

    # -- fetching, sharing, parsing ---------------------------------------------

    def _install(self, keyset: KeySet, *, own: bool) -> None:
        """Use ``keyset`` from now on: always if this process fetched it, else if it
        supersedes the set in use."""
        with self._state_lock:
            current = self.current
            if not own and not _supersedes(keyset, current):
                return
            self.current = keyset
            if current is None:
                return
            if current.keys.keys().isdisjoint(keyset.keys):
                # Every key withdrawn at once: tokens of the old keys may mean the
                # team revoked them, or that the new set is a mistake soon undone.
                now = self._clock()
                self._withdrawn = frozenset(current.keys)
                self._recheck_at = now + self._recheck_after
                self._recheck_until = now + self._max_age
                logger.warning(
                    "Cloudflare Access keys: the new set shares no key with the last one; "
                    "tokens of the old keys are refused, and the keys looked at again"
                )
            elif not self._withdrawn.isdisjoint(keyset.keys):
                self._withdrawn = frozenset()  # an old key is back

    def _failed(self, now: float) -> None:
        """A fetch failed: none is tried again, nor forced, for the least interval."""
        with self._state_lock:
            self._retry_at = max(self._retry_at, now + self._min_interval)
            self._quiet_until = max(self._quiet_until, self._retry_at)

    def _shared_keyset(self) -> KeySet | None:
        """The set in the shared cache (its expiry, the backend's, says it is recent)."""
        entry = self._cache.get(self._cache_key)
        if not isinstance(entry, dict):
            return None
        generation = entry.get("generation")
        if isinstance(generation, bool) or not isinstance(generation, int):
            return None
        try:
            keys = self._parsed_once(entry.get("document"))
        except CertsError:
            return None
        return KeySet(keys, generation, self._clock() + self._max_age)

    def _parsed_once(self, document: object) -> dict[str, RSAKey]:
        """:func:`parse_certs` of ``document``, reusing the keys of an equal document.

        :raises CertsError: when the document holds no usable key at all.
        """
        for parsed_document, keys in self._parsed:
            if parsed_document == document:
                return keys
        keys = parse_certs(document)
        self._parsed = [(document, keys), *self._parsed[:1]]
        return keys

    def _fetch(self, now: float) -> KeySet | None:
        """Fetch and install a new set; ``None`` (logged, and retried after the interval) if not."""
        try:
            document = get_json(self._session, self.certs_url, timeout=self._timeout)
            keys = self._parsed_once(document)
        except (FetchError, CertsError) as exc:
            kept = "keeping the last good set" if self.current else "no keys yet"
            logger.error("Cloudflare Access keys could not be refreshed (%s); %s", exc, kept)
            self._failed(now)
            return None
        counted = self._cache.inc(self._generation_key)
        current = self.current
        # Without the shared counter (the cache is down), one more than the set in use.
        generation = counted if counted is not None else (current.generation + 1 if current else 1)
        keyset = KeySet(keys, generation, self._clock() + self._max_age)
        self._install(keyset, own=True)
        shared = {"keys": [key.as_dict(private=False) for key in keys.values()]}
        self._parsed = [(shared, keys), *self._parsed[:1]]
        self._cache.set(
            self._cache_key, {"generation": generation, "document": shared}, timeout=self._max_age
        )
        logger.info("Cloudflare Access keys loaded: %d key(s)", len(keys))
        return keyset
