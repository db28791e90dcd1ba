"""Checks on the claims of a token whose signature has been verified, and the
read-only form verified claims are kept in."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn, Protocol

from .errors import AccessUnauthorized, Reason, refusal

#: Claims that, when present, must be JSON strings.
_STRING_CLAIMS = ("email", "sub", "common_name", "identity_nonce", "country", "type", "jti")
#: Claims that must be present (and not null), as RFC 7519 registries call "essential".
_ESSENTIAL_CLAIMS = ("aud", "exp", "iss")
#: NumericDates from 1970 up to the end of year 9999 are times; anything
#: outside (``exp=10**400``, a negative ``iat``) is refused as malformed
#: rather than reach arithmetic that would overflow a float or a datetime.
MAX_NUMERIC_DATE = 253_402_300_800  # 10000-01-01T00:00:00Z
#: The checks whose verdict changes as time passes.
_TIME_CHECKS = frozenset({"exp", "nbf", "iat", "max age"})
#: What ``claims.get`` answers for a claim that is not there (``None`` is a null claim).
_ABSENT: Any = object()

#: One claims check: the claims, and the clock time (in whole seconds) to judge them at.
ClaimsCheck = Callable[[Mapping[str, Any], int], None]


class ClaimsSettings(Protocol):
    """What a :class:`ClaimsPolicy` and the verifier over it read of the settings:
    :class:`~flask_cf_access.AccessSettings` has it all. Named here rather than
    imported, so that this module (and the claims freezer, which the profile
    parser below the settings uses) stands below ``_settings.py``."""

    @property
    def issuer(self) -> str: ...
    @property
    def audience(self) -> tuple[str, ...]: ...
    @property
    def leeway(self) -> int: ...
    @property
    def max_token_age(self) -> int | None: ...
    @property
    def token_cache_size(self) -> int: ...


def _numeric_date(value: object, not_a_date: Reason) -> float:
    """``value`` as an RFC 7519 NumericDate of a real time (1970 to 9999).

    A NumericDate is an int or a finite float, as JSON gives them: never a
    bool (JSON's ``true`` is no date).

    :raises AccessUnauthorized: ``not_a_date`` when it is no number (a bool,
        a string, a NaN or an infinity), ``MALFORMED_CLAIMS`` when it is a
        number outside the years 1970 to 9999.
    """
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        if 0 <= value < MAX_NUMERIC_DATE:
            return value
        raise refusal(Reason.MALFORMED_CLAIMS)
    raise refusal(not_a_date)


class ClaimsPolicy:
    """What an application token of this team must say to be accepted.

    The checks are those of joserfc's ``JWTClaimsRegistry`` for this policy
    (``iss`` and ``aud`` by value, ``exp`` essential, ``exp``/``nbf``/``iat``
    as NumericDates with the leeway, ``jti`` a string), written out, and made
    in this fixed order, whatever order the token lists its claims in; the
    first that fails names the reason:

    1. ``claim types``: ``email``, ``sub``, ``common_name``,
       ``identity_nonce``, ``country``, ``type`` and ``jti``, when present,
       are strings (``MALFORMED_CLAIMS``);
    2. ``required claims``: ``aud``, ``exp`` and ``iss`` are present and not
       null (``MISSING_CLAIM``);
    3. ``iss``: the team's issuer (``INVALID_ISSUER``);
    4. ``aud``: a string, or an array of strings, holding one of the
       configured AUD tags (``INVALID_AUDIENCE``);
    5. ``exp``: a number (``MALFORMED_CLAIMS``), not past, with the leeway
       (``EXPIRED``);
    6. ``nbf``: when present, a number not ahead, with the leeway
       (``NOT_YET_VALID``);
    7. ``iat``: when present, a number not ahead, with the leeway
       (``ISSUED_IN_FUTURE``);
    8. ``type``: when present, ``app`` (``NOT_AN_APP_TOKEN``);
    9. ``max age``: only with ``CF_ACCESS_MAX_TOKEN_AGE``, ``iat`` is present
       (``MISSING_CLAIM``) and not longer ago than the maximum age, with the
       leeway (``TOKEN_TOO_OLD``).

    A time outside the years 1970 to 9999 is ``MALFORMED_CLAIMS``. ``exp``,
    ``nbf`` and ``iat`` are compared with the clock truncated to whole
    seconds (the ``now`` every check is given), the maximum age with the
    clock itself.
    """

    def __init__(self, settings: ClaimsSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        #: The time source every check reads.
        self.clock = clock
        self._issuer = settings.issuer
        self._audiences = frozenset(settings.audience)
        self._leeway = settings.leeway
        self._max_age = settings.max_token_age
        #: Every check, by name, in the documented order.
        self._checks: tuple[tuple[str, ClaimsCheck], ...] = (
            ("claim types", _check_types),
            ("required claims", _check_required),
            ("iss", self._check_iss),
            ("aud", self._check_aud),
            ("exp", self._check_exp),
            ("nbf", self._not_ahead("nbf", Reason.NOT_YET_VALID)),
            ("iat", self._not_ahead("iat", Reason.ISSUED_IN_FUTURE)),
            ("type", _check_type),
        )
        if self._max_age is not None:
            self._checks += (("max age", self._not_too_old(self._max_age)),)
        #: The same checks, without their names, as :meth:`check` makes them.
        self._check_calls = tuple(check for _, check in self._checks)
        #: Those whose verdict the passing of time can change, in the same order.
        self._time_checks = tuple(check for name, check in self._checks if name in _TIME_CHECKS)

    @property
    def settings(self) -> ClaimsSettings:
        """The settings this policy applies."""
        return self._settings

    def check(self, claims: Mapping[str, Any]) -> tuple[float, float]:
        """Accept the claims or say why not, by the checks in the order the class lists.

        :returns: the accepted claims' :meth:`window`.
        :raises AccessUnauthorized: with the reason of the first failed check.
        """
        now = int(self.clock())
        for check in self._check_calls:
            check(claims, now)
        return self.window(claims)

    def check_times(self, claims: Mapping[str, Any]) -> None:
        """Check again what the passing of time can change in accepted claims.

        For claims that passed :meth:`check` before (a remembered token): the
        very checks of ``exp``, ``nbf``, ``iat`` and the maximum age that
        :meth:`check` makes, in its order, against the clock now.

        :raises AccessUnauthorized: expired, not yet valid, or too old by now.
        """
        now = int(self.clock())
        for check in self._time_checks:
            check(claims, now)

    def explain(self, claims: Mapping[str, Any]) -> list[tuple[str, Reason | None]]:
        """Every check of :meth:`check`, in its order, each with the reason it failed for.

        Where :meth:`check` stops at the first failure, this goes on, so that
        every claim is judged; the first reason that is not ``None`` is the
        one :meth:`check` raises.

        :returns: ``(name, reason)`` per check, ``reason`` ``None`` when it passed.
        """
        now = int(self.clock())
        verdicts: list[tuple[str, Reason | None]] = []
        for name, check in self._checks:
            try:
                check(claims, now)
            except AccessUnauthorized as error:
                verdicts.append((name, error.reason))
            else:
                verdicts.append((name, None))
        return verdicts

    def window(self, claims: Mapping[str, Any]) -> tuple[float, float]:
        """A span of clock times in which accepted claims surely still pass :meth:`check_times`.

        Inside ``[start, end)`` the time checks cannot fail, so a remembered
        token needs only a comparison; outside it (near an edge, or past one)
        :meth:`check_times` must decide. ``nbf`` and ``iat`` are compared with
        the clock truncated to whole seconds, hence the extra second. For
        claims that passed :meth:`check`, whose times are all in range.
        """
        leeway = self._leeway
        start: float = -math.inf
        end: float = claims["exp"] + leeway
        not_before = claims.get("nbf")
        if not_before is not None:
            start = not_before - leeway + 1
        issued_at = claims.get("iat")
        if issued_at is not None:
            if issued_at - leeway + 1 > start:
                start = issued_at - leeway + 1
            if self._max_age is not None and issued_at + self._max_age + leeway < end:
                end = issued_at + self._max_age + leeway
        # As floats, exactly (times below 2**53): the clock's float compares
        # with a float in a few instructions, with an int in a few hundred.
        return float(start), float(end)

    def _check_iss(self, claims: Mapping[str, Any], now: int) -> None:
        if claims.get("iss") != self._issuer:
            raise refusal(Reason.INVALID_ISSUER)

    def _check_aud(self, claims: Mapping[str, Any], now: int) -> None:
        value = claims.get("aud")
        accepted = False
        if isinstance(value, str):
            accepted = value in self._audiences
        elif isinstance(value, (list, tuple)):  # a tuple once frozen
            for item in value:  # every item a string, any one of them ours
                if not isinstance(item, str):
                    accepted = False
                    break
                accepted = accepted or item in self._audiences
        if not accepted:
            raise refusal(Reason.INVALID_AUDIENCE)

    def _check_exp(self, claims: Mapping[str, Any], now: int) -> None:
        if _numeric_date(claims.get("exp"), Reason.MALFORMED_CLAIMS) <= now - self._leeway:
            raise refusal(Reason.EXPIRED)

    def _not_ahead(self, name: str, reason: Reason) -> ClaimsCheck:
        """The check of the time claim ``name``: if present, a number not ahead of now.

        Refused with ``reason`` either way: a time that is not a number
        cannot be shown to have come.
        """
        leeway = self._leeway

        def check(claims: Mapping[str, Any], now: int) -> None:
            value = claims.get(name, _ABSENT)
            if value is not _ABSENT and _numeric_date(value, reason) > now + leeway:
                raise refusal(reason)

        return check

    def _not_too_old(self, max_age: int) -> ClaimsCheck:
        """The check that a token was issued no longer ago than ``max_age`` seconds.

        Refused as ``MISSING_CLAIM`` without an ``iat`` to tell the age by;
        compared with the clock itself, not whole seconds.
        """
        limit = max_age + self._leeway
        clock = self.clock

        def check(claims: Mapping[str, Any], now: int) -> None:
            if clock() - _numeric_date(claims.get("iat"), Reason.MISSING_CLAIM) > limit:
                raise refusal(Reason.TOKEN_TOO_OLD)

        return check


def _check_types(claims: Mapping[str, Any], now: int) -> None:
    get = claims.get
    for name in _STRING_CLAIMS:
        if not isinstance(get(name, ""), str):
            raise refusal(Reason.MALFORMED_CLAIMS)


def _check_required(claims: Mapping[str, Any], now: int) -> None:
    get = claims.get
    for name in _ESSENTIAL_CLAIMS:
        if get(name) is None:
            raise refusal(Reason.MISSING_CLAIM)


def _check_type(claims: Mapping[str, Any], now: int) -> None:
    if claims.get("type", "app") != "app":
        raise refusal(Reason.NOT_AN_APP_TOKEN)


class FrozenObject(dict[str, Any]):
    """A JSON object of verified claims: a ``dict`` that refuses every change.

    A ``dict`` still, so that ``jsonify``, ``json.dumps`` and ``isinstance(value,
    dict)`` treat it as the parsed object; copies (``dict(value)``) are plain
    dicts. It guards against a view changing claims by mistake, not against
    code that means to (``dict.__setitem__(value, …)``).
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("verified claims are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __copy__(self) -> FrozenObject:
        return self

    def __deepcopy__(self, memo: object) -> FrozenObject:
        return self

    def __reduce__(self) -> tuple[type[FrozenObject], tuple[dict[str, Any]]]:
        return FrozenObject, (dict(self),)


#: The types JSON scalars are parsed into: a value of any other type is an
#: array or object (or something else entirely) and goes through :func:`frozen`.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def frozen(value: Any) -> Any:
    """``value`` read-only all the way down: objects as :class:`FrozenObject`, arrays as tuples.

    For values :func:`~flask_cf_access._core.json_input.parse_json` returned, so never deeper
    than :data:`~flask_cf_access._core.json_input.MAX_JSON_DEPTH`.
    """
    if isinstance(value, dict):
        return FrozenObject({name: frozen(item) for name, item in value.items()})
    if isinstance(value, list):
        # An array of scalars (``aud``, group names) is copied in one step,
        # not walked item by item.
        if _JSON_SCALARS.issuperset(map(type, value)):
            return tuple(value)
        return tuple([frozen(item) for item in value])
    return value


def frozen_claims(claims: dict[str, Any]) -> Mapping[str, Any]:
    """Verified claims as a read-only mapping whose values are :func:`frozen` too.

    ``claims`` is taken over: its arrays and objects are replaced in place,
    the scalars (most claims) left as they are.
    """
    # A set lookup per claim: most are JSON scalars, left as they are.
    for name, value in claims.items():
        if type(value) not in _JSON_SCALARS:
            claims[name] = frozen(value)  # a value replaced: the size is unchanged
    return MappingProxyType(claims)
