"""Asks the team's ``get-identity`` endpoint for the groups of a token."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

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

    def groups(self, token: str, expires_at: float, claims: Mapping[str, Any]) -> tuple[Group, ...]:
        """The groups of the identity behind a *verified* ``token``.

        :param claims: the token's verified claims: an answer about anyone
            else than their ``email`` (and ``sub``, as ``user_uuid``) is refused.
        :raises AccessUnavailable: the endpoint failed, answered something
            unusable, or answered about another user.
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
            groups = self._fetch(token, claims)
            lifetime = int(expires_at - self._clock())
            if lifetime > 0:
                self._cache.set(cache_key, [group.as_dict() for group in groups], timeout=lifetime)
            return groups

        return self._flights.run(cache_key, read, fetch)

    def _fetch(self, token: str, claims: Mapping[str, Any]) -> tuple[Group, ...]:
        """Ask the endpoint.

        :raises AccessUnavailable: it failed, answered something unusable, or
            answered about another user than the one ``claims`` speak for.
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
            if not _is_about(document, claims):
                raise FetchError(f"{self.url} answered about another user than the token's")
            return parse_groups(document.get("groups", []))
        except (FetchError, MalformedGroups) as exc:
            logger.error("Cloudflare Access identity could not be had: %s", exc)
            raise AccessUnavailable(Reason.IDENTITY_UNAVAILABLE) from exc


def _is_about(document: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    """Whether a get-identity answer is about the user of the token with ``claims``.

    The answer's ``email`` must be the token's (case aside), and its
    ``user_uuid``, when it carries one, the token's ``sub``. An answer that
    cannot be tied to the token's user by either is refused.
    """
    tied = False
    email = claims.get("email")
    if isinstance(email, str) and email:
        answered = document.get("email")
        if not isinstance(answered, str) or answered.lower() != email.lower():
            return False
        tied = True
    sub = claims.get("sub")
    if isinstance(sub, str) and sub and "user_uuid" in document:
        if document["user_uuid"] != sub:
            return False
        tied = True
    return tied
