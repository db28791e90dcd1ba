"""Checks on the claims of a token whose signature has been verified."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from joserfc.errors import ClaimError, ExpiredTokenError, InvalidClaimError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry

from .errors import AccessUnauthorized, Reason
from .settings import AccessSettings

_STRING_CLAIMS = ("email", "sub", "common_name", "identity_nonce", "country", "type")
_CLAIM_REASONS = {
    "nbf": Reason.NOT_YET_VALID,
    "iat": Reason.ISSUED_IN_FUTURE,
    "iss": Reason.INVALID_ISSUER,
    "aud": Reason.INVALID_AUDIENCE,
    "exp": Reason.MALFORMED_CLAIMS,
}


class ClaimsPolicy:
    """What an application token of this team must say to be accepted."""

    def __init__(self, settings: AccessSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._registry = JWTClaimsRegistry(
            now=lambda: int(clock()),
            leeway=settings.leeway,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "values": list(settings.audiences)},
            exp={"essential": True},
        )

    def check(self, claims: Mapping[str, Any]) -> None:
        """Accept the claims or say why not.

        ``iss`` must be the team, ``aud`` must hold a configured tag, ``exp`` is
        required, ``exp``/``nbf``/``iat`` are checked with the leeway, ``type``
        (when present) must be ``app``, and an optional maximum age is applied.

        :raises AccessUnauthorized: with the reason of the first failed check.
        """
        for name in _STRING_CLAIMS:
            if name in claims and not isinstance(claims[name], str):
                raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
        try:
            self._registry.validate(dict(claims))
        except ExpiredTokenError as exc:
            raise AccessUnauthorized(Reason.EXPIRED) from exc
        except MissingClaimError as exc:
            raise AccessUnauthorized(Reason.MISSING_CLAIM) from exc
        except InvalidClaimError as exc:
            reason = _CLAIM_REASONS.get(exc.claim, Reason.MALFORMED_CLAIMS)
            raise AccessUnauthorized(reason) from exc
        except ClaimError as exc:
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS) from exc
        if claims.get("type", "app") != "app":
            raise AccessUnauthorized(Reason.NOT_AN_APP_TOKEN)
        self.check_age(claims)

    def check_age(self, claims: Mapping[str, Any]) -> None:
        """Refuse a token issued longer ago than ``max_token_age`` allows.

        :raises AccessUnauthorized: too old, or no ``iat`` to tell.
        """
        max_age = self._settings.max_token_age
        if max_age is None:
            return
        issued_at = claims.get("iat")
        if isinstance(issued_at, bool) or not isinstance(issued_at, (int, float)):
            raise AccessUnauthorized(Reason.MISSING_CLAIM)
        if self._clock() - issued_at > max_age + self._settings.leeway:
            raise AccessUnauthorized(Reason.TOKEN_TOO_OLD)
