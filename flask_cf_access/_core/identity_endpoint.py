"""Asks the team's ``get-identity`` endpoint about the user of a token: groups and profile."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import requests

from .errors import AccessUnavailable, Reason, refusal
from .fetch import FetchError, get_json
from .groups import Group, MalformedGroups, parse_groups
from .shared_cache import SharedCache
from .single_flight import Background, SingleFlight, run_in_thread
from .tokens import TOKEN_COOKIE

logger = logging.getLogger("flask_cf_access")

#: Seconds new identity look-ups are refused after get-identity first fails.
FIRST_BACK_OFF = 1.0
#: The longest back-off; each failed probe doubles it up to this. Short, so
#: that look-ups resume within seconds of the endpoint healing: a probe is one
#: call in the background per process, whatever the traffic.
LONGEST_BACK_OFF = 4.0
#: Seconds a get-identity refusal of one token (:attr:`Reason.IDENTITY_REFUSED`)
#: is remembered, so that a revoked session's requests do not each make a call.
REFUSAL_MEMORY = 60
#: Answers about the endpoint rather than the identity: a timeout, rate limiting.
_ENDPOINT_STATUSES = frozenset({408, 429})
#: How many identities this process remembers having asked get-identity about
#: itself (:class:`_SeenHere`); the oldest are forgotten first.
SEEN_HERE_LIMIT = 10_000


class BackOff:
    """Keeps a failing endpoint from holding a worker per request.

    After a failure, or a call outlasting its callers' budget, :meth:`admit`
    says no for :data:`FIRST_BACK_OFF` seconds; then one caller (the probe)
    is let through. A failed probe doubles the back-off, up to
    :data:`LONGEST_BACK_OFF`; any success ends it. The change is logged once
    going down and once on recovery.
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
        """A call went out and failed, or is taking longer than its callers' budget."""
        with self._lock:
            if self._delay == 0:
                self._delay = FIRST_BACK_OFF
                logger.warning(
                    "%s is failing or slow; new look-ups are refused for %g s at a time "
                    "until it answers",
                    self._name,
                    self._delay,
                )
            elif probe:
                self._delay = min(LONGEST_BACK_OFF, self._delay * 2)
            else:
                return  # admitted before the back-off began: it says nothing new
            self._until = self._clock() + self._delay
            self._probing = False

    def slow(self) -> None:
        """A call outlasted the budget of a request waiting for it."""
        self.failed(probe=False)

    def succeeded(self) -> None:
        """A call went out and was answered."""
        if self._delay == 0:
            return
        with self._lock:
            if self._delay != 0:
                self._delay = 0.0
                self._probing = False
                logger.info("%s answers again", self._name)


class IdentityAnswer(NamedTuple):
    """What get-identity answered about one token's user."""

    #: The user's groups, parsed.
    groups: tuple[Group, ...]
    #: The whole answer, as parsed from JSON (the profile is read from it).
    document: dict[str, Any]
    #: When *this process* had it from Cloudflare, by its own clock; ``None``
    #: for an answer read from the shared cache, which another process may
    #: have stored at a time no clock of this host can tell.
    fetched_at: float | None


#: What a look-up comes to: get-identity's answer, or its refusal of the token.
Answer = IdentityAnswer | Reason


