"""The team's signing keys: fetched, cached, refreshed, never lost to an outage."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import requests
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .errors import AccessUnauthorized, AccessUnavailable, Reason
from .fetch import FetchError, get_json
from .flight import Flights
from .shared_cache import SharedCache

logger = logging.getLogger("flask_cf_access")

#: RSA keys shorter than this are never trusted, whoever publishes them.
MIN_RSA_BITS = 2048


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


class KeyStore:
    """Hands out the team's key for a ``kid``, fetching the set only when needed.

    - The set is kept for ``max_age`` seconds, in this process and in the
      shared cache, so that other workers need not fetch it again.
    - A ``kid`` not in the set forces a refresh, at most once per
      ``min_refresh_interval`` across every worker sharing the cache, so a
      flood of made-up key ids never becomes a flood of fetches.
    - One fetch at a time per process; other threads wait for its result. A
      stale or missing set is fetched by one of the workers sharing the cache
      while the others wait for it (:class:`~flask_cf_access.flight.Flights`).
    - A failed or garbage fetch keeps the last good set. With no set at all,
      requests get 503 and a new fetch is tried once per ``min_refresh_interval``.
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
    ) -> None:
        self.certs_url = certs_url
        self._session = session
        self._timeout = timeout
        self._cache = cache
        self._clock = clock
        self._max_age = max_age
        self._min_interval = min_refresh_interval
        self._cache_key = f"certs:{certs_url}"
        self._lock = threading.Lock()
        self._flights = Flights(cache, wait_limit=timeout)
        #: The key set in use now, if any was ever had. Read it; only the store replaces it.
        self.current: KeySet | None = None
        self._last_attempt = -math.inf

    def preload(self) -> bool:
        """Fetch the keys now; log a failure instead of raising it."""
        try:
            self._fresh_keyset()
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
        """The set in use that publishes ``kid``, refreshed first if it is stale.

        While this set is still :attr:`current` and fresh, ``kid`` is still
        published: a caller may keep the set to skip the look-up until then.

        :raises AccessUnauthorized: no such key, even after a refresh.
        :raises AccessUnavailable: no key set could be had at all.
        """
        keyset = self._fresh_keyset()
        if kid not in keyset.keys:
            keyset = self._refreshed_for_unknown_kid(kid, keyset)
            if kid not in keyset.keys:
                raise AccessUnauthorized(Reason.UNKNOWN_KID)
        return keyset

    def _fresh_keyset(self) -> KeySet:
        current = self.current
        if current is not None and self._clock() < current.fresh_until:
            return current
        with self._lock:
            now = self._clock()
            current = self.current
            if current is not None and now < current.fresh_until:
                return current
            if now - self._last_attempt >= self._min_interval:
                # A set another worker stored, else one fetch between the
                # workers whose sets grew stale together.
                keyset = self._flights.run(
                    self._cache_key,
                    lambda: self._shared_keyset(self._clock()),
                    lambda: self._fetch(self._clock()),
                )
            else:
                keyset = self._shared_keyset(now)
            if keyset is not None:
                self.current = keyset
                return keyset
        if current is None:
            raise AccessUnavailable(Reason.KEYS_UNAVAILABLE)
        return current

    def _refreshed_for_unknown_kid(self, kid: str, seen: KeySet) -> KeySet:
        with self._lock:
            current = self.current or seen
            if kid in current.keys:
                return current
            now = self._clock()
            shared = self._shared_keyset(now)
            if shared is not None and shared.fetched_at > current.fetched_at:
                self.current = current = shared
                if kid in shared.keys:
                    return shared
            if not self._may_force_refresh(now):
                return current
            return self._fetch(now) or current

    def _may_force_refresh(self, now: float) -> bool:
        if now - self._last_attempt < self._min_interval:
            return False
        marker = f"forced:{self.certs_url}"
        if self._cache.add(marker, now, timeout=self._min_interval):
            return True
        claimed_at = self._cache.get(marker)
        if isinstance(claimed_at, (int, float)) and now - claimed_at < self._min_interval:
            return False
        self._cache.set(marker, now, timeout=self._min_interval)
        return True

    def _shared_keyset(self, now: float) -> KeySet | None:
        entry = self._cache.get(self._cache_key)
        if not isinstance(entry, dict):
            return None
        fetched_at = entry.get("fetched_at")
        if not isinstance(fetched_at, (int, float)) or not now - self._max_age < fetched_at <= now:
            return None
        try:
            keys = parse_certs(entry.get("document"))
        except CertsError:
            return None
        return KeySet(keys, float(fetched_at), fetched_at + self._max_age)

    def _fetch(self, now: float) -> KeySet | None:
        """Fetch and install a new set; ``None`` (logged) if it could not be had."""
        self._last_attempt = now
        try:
            document = get_json(self._session, self.certs_url, timeout=self._timeout)
            keys = parse_certs(document)
        except (FetchError, CertsError) as exc:
            kept = "keeping the last good set" if self.current else "no keys yet"
            logger.error("Cloudflare Access keys could not be refreshed (%s); %s", exc, kept)
            return None
        keyset = KeySet(keys, now, now + self._max_age)
        self.current = keyset
        shared = {"keys": [key.as_dict(private=False) for key in keys.values()]}
        self._cache.set(
            self._cache_key, {"fetched_at": now, "document": shared}, timeout=self._max_age
        )
        logger.info("Cloudflare Access keys loaded: %d key(s)", len(keys))
        return keyset
