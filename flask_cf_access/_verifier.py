"""Verifies one application token: signature first, then claims.

A token that passed is remembered (by its whole string, in a bounded LRU) so
that its next request skips the signature check, though never the checks that
time or a key rotation can change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry

from ._claims import ClaimsPolicy
from ._errors import AccessUnauthorized, Reason
from ._json_input import frozen_claims, parse_json_counting_brackets
from ._keys import KeySet, KeyStore
from ._token_cache import TokenCache, VerifiedToken
from ._tokens import b64url_decode, check_token_shape, read_unverified_header

#: The one algorithm Cloudflare Access signs with, and the only one accepted.
ALGORITHMS = ("RS256",)

_REGISTRY = JWSRegistry(algorithms=list(ALGORITHMS))
_RS256 = _REGISTRY.get_alg("RS256")
# RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518, section 3.3), as joserfc signs it.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()

#: How many distinct header segments are remembered as having passed every
#: header check. Access signs every token of a key with the same header, so a
#: handful is plenty; when full, the memo starts again.
MAX_KNOWN_HEADERS = 64


class TokenVerifier:
    """Turns a token string into verified claims, or refuses it.

    Every repeat of a remembered token gets the same claims mapping, read-only
    all the way down (objects as read-only dicts, arrays as tuples), so that
    no view can change what a later request with the token is granted.

    :param cache_size: how many verified tokens to remember; by default the
        policy's ``CF_ACCESS_TOKEN_CACHE_SIZE``. ``0`` remembers none.
    """

    def __init__(
        self, keys: KeyStore, policy: ClaimsPolicy, *, cache_size: int | None = None
    ) -> None:
        self.keys = keys
        self.policy = policy
        #: The verified tokens remembered, by their whole string.
        self.cache = TokenCache(
            policy.settings.token_cache_size if cache_size is None else cache_size
        )
        # header segment -> kid, for headers of tokens whose signature verified
        self._known_headers: dict[bytes, str] = {}
        self._clock = policy.clock
        self._key_verifiers: dict[str, _KeyVerifier] = {}

    def verify(self, token: str) -> Mapping[str, Any]:
        """The verified claims of ``token``, as a read-only mapping.

        See :meth:`verify_entry`, which this returns the claims of.

        :raises AccessUnauthorized: the token does not verify.
        :raises AccessUnavailable: no keys could be had to verify it with.
        """
        return self.verify_entry(token).claims

    def verify_entry(self, token: str) -> VerifiedToken:
        """The verified ``token``: its claims, as a read-only mapping, and its memo.

        The key is the team's key named by the header's ``kid``; no other
        header member (``alg``, ``jku``, ``x5u``, ``jwk``, ``x5c``) chooses a
        key or an algorithm, and a ``crit`` header is refused.

        A token verified before skips the signature check, but its ``exp``,
        ``nbf``, ``iat`` and maximum age are checked again against the clock,
        and its ``kid`` must still name, in the team's published set, the key
        it verified with: a different key published under the same ``kid``
        means the token is verified again from scratch.

        :raises AccessUnauthorized: the token does not verify.
        :raises AccessUnavailable: no keys could be had to verify it with.
        """
        remembered = self.cache.get(token)
        if remembered is not None:
            # Still valid by one clock read and three comparisons, or else
            # checked again in full by _still_valid.
            now = self._clock()
            keyset = remembered.keyset
            start, end = remembered.window
            if (
                keyset is not None
                and keyset is self.keys.current
                and now < keyset.fresh_until
                and start <= now < end
            ):
                return remembered
            still_valid = self._still_valid(token, remembered)
            if still_valid is not None:
                return still_valid
        signing_input, _, signature_segment = check_token_shape(token).rpartition(b".")
        header_segment, _, payload_segment = signing_input.partition(b".")
        kid = self._known_headers.get(header_segment)
        if kid is None:
            kid, keyset, payload = self._verify_with_new_header(token)
            if len(self._known_headers) >= MAX_KNOWN_HEADERS:
                self._known_headers.clear()
            self._known_headers[header_segment] = kid
            key = keyset.keys[kid]
        else:
            keyset = self.keys.keyset_for(kid)
            key = keyset.keys[kid]
            verifier = self._key_verifier(kid, key)
            payload = verifier.payload(signing_input, payload_segment, signature_segment)
        try:
            claims, brackets = parse_json_counting_brackets(payload)
        except ValueError as exc:
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS) from exc
        if not isinstance(claims, dict):
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
        window = self.policy.check(claims)
        entry = VerifiedToken(kid, frozen_claims(claims, brackets), keyset, window, key=key)
        self.cache.put(token, entry)
        return entry

    def _key_verifier(self, kid: str, key: RSAKey) -> _KeyVerifier:
        """The prepared verifier of ``key``; prepared again when the key set was reloaded."""
        verifier = self._key_verifiers.get(kid)
        if verifier is None or verifier.key is not key:
            verifier = _KeyVerifier(key)
            if len(self._key_verifiers) >= MAX_KNOWN_HEADERS:
                self._key_verifiers.clear()
            self._key_verifiers[kid] = verifier
        return verifier

    def _still_valid(self, token: str, remembered: VerifiedToken) -> VerifiedToken | None:
        """A remembered token, if time and the key set still admit it, checked in full.

        ``None`` (and the token forgotten) when its ``kid`` now names other key
        material than the key it verified with: it must be verified again.
        """
        try:
            keyset = self.keys.keyset_for(remembered.kid)
            key = keyset.keys[remembered.kid]
            if key is not remembered.key:
                if not _same_public_key(key, remembered.key):
                    self.cache.discard(token)
                    return None
                remembered.key = key
            remembered.keyset = keyset
            start, end = remembered.window
            if not start <= self._clock() < end:
                self.policy.check_times(remembered.claims)
        except AccessUnauthorized:
            self.cache.discard(token)
            raise
        return remembered

    def _verify_with_new_header(self, token: str) -> tuple[str, KeySet, bytes]:
        """The ``kid``, its key set and the verified payload of a token with a new header.

        Every check of the header is made here, and joserfc deserializes the
        whole token, so a header is only remembered once a token carrying it
        has verified.
        """
        header = read_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise AccessUnauthorized(Reason.BAD_ALGORITHM)
        if "crit" in header:
            raise AccessUnauthorized(Reason.CRITICAL_HEADER)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AccessUnauthorized(Reason.MISSING_KID)
        keyset = self.keys.keyset_for(kid)
        try:
            signed = jws.deserialize_compact(
                token, keyset.keys[kid], algorithms=ALGORITHMS, registry=_REGISTRY
            )
        except BadSignatureError as exc:
            raise AccessUnauthorized(Reason.BAD_SIGNATURE) from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise AccessUnauthorized(Reason.MALFORMED_TOKEN) from exc
        return kid, keyset, signed.payload


def _same_public_key(key: RSAKey, other: RSAKey | None) -> bool:
    """Whether two imports of a published key hold the same RSA modulus and exponent."""
    if other is None:
        return False
    return key.public_key.public_numbers() == other.public_key.public_numbers()


class _KeyVerifier:
    """RS256 checks with one of the team's keys, prepared once for all its tokens.

    joserfc's ``RS256`` says once whether the key may verify RS256 signatures
    (its type, ``use`` and ``alg``) and hands over the key's public operation;
    each token then costs a signature check and no look-up.
    """

    __slots__ = ("_public_key", "key")

    def __init__(self, key: RSAKey) -> None:
        self.key = key
        try:
            _RS256.check_key(key)
        except JoseError as exc:
            raise AccessUnauthorized(Reason.MALFORMED_TOKEN) from exc
        self._public_key = key.get_op_key("verify")

    def payload(
        self, signing_input: bytes, payload_segment: bytes, signature_segment: bytes
    ) -> bytes:
        """The payload of a token whose header is known to pass, once its signature verifies.

        The rest of what ``jws.deserialize_compact`` checks, in its order,
        without parsing and checking the header again.

        :raises AccessUnauthorized: a malformed payload, or a bad signature.
        """
        try:
            _REGISTRY.validate_signature_size(signature_segment)
            _REGISTRY.validate_payload_size(payload_segment)
            payload = b64url_decode(payload_segment)
        except (JoseError, ValueError) as exc:
            raise AccessUnauthorized(Reason.MALFORMED_TOKEN) from exc
        try:
            signature = b64url_decode(signature_segment)
            self._public_key.verify(signature, signing_input, _PKCS1V15, _SHA256)
        except (InvalidSignature, ValueError) as exc:
            raise AccessUnauthorized(Reason.BAD_SIGNATURE) from exc
        return payload
