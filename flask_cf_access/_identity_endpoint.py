"""Asks the team's ``get-identity`` endpoint about the user of a token: groups and profile."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import requests

from . import _keys as _keys
from ._errors import AccessUnavailable, Reason, refusal
from ._fetch import FetchError, get_json
from ._groups import Group, MalformedGroups, parse_groups
from ._shared_cache import SharedCache
from ._single_flight import SingleFlight
from ._tokens import TOKEN_COOKIE

logger = logging.getLogger("flask_cf_access")

#: Seconds new identity look-ups are refused after get-identity first fails.
FIRST_BACK_OFF = 1.0
#: The longest back-off; each failed probe doubles it up to this.
LONGEST_BACK_OFF = 30.0


class IdentityAnswer(NamedTuple):
    """What get-identity answered about one token's user."""

    #: The user's groups, parsed.
    groups: tuple[Group, ...]
    #: The whole answer, as parsed from JSON (the profile is read from it).
    document: dict[str, Any]
    #: When it was had from Cloudflare, by the endpoint's clock.
    fetched_at: float


class BackOff:
    """Keeps a failing endpoint from holding a worker per request.

    After a failure, :meth:`admit` says no for :data:`FIRST_BACK_OFF` seconds;
    then one caller (the probe) is let through. A failed probe doubles the
    back-off, up to :data:`LONGEST_BACK_OFF`; any success ends it. The change
    is logged once going down and once on recovery.
    """

    def __init__(self, clock: Callable[[], float], *, name: str) -> None:
        self._clock = clock
        self._name = name
        self._lock = threading.Lock()
        self._delay = 0.0  # 0: healthy
        self._until = 0.0
        self._probing = False

    def admit(self) -> bool | None:
        """Whether a call may go out now: ``False`` to refuse it at once.

        ``None`` means yes, as the probe of a back-off: its outcome must be
        reported with ``probe=True``.
        """
        if self._delay == 0:  # read without the lock: the healthy path stays free
            return True
        with self._lock:
            if self._delay == 0:
                return True
            if self._probing or self._clock() < self._until:
                return False
            self._probing = True
            return None

    def failed(self, *, probe: bool) -> None:
        """A call went out and failed."""
        with self._lock:
            if self._delay == 0:
                self._delay = FIRST_BACK_OFF
                logger.warning(
                    "%s is failing; new look-ups are refused for %g s at a time until it answers",
                    self._name,
                    self._delay,
                )
            elif probe:
                self._delay = min(LONGEST_BACK_OFF, self._delay * 2)
            else:
                return  # admitted before the back-off began: it says nothing new
            self._until = self._clock() + self._delay
            self._probing = False

    def succeeded(self) -> None:
        """A call went out and was answered."""
        if self._delay == 0:
            return
        with self._lock:
            if self._delay != 0:
                self._delay = 0.0
                self._probing = False
                logger.info("%s answers again", self._name)


