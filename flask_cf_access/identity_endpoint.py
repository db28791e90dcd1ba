"""Asks the team's ``get-identity`` endpoint for the groups of a token."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import requests

from .errors import AccessUnavailable, Reason
from .fetch import FetchError, get_json
from .flight import Flights
from .groups import Group, MalformedGroups, parse_groups
from .shared_cache import SharedCache

logger = logging.getLogger("flask_cf_access")


class IdentityEndpoint:
    """Fetches an identity's groups, once per token, remembered until it expires.

    The answer is cached under a digest of the token (never the token itself),
    in the shared cache, so every worker sharing it asks at most once, even
    when several miss it at the same moment (:class:`~flask_cf_access.flight.Flights`).
    """

    def __init__(
        self,
        *,
        url: str,
        session: requests.Session,
        timeout: float,
        cache: SharedCache,
        clock: Callable[[], float],
    ) -> None:
        self.url = url
        self._session = session
        self._timeout = timeout
        self._cache = cache
        self._clock = clock
        self._flights = Flights(cache, wait_limit=timeout)

    def groups(self, token: str, expires_at: float) -> tuple[Group, ...]:
        """The groups of the identity behind a *verified* ``token``.

        :raises AccessUnavailable: the endpoint failed or answered something unusable.
        """
        cache_key = "identity:" + hashlib.sha256(token.encode()).hexdigest()

        def read() -> tuple[Group, ...] | None:
            cached = self._cache.get(cache_key)
            if isinstance(cached, list):
                try:
                    return parse_groups(cached)
                except MalformedGroups:
                    pass  # written by someone else; ask the endpoint instead
            return None

        def fetch() -> tuple[Group, ...]:
            groups = self._fetch(token)
            lifetime = int(expires_at - self._clock())
            if lifetime > 0:
                self._cache.set(cache_key, [group.as_dict() for group in groups], timeout=lifetime)
            return groups

        return self._flights.run(cache_key, read, fetch)

    def _fetch(self, token: str) -> tuple[Group, ...]:
        """Ask the endpoint.

        :raises AccessUnavailable: it failed or answered something unusable.
        """
        try:
            document = get_json(
                self._session,
                self.url,
                timeout=self._timeout,
                headers={"Cookie": f"CF_Authorization={token}"},
            )
            if not isinstance(document, dict) or "err" in document:
                raise FetchError(f"{self.url} did not answer an identity")
            return parse_groups(document.get("groups", []))
        except (FetchError, MalformedGroups) as exc:
            logger.error("Cloudflare Access identity could not be had: %s", exc)
            raise AccessUnavailable(Reason.IDENTITY_UNAVAILABLE) from exc
