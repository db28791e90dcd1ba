"""The team's signing keys: fetched, cached, refreshed, never lost to an outage."""

from __future__ import annotations

import logging
import math
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

from ._errors import AccessUnavailable, Reason, refusal
from ._fetch import FetchError, get_json
from ._shared_cache import SharedCache
from ._single_flight import POLL_INTERVAL, SingleFlight

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


@dataclass(frozen=True)
class KeySet:
    """One published set of keys, by ``kid``: when it was fetched, and until when it is fresh."""

    keys: Mapping[str, RSAKey]
    fetched_at: float
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


def run_in_thread(job: Callable[[], None]) -> None:
    """Run ``job`` in a daemon thread: how a stale key set is refreshed by default."""
    threading.Thread(target=job, name="cf-access-keys-refresh", daemon=True).start()


class KeyStore:
    """Hands out the team's key for a ``kid``, fetching the set only when needed.

    - The set is kept for ``max_age`` seconds, in this process and in the
      shared cache, so that other workers need not fetch it again.
    - Once it is older, requests go on being served from it while one
      refresh runs in the background (one per process, and one fetch between
      the workers sharing the cache, :class:`~flask_cf_access._single_flight.SingleFlight`):
      no request waits for a refresh it does not need.
    - A ``kid`` not in the set forces a fetch, at once the first time after any
      routine or start-up fetch (a rotation is taken up without refusals),
      then at most once per ``min_refresh_interval`` across every worker
      sharing the cache, so a flood of made-up key ids never becomes a flood
      of fetches. Within that interval such a ``kid`` is refused without a
      fetch, a lock or a read of the shared cache.
    - A failed or garbage fetch keeps the last good set, and is not retried
      for ``min_refresh_interval``. With no set at all, requests get 503.
    - Every fetch, and every wait for another thread's or worker's fetch, is
      bounded by ``timeout``: a request pays for one timeout at most.

    :param background: how a refresh of a stale set is started
        (default :func:`run_in_thread`; tests run it when they choose).
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
        background: Callable[[Callable[[], None]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.certs_url = certs_url
        self._session = session
        self._timeout = timeout
        self._cache = cache
        self._clock = clock
        self._max_age = max_age
        self._min_interval = min_refresh_interval
        self._background = background if background is not None else run_in_thread
        self._sleep = sleep
        self._cache_key = f"certs:{certs_url}"
        self._forced_marker = f"forced:{certs_url}"
        #: Held by whoever fetches for an unknown kid or for a missing set.
        self._lock = threading.Lock()
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
        #: The last documents parsed, and their keys: each is parsed once.
        self._parsed: list[tuple[object, dict[str, RSAKey]]] = []

    def preload(self) -> bool:
        """Fetch the keys now; log a failure instead of raising it.

        Inside :func:`keys_fetched_on_demand` (the command line loading the
        app), nothing is fetched: ``False``.
        """
        if _ON_DEMAND.get():
            return False
        try:
            self._usable_keyset()
        except AccessUnavailable:
            return False
        return True

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
            if self._clock() < self._quiet_until:
                raise refusal(Reason.UNKNOWN_KID)
            keyset = self._refreshed_for_unknown_kid(kid, keyset)
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
        """One set from the shared cache or one fetch between the callers, installed (or failed)."""
        keyset = self._flights.run(
            self._cache_key,
            lambda: self._shared_keyset(self._clock()),
            lambda: self._fetch(self._clock()),
            lambda: None,
        )
        if keyset is None:
            self._failed(self._clock())
        else:
            self._install(keyset)

    def _first_keyset(self) -> KeySet:
        """The set, when there is none yet: one fetch between the callers, one timeout at most.

        :raises AccessUnavailable: it could not be had.
        """
        if not self._lock.acquire(timeout=self._timeout):
            raise refusal(Reason.KEYS_UNAVAILABLE)
        try:
            if self.current is None and self._clock() >= self._retry_at:
                self._take_one_keyset()
        finally:
            self._lock.release()
        if self.current is None:
            raise refusal(Reason.KEYS_UNAVAILABLE)
        return self.current

    # -- an unknown kid: a forced fetch, at most one per interval --------------

    def _refreshed_for_unknown_kid(self, kid: str, seen: KeySet) -> KeySet:
        if not self._lock.acquire(timeout=self._timeout):
            return self.current or seen
        try:
            current = self.current or seen
            now = self._clock()
            if kid in current.keys or now < self._quiet_until:
                return current
            newer = self._newer_shared_keyset(self._clock(), current)
            if newer is not None:
                current = newer
                if kid in newer.keys:
                    return newer
            if now < self._retry_at:
                self._quiet_until = self._retry_at
                return current
            claimed = self._claim_forced_fetch(now)
            if claimed is None:
                try:
                    return self._fetch(now) or current
                finally:
                    # Only now: threads with the same new kid wait for this fetch.
                    self._quiet_until = now + self._min_interval
                    self._cache.set(self._forced_marker, [now, True], timeout=self._min_interval)
            # Another worker forced a fetch lately: take its result if it is
            # still coming, then leave unknown kids alone until its interval ends.
            claimed_at, finished = claimed
            try:
                if finished:  # it stored its set before saying so: look once more
                    return self._newer_shared_keyset(self._clock(), current) or current
                return self._wait_for_forced_fetch(claimed_at, current)
            finally:
                self._quiet_until = claimed_at + self._min_interval
        finally:
            self._lock.release()

    def _claim_forced_fetch(self, now: float) -> tuple[float, bool] | None:
        """``None`` if this worker may force a fetch now, else when another one did and
        whether it is over.

        The marker in the shared cache holds ``[claimed_at, finished]`` for the interval.
        """
        if self._cache.add(self._forced_marker, [now, False], timeout=self._min_interval):
            return None
        marker = self._cache.get(self._forced_marker)
        if (
            isinstance(marker, list)
            and len(marker) == 2
            and isinstance(marker[0], (int, float))
            and 0 <= now - marker[0] < self._min_interval
        ):
            return float(marker[0]), bool(marker[1])
        self._cache.set(self._forced_marker, [now, False], timeout=self._min_interval)
        return None

    def _wait_for_forced_fetch(self, claimed_at: float, current: KeySet) -> KeySet:
        """The set another worker's forced fetch stores, if it comes before its timeout."""
        for _ in range(math.ceil(self._timeout / POLL_INTERVAL) + 1):
            if self._clock() >= claimed_at + self._timeout:
                break
            self._sleep(POLL_INTERVAL)
            newer = self._newer_shared_keyset(self._clock(), current)
            if newer is not None:
                return newer
            marker = self._cache.get(self._forced_marker)
            if not isinstance(marker, list) or marker[1:] != [False]:
                break  # it is over, without a newer set
        return current

    def _newer_shared_keyset(self, now: float, current: KeySet) -> KeySet | None:
        shared = self._shared_keyset(now)
        if shared is None or shared.fetched_at <= current.fetched_at:
            return None
        self._install(shared)
        return shared

    # -- fetching, sharing, parsing ---------------------------------------------

    def _install(self, keyset: KeySet) -> None:
        """Use ``keyset`` from now on, unless a newer one is already in use."""
        with self._state_lock:
            current = self.current
            if current is None or keyset.fetched_at >= current.fetched_at:
                self.current = keyset

    def _failed(self, now: float) -> None:
        """A fetch failed: none is tried again, nor forced, for the least interval."""
        with self._state_lock:
            self._retry_at = max(self._retry_at, now + self._min_interval)
            self._quiet_until = max(self._quiet_until, self._retry_at)

    def _shared_keyset(self, now: float) -> KeySet | None:
        entry = self._cache.get(self._cache_key)
        if not isinstance(entry, dict):
            return None
        fetched_at = entry.get("fetched_at")
        if not isinstance(fetched_at, (int, float)) or not now - self._max_age < fetched_at <= now:
            return None
        try:
            keys = self._parsed_once(entry.get("document"))
        except CertsError:
            return None
        return KeySet(keys, float(fetched_at), fetched_at + self._max_age)

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
        keyset = KeySet(keys, now, now + self._max_age)
        self._install(keyset)
        shared = {"keys": [key.as_dict(private=False) for key in keys.values()]}
        self._parsed = [(shared, keys), *self._parsed[:1]]
        self._cache.set(
            self._cache_key, {"fetched_at": now, "document": shared}, timeout=self._max_age
        )
        logger.info("Cloudflare Access keys loaded: %d key(s)", len(keys))
        return keyset