class _SeenHere:
    """When this process last had an answer about each identity from get-identity
    itself, by this process's clock: what a fresh answer is judged by.

    The shared entry holds no time (a time written by another host would be
    compared with this host's clock), so an answer read from it is never
    taken as fresh. Bounded: the least recently fetched identities are
    forgotten first, which only costs them a new fetch.
    """

    def __init__(self, limit: int = SEEN_HERE_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._times: OrderedDict[str, float] = OrderedDict()

    def note(self, key: str, when: float) -> None:
        with self._lock:
            self._times[key] = when
            self._times.move_to_end(key)
            while len(self._times) > self._limit:
                self._times.popitem(last=False)

    def get(self, key: str) -> float | None:
        return self._times.get(key)


class IdentityEndpoint:
    """Fetches an identity's answer (groups and profile), once per token,
    remembered until it expires.

    The answer is cached under a digest of the token (never the token itself),
    in the shared cache, so every worker sharing it asks at most once, even
    when several miss it at the same moment (:class:`~flask_cf_access._single_flight.SingleFlight`).
    A new identity costs two commands to the shared cache: the claim, made in
    the answer's own entry (one atomic "set if absent, with an expiry"), and
    the answer, which replaces it.

    A request waits ``budget`` seconds for the call, never the endpoint's
    ``timeout``: the call goes on in the background (``background``, a thread
    by default) and its answer serves the requests after it; the request gets
    503. At most ``slots`` calls are in flight per process; a look-up finding
    them all busy gets 503 at once.

    The endpoint's health decides the back-off (:class:`BackOff`), never one
    identity's answer: from the first call outlasting the budget, or failing,
    new look-ups are refused at once, so a slow endpoint does not hold a worker
    per request; identities already cached keep being served. Whether it
    answers again is asked in the background, with the token of a refused
    look-up, whose answer is then cached: no request waits for a probe.

    A 4xx answer (but 408 and 429) is about the token, not the endpoint: a
    revoked or ended Access session. That request gets 401
    (:attr:`Reason.IDENTITY_REFUSED`), remembered for :data:`REFUSAL_MEMORY`
    seconds, and nobody else's look-up is held back.

    A caller that needs an answer no older than ``max_age`` seconds (the
    profile's posture and login time, :meth:`answer`) takes the shared entry
    only if *this process* asked get-identity for it within ``max_age`` seconds,
    by its own clock (:class:`_SeenHere`); else it asks again, through the same
    single flight (in this process: another process's fetch time cannot be
    known without trusting its clock), the same slots and the same back-off,
    and the new answer replaces the shared entry. So the groups path costs
    nothing more, and each process asks at most once per ``max_age`` per
    identity for fresh rules.
    """

    def __init__(
        self,
        *,
        url: str,
        session: requests.Session,
        timeout: float,
        cache: SharedCache,
        clock: Callable[[], float],
        budget: float | None = None,
        slots: int | None = None,
        background: Background = run_in_thread,
    ) -> None:
        self.url = url
        self._session = session
        self._timeout = timeout
        self._cache = cache
        self._clock = clock
        self._background = background
        self._flights = SingleFlight(
            cache,
            wait_limit=timeout,
            budget=budget,
            slots=slots,
            spawn=self._background,
            claim_in_place=True,
        )
        self._back_off = BackOff(clock, name=f"Cloudflare Access identity endpoint {url}")
        self._seen_here = _SeenHere()

    def groups(self, token: str, expires_at: float, claims: Mapping[str, Any]) -> tuple[Group, ...]:
        """The groups of the identity behind a *verified* ``token``.

        :param claims: the token's verified claims: an answer about anyone
            else than their ``email`` (and ``sub``, as ``user_uuid``) is refused.
        :raises AccessUnauthorized: get-identity refused the token
            (:attr:`Reason.IDENTITY_REFUSED`).
        :raises AccessUnavailable: the endpoint failed, was slower than the
            budget, answered something unusable, or answered about another user.
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

        One cache entry per token serves both. ``max_age``: the answer must have
        been had by this process from get-identity no longer ago than this many
        seconds, by this process's clock; else it is asked for again, and
        replaces the entry.

        :raises AccessUnauthorized: as :meth:`groups`.
        :raises AccessUnavailable: as :meth:`groups`.
        """
        cache_key = "identity:" + hashlib.sha256(token.encode()).hexdigest()

        def read() -> Answer | None:
            cached = self._cache.get(cache_key)
            if isinstance(cached, dict) and isinstance(cached.get("document"), dict):
                document = cached["document"]
                try:
                    return IdentityAnswer(parse_groups(document.get("groups", [])), document, None)
                except MalformedGroups:
                    pass  # written by someone else; ask the endpoint instead
            elif cached == {"refused": Reason.IDENTITY_REFUSED.value}:
                return Reason.IDENTITY_REFUSED
            return None

        def read_fresh() -> Answer | None:
            assert max_age is not None
            seen = self._seen_here.get(cache_key)
            if seen is None or not 0 <= self._clock() - seen <= max_age:
                return None
            found = read()
            if isinstance(found, IdentityAnswer):
                return found._replace(fetched_at=seen)
            return found

        def remember(answer: Answer) -> None:
            lifetime = int(expires_at - self._clock())
            if isinstance(answer, Reason):
                value: object = {"refused": answer.value}
                lifetime = min(lifetime, REFUSAL_MEMORY)
            else:
                value = {"document": answer.document}
            if lifetime > 0:
                self._cache.set(cache_key, value, timeout=lifetime)
            else:
                self._cache.delete(cache_key)  # the claim, which no answer replaces

        def fetch() -> Answer:
            admitted = self._back_off.admit()  # again: it may have begun since
            if admitted is False:
                raise refusal(Reason.IDENTITY_UNAVAILABLE)
            return self._fetch_and_report(token, claims, cache_key, probe=admitted is None)

        answer: Answer | None
        if max_age is not None:
            answer = read_fresh()
            if answer is None:
                shared = read()
                if isinstance(shared, Reason):  # a refusal of the token stands everywhere
                    answer = shared
            if isinstance(answer, Reason):
                raise refusal(answer)
            if answer is not None:
                return answer
        admitted = self._back_off.admit()
        if admitted is True:
            if max_age is None:
                answer = self._flights.run(
                    cache_key, read, fetch, _unavailable, late=self._back_off.slow, store=remember
                )
            else:
                # Too old for this caller, or never had here: ask again, one
                # fetch in this process, whatever the shared entry holds.
                answer = self._flights.run(
                    cache_key + ":fresh",
                    read_fresh,
                    fetch,
                    _unavailable,
                    late=self._back_off.slow,
                    store=remember,
                    shared=False,
                )
        else:
            # Backed off: no call, no claim. An answer another worker stored
            # is served (to a fresh caller only if had here recently); else
            # 503, and this token may probe in the background.
            if admitted is None:
                self._background(lambda: self._probe(token, claims, remember, cache_key))
            found = read() if max_age is None else read_fresh()
            if found is None:
                raise refusal(Reason.IDENTITY_UNAVAILABLE)
            answer = found
        if isinstance(answer, Reason):
            raise refusal(answer)
        return answer

    def _probe(
        self,
        token: str,
        claims: Mapping[str, Any],
        remember: Callable[[Answer], None],
        cache_key: str,
    ) -> None:
        """Ask the backed-off endpoint again; keep the answer for the token's next request."""
        try:
            answer = self._fetch_and_report(token, claims, cache_key, probe=True)
        except AccessUnavailable:
            return  # logged by _fetch, and the back-off grows
        remember(answer)

    def _fetch_and_report(
        self, token: str, claims: Mapping[str, Any], cache_key: str, *, probe: bool
    ) -> Answer:
        """:meth:`_fetch`, its outcome told to the back-off, and an answer's time
        noted as this process's own (what fresh callers are judged by).

        :raises AccessUnavailable: the endpoint failed or answered something unusable.
        """
        endpoint_down = False
        try:
            answer = self._fetch(token, claims)
            if isinstance(answer, IdentityAnswer) and answer.fetched_at is not None:
                self._seen_here.note(cache_key, answer.fetched_at)
            return answer
        except AccessUnavailable as exc:
            # Down, slow or erring, as opposed to an answer this identity cannot use.
            endpoint_down = isinstance(exc.__cause__, FetchError)
            raise
        finally:
            if endpoint_down:
                self._back_off.failed(probe=probe)
            else:
                self._back_off.succeeded()

    def _fetch(self, token: str, claims: Mapping[str, Any]) -> Answer:
        """Ask the endpoint.

        :returns: the answer, or :attr:`Reason.IDENTITY_REFUSED` for a 4xx
            answer about the token (its session revoked or ended).
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
        except FetchError as exc:
            status = exc.status
            if status is not None and 400 <= status < 500 and status not in _ENDPOINT_STATUSES:
                logger.warning(
                    "Cloudflare Access get-identity refused a token (HTTP %d): "
                    "its session was revoked or has ended",
                    status,
                )
                return Reason.IDENTITY_REFUSED
            logger.error("Cloudflare Access identity could not be had: %s", exc)
            raise refusal(Reason.IDENTITY_UNAVAILABLE) from exc
        except (MalformedGroups, _ForeignAnswer) as exc:
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


def _unavailable() -> Answer:
    """What a look-up gets when the fetch it waited for came to nothing."""
    raise refusal(Reason.IDENTITY_UNAVAILABLE)