class IdentityEndpoint:
    """Fetches an identity's groups, once per token, remembered until it expires.

    The answer is cached under a digest of the token (never the token itself),
    in the shared cache, so every worker sharing it asks at most once, even
    when several miss it at the same moment (:class:`~flask_cf_access._single_flight.SingleFlight`).

    After the endpoint times out or fails, new look-ups are refused at once
    for a growing back-off (:class:`BackOff`), so a slow endpoint does not
    hold a worker per request; identities already cached keep being served.
    Whether it answers again is asked in the background (``background``, a
    thread by default), with the token of a refused look-up, whose answer is
    then cached: no request waits for a probe.
    """

    def __init__(
        self,
        *,
        url: str,
        session: requests.Session,
        timeout: float,
        cache: SharedCache,
        clock: Callable[[], float],
        background: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.url = url
        self._session = session
        self._timeout = timeout
        self._cache = cache
        self._clock = clock
        self._flights = SingleFlight(cache, wait_limit=timeout)
        self._back_off = BackOff(clock, name=f"Cloudflare Access identity endpoint {url}")
        self._background = background if background is not None else _keys.run_in_thread

    def groups(self, token: str, expires_at: float, claims: Mapping[str, Any]) -> tuple[Group, ...]:
        """The groups of the identity behind a *verified* ``token``.

        :param claims: the token's verified claims: an answer about anyone
            else than their ``email`` (and ``sub``, as ``user_uuid``) is refused.
        :raises AccessUnavailable: the endpoint failed, answered something
            unusable, or answered about another user.
        """
        return self.answer(token, expires_at, claims).groups

    def answer(
        self,
        token: str,
        expires_at: float,
        claims: Mapping[str, Any],
        *,
        max_age: float | None = None,
    ) -> IdentityAnswer:
        """The whole answer about the identity behind a *verified* ``token``: its
        groups, and the document they came in (for the profile).

        One cache entry per token serves both. ``max_age``: an answer had longer
        ago than this many seconds (or said to be had as far in the future: another
        host's clock, or a bad entry) is asked for again, and replaces the entry.

        :raises AccessUnavailable: as :meth:`groups`.
        """
        cache_key = "identity:" + hashlib.sha256(token.encode()).hexdigest()

        def read() -> IdentityAnswer | None:
            cached = self._cache.get(cache_key)
            if isinstance(cached, dict):
                document, fetched_at = cached.get("document"), cached.get("fetched_at")
                if (
                    isinstance(document, dict)
                    and isinstance(fetched_at, float)
                    and (max_age is None or -max_age <= self._clock() - fetched_at <= max_age)
                ):
                    try:
                        return IdentityAnswer(
                            parse_groups(document.get("groups", [])), document, fetched_at
                        )
                    except MalformedGroups:
                        pass  # written by someone else; ask the endpoint instead
            return None

        def remember(answer: IdentityAnswer) -> None:
            lifetime = int(expires_at - self._clock())
            if lifetime > 0:
                entry = {"document": answer.document, "fetched_at": answer.fetched_at}
                self._cache.set(cache_key, entry, timeout=lifetime)

        def fetch() -> IdentityAnswer:
            answer = self._fetch_unless_backing_off(token, claims, remember)
            remember(answer)
            return answer

        # A caller asking for a recent answer does not take one an older flight read.
        flight = cache_key if max_age is None else f"{cache_key}:within:{max_age:g}"
        return self._flights.run(flight, read, fetch, _unavailable)

    def _fetch_unless_backing_off(
        self,
        token: str,
        claims: Mapping[str, Any],
        remember: Callable[[IdentityAnswer], None],
    ) -> IdentityAnswer:
        """:meth:`_fetch`, or a refusal at once while the endpoint is backed off.

        When the back-off is over, this look-up is refused too, but its token
        probes the endpoint in the background; ``remember`` keeps the answer.

        :raises AccessUnavailable: backing off, or the endpoint failed.
        """
        admitted = self._back_off.admit()
        if admitted is None:
            self._background(lambda: self._probe(token, claims, remember))
        if admitted is not True:
            raise refusal(Reason.IDENTITY_UNAVAILABLE)
        return self._fetch_and_report(token, claims, probe=False)

    def _probe(
        self,
        token: str,
        claims: Mapping[str, Any],
        remember: Callable[[IdentityAnswer], None],
    ) -> None:
        """Ask the backed-off endpoint again; keep the answer for the token's next request."""
        try:
            answer = self._fetch_and_report(token, claims, probe=True)
        except AccessUnavailable:
            return  # logged by _fetch, and the back-off grows
        remember(answer)

    def _fetch_and_report(
        self, token: str, claims: Mapping[str, Any], *, probe: bool
    ) -> IdentityAnswer:
        """:meth:`_fetch`, its outcome told to the back-off.

        :raises AccessUnavailable: the endpoint failed or answered something unusable.
        """
        endpoint_down = False
        try:
            return self._fetch(token, claims)
        except AccessUnavailable as exc:
            # Down, slow or erring, as opposed to an answer this identity cannot use.
            endpoint_down = isinstance(exc.__cause__, FetchError)
            raise
        finally:
            if endpoint_down:
                self._back_off.failed(probe=probe)
            else:
                self._back_off.succeeded()

    def _fetch(self, token: str, claims: Mapping[str, Any]) -> IdentityAnswer:
        """Ask the endpoint.

        :raises AccessUnavailable: it failed, answered something unusable, or
            answered about another user than the one ``claims`` speak for (an
            answer for one identity, which says nothing of the endpoint's health).
        """
        try:
            document = get_json(
                self._session,
                self.url,
                timeout=self._timeout,
                headers={"Cookie": f"{TOKEN_COOKIE}={token}"},
            )
            if not isinstance(document, dict) or "err" in document:
                raise FetchError(f"{self.url} did not answer an identity")
            if not _is_about(document, claims):
                raise _ForeignAnswer(f"{self.url} answered about another user than the token's")
            return IdentityAnswer(
                parse_groups(document.get("groups", [])), document, float(self._clock())
            )
        except (FetchError, MalformedGroups, _ForeignAnswer) as exc:
            logger.error("Cloudflare Access identity could not be had: %s", exc)
            raise refusal(Reason.IDENTITY_UNAVAILABLE) from exc


class _ForeignAnswer(Exception):
    """A get-identity answer about another user than the token's."""


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


def _unavailable() -> IdentityAnswer:
    """What a look-up gets when the fetch it waited for came to nothing."""
    raise refusal(Reason.IDENTITY_UNAVAILABLE)
