"""Verifies one application token: signature first, then claims."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jws import JWSRegistry

from .claims import ClaimsPolicy
from .errors import AccessUnauthorized, Reason
from .keys import KeyStore
from .tokens import check_token_shape, read_unverified_header

#: The one algorithm Cloudflare Access signs with, and the only one accepted.
ALGORITHMS = ("RS256",)

_REGISTRY = JWSRegistry(algorithms=list(ALGORITHMS))


class TokenVerifier:
    """Turns a token string into verified claims, or refuses it."""

    def __init__(self, keys: KeyStore, policy: ClaimsPolicy) -> None:
        self.keys = keys
        self.policy = policy

    def verify(self, token: str) -> Mapping[str, Any]:
        """The verified claims of ``token``, as a read-only mapping.

        The key is the team's key named by the header's ``kid``; no other
        header member (``alg``, ``jku``, ``x5u``, ``jwk``, ``x5c``) chooses a
        key or an algorithm, and a ``crit`` header is refused.

        :raises AccessUnauthorized: the token does not verify.
        :raises AccessUnavailable: no keys could be had to verify it with.
        """
        check_token_shape(token)
        header = read_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise AccessUnauthorized(Reason.BAD_ALGORITHM)
        if "crit" in header:
            raise AccessUnauthorized(Reason.CRITICAL_HEADER)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AccessUnauthorized(Reason.MISSING_KID)
        key = self.keys.key_for(kid)
        try:
            signed = jws.deserialize_compact(token, key, algorithms=ALGORITHMS, registry=_REGISTRY)
        except BadSignatureError as exc:
            raise AccessUnauthorized(Reason.BAD_SIGNATURE) from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise AccessUnauthorized(Reason.MALFORMED_TOKEN) from exc
        try:
            claims = json.loads(signed.payload or b"")
        except ValueError as exc:
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS) from exc
        if not isinstance(claims, dict):
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
        self.policy.check(claims)
        return MappingProxyType(claims)
