"""Checks on the claims of a token whose signature has been verified."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from ._errors import AccessUnauthorized, Reason
from ._settings import AccessSettings

_STRING_CLAIMS = ("email", "sub", "common_name", "identity_nonce", "country", "type")
#: Claims that must be present (and not null), as RFC 7519 registries call "essential".
_ESSENTIAL_CLAIMS = ("aud", "exp", "iss")
#: Claims whose verdict changes as time passes.
_TIME_CLAIMS = frozenset({"exp", "nbf", "iat"})
#: NumericDates from 1970 up to the end of year 9999 are times; anything
#: outside (``exp=10**400``, a negative ``iat``) is refused as malformed
#: rather than reach arithmetic that would overflow a float or a datetime.
MAX_NUMERIC_DATE = 253_402_300_800  # 10000-01-01T00:00:00Z


def _is_numeric_date(value: object) -> TypeGuard[int | float]:
    """An RFC 7519 NumericDate: an int, or a finite float, but not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _check_range(value: float) -> None:
    """Refuse a NumericDate before 1970 or after year 9999.

    :raises AccessUnauthorized: ``MALFORMED_CLAIMS``.
    """
    if not 0 <= value < MAX_NUMERIC_DATE:
        raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)


class ClaimsPolicy:
    """What an application token of this team must say to be accepted.

    The checks are those of joserfc's ``JWTClaimsRegistry`` for this policy
    (``iss`` and ``aud`` by value, ``exp`` essential, ``exp``/``nbf``/``iat``
    as NumericDates with the leeway, ``jti`` a string), written out so that
    they cost a few attribute look-ups rather than a registry walk; claims are
    looked at in the token's order, so the first failing one names the reason,
    as with the registry.
    """

    def __init__(self, settings: AccessSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        #: The time source every check reads.
        self.clock = clock
        self._issuer = settings.issuer
        self._audiences = frozenset(settings.audiences)
        self._leeway = settings.leeway
        self._checks: dict[str, Callable[[object, int], None]] = {
            "iss": self._check_iss,
            "aud": self._check_aud,
            "exp": self._check_exp,
            "nbf": self._check_nbf,
            "iat": self._check_iat,
            "jti": _check_jti,
        }

    @property
    def settings(self) -> AccessSettings:
        """The settings this policy applies."""
        return self._settings

    def check(self, claims: Mapping[str, Any]) -> tuple[float, float]:
        """Accept the claims or say why not.

        ``iss`` must be the team, ``aud`` must hold a configured tag, ``exp`` is
        required, ``exp``/``nbf``/``iat`` are checked with the leeway, ``type``
        (when present) must be ``app``, and an optional maximum age is applied.

        :returns: the accepted claims' :meth:`window`.
        :raises AccessUnauthorized: with the reason of the first failed check.
        """
        now = int(self.clock())
        if not self._surely_passes(claims, now):
            self._check_in_order(claims, now)
        self.check_age(claims)
        return self.window(claims)

    def _surely_passes(self, claims: Mapping[str, Any], now: int) -> bool:
        """Whether the claims pass every check of :meth:`_check_in_order`, in one expression.

        ``True`` only for the usual shape of a good token (integer times in
        range, an ``aud`` of one tag); anything else is for
        :meth:`_check_in_order` to judge, which also finds the reason a bad
        token fails with.
        """
        get = claims.get
        audience = get("aud")
        expires = get("exp")
        not_before = get("nbf", now)
        issued_at = get("iat", now)
        latest = now + self._leeway
        return (
            get("iss") == self._issuer
            and (
                (
                    type(audience) is list
                    and len(audience) == 1
                    and type(audience[0]) is str
                    and audience[0] in self._audiences
                )
                or (type(audience) is str and audience in self._audiences)
            )
            and type(expires) is int
            and now - self._leeway < expires < MAX_NUMERIC_DATE
            and type(not_before) is int
            and 0 <= not_before <= latest
            and type(issued_at) is int
            and 0 <= issued_at <= latest
            and type(get("jti", "")) is str
            and get("type", "app") == "app"
            and type(get("email", "")) is str
            and type(get("sub", "")) is str
            and type(get("common_name", "")) is str
            and type(get("identity_nonce", "")) is str
            and type(get("country", "")) is str
        )

    def _check_in_order(self, claims: Mapping[str, Any], now: int) -> None:
        """Every check but the maximum age, each claim in the token's order.

        :raises AccessUnauthorized: with the reason of the first failed check.
        """
        for name in _STRING_CLAIMS:
            if not isinstance(claims.get(name, ""), str):
                raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
        for name in _ESSENTIAL_CLAIMS:
            if claims.get(name) is None:
                raise AccessUnauthorized(Reason.MISSING_CLAIM)
        checks = self._checks
        for name, value in claims.items():
            check = checks.get(name)
            if check is not None:
                check(value, now)
        if claims.get("type", "app") != "app":
            raise AccessUnauthorized(Reason.NOT_AN_APP_TOKEN)

    def check_times(self, claims: Mapping[str, Any]) -> None:
        """Check again what the passing of time can change in accepted claims.

        For claims that passed :meth:`check` before (a remembered token):
        ``exp``, ``nbf`` and ``iat`` against the clock now, with the leeway, and
        the maximum age.

        :raises AccessUnauthorized: expired, not yet valid, or too old by now.
        """
        now = int(self.clock())
        checks = self._checks
        for name, value in claims.items():  # in the token's order, as check() goes
            if name in _TIME_CLAIMS:
                checks[name](value, now)
        self.check_age(claims)

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
            start = max(start, issued_at - leeway + 1)
            max_age = self._settings.max_token_age
            if max_age is not None:
                end = min(end, issued_at + max_age + leeway)
        return float(start), float(end)

    def check_age(self, claims: Mapping[str, Any]) -> None:
        """Refuse a token issued longer ago than ``max_token_age`` allows.

        :raises AccessUnauthorized: too old, no ``iat`` to tell, or an ``iat``
            outside any real time.
        """
        max_age = self._settings.max_token_age
        if max_age is None:
            return
        issued_at = claims.get("iat")
        if isinstance(issued_at, bool) or not isinstance(issued_at, (int, float)):
            raise AccessUnauthorized(Reason.MISSING_CLAIM)
        _check_range(issued_at)
        if self.clock() - issued_at > max_age + self._settings.leeway:
            raise AccessUnauthorized(Reason.TOKEN_TOO_OLD)

    def _check_iss(self, value: object, now: int) -> None:
        if value != self._issuer:
            raise AccessUnauthorized(Reason.INVALID_ISSUER)

    def _check_aud(self, value: object, now: int) -> None:
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
            raise AccessUnauthorized(Reason.INVALID_AUDIENCE)

    def _check_exp(self, value: object, now: int) -> None:
        if not _is_numeric_date(value):
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
        _check_range(value)
        if value <= now - self._leeway:
            raise AccessUnauthorized(Reason.EXPIRED)

    def _check_nbf(self, value: object, now: int) -> None:
        if not _is_numeric_date(value):
            raise AccessUnauthorized(Reason.NOT_YET_VALID)
        _check_range(value)
        if value > now + self._leeway:
            raise AccessUnauthorized(Reason.NOT_YET_VALID)

    def _check_iat(self, value: object, now: int) -> None:
        if not _is_numeric_date(value):
            raise AccessUnauthorized(Reason.ISSUED_IN_FUTURE)
        _check_range(value)
        if value > now + self._leeway:
            raise AccessUnauthorized(Reason.ISSUED_IN_FUTURE)


def _check_jti(value: object, now: int) -> None:
    if not isinstance(value, str):
        raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
