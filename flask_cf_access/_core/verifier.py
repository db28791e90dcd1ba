"""Verifies one application token: signature first, then claims.

A token that passed is remembered (by its whole string, in a bounded map,
the oldest out) so that its next request skips the signature check, though
never the checks that time or a key rotation can change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry

from .claims import ClaimsPolicy, frozen_claims
from .errors import AccessError, AccessUnauthorized, Reason, refusal
from .json_input import parse_json
from .keys import KeySet, KeyStore
from .token_cache import TokenCache, VerifiedToken
from .tokens import check_token_shape, decode_segment, read_unverified_header

#: The one algorithm Cloudflare Access signs with, and the only one accepted.
ALGORITHMS = ("RS256",)

_REGISTRY = JWSRegistry(algorithms=list(ALGORITHMS))
_RS256 = _REGISTRY.get_alg("RS256")
#: joserfc's bound on a signature segment; its bound on a payload segment
#: (128,000 bytes) is far beyond any token's length (``MAX_TOKEN_LENGTH``).
_MAX_SIGNATURE_LENGTH = _REGISTRY.max_signature_length
# RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518, section 3.3), as joserfc signs it.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()

#: How many distinct header segments are remembered as having passed every
#: header check. Access signs every token of a key with the same header, so a
#: handful is plenty; when full, the memo starts again.
MAX_KNOWN_HEADERS = 64


@dataclass(frozen=True)
class ExplainedStep:
    """One step of a token's verification, as :meth:`TokenVerifier.explain` tells it."""

    #: What the step checks: ``token shape``, ``header``, ``key``,
    #: ``signature``, ``claims``, or the name of a claims check (``iss``,
    #: ``aud``, ``exp``...).
    name: str
    #: Why the step failed; ``None`` when it passed.
    reason: Reason | None = None

    @property
    def status(self) -> int | None:
        """The status the refusal is answered with (401, or 503 when no keys could
        be had: :attr:`Reason.status`); ``None`` when the step passed."""
        return None if self.reason is None else self.reason.status

    @property
    def passed(self) -> bool:
        """Whether the step passed."""
        return self.reason is None


@dataclass(frozen=True)
class Explanation:
    """What :meth:`TokenVerifier.explain` found: each step, the header and the claims.

    Holds no part of the token but its header and claims, as read.
    """

    #: Every step taken, in order.
    steps: tuple[ExplainedStep, ...]
    #: The token's header, *not verified*, if it could be read.
    header: Mapping[str, Any] | None
    #: The token's claims, if they could be read; verified only if
    #: :attr:`signature_verified`.
    claims: Mapping[str, Any] | None
    #: Whether the token's signature verified with the team's key.
    signature_verified: bool

    @property
    def failed(self) -> ExplainedStep | None:
        """The first step that failed, whose reason :meth:`TokenVerifier.verify` raises."""
        return next((step for step in self.steps if not step.passed), None)

    @property
    def reason(self) -> Reason | None:
        """Why :meth:`TokenVerifier.verify` refuses the token; ``None`` if it accepts it."""
        failed = self.failed
        return None if failed is None else failed.reason

    def step(self, name: str) -> ExplainedStep | None:
        """The step called ``name``, if it was taken."""
        return next((step for step in self.steps if step.name == name), None)


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
        signing_input, header_segment, payload_segment, signature_segment = check_token_shape(token)
        known_kid = self._known_headers.get(header_segment)
        if known_kid is None:
            kid, keyset = self._new_header(header_segment)
        else:
            kid, keyset = known_kid, self.keys.keyset_for(known_kid)
        key = keyset.keys[kid]
        payload = self._key_verifier(kid, key).payload(
            signing_input, payload_segment, signature_segment
        )
        if known_kid is None:  # remembered once a token with it has verified
            if len(self._known_headers) >= MAX_KNOWN_HEADERS:
                self._known_headers.clear()
            self._known_headers[header_segment] = kid
        claims = _parsed_claims(payload)
        window = self.policy.check(claims)
        entry = VerifiedToken(kid, frozen_claims(claims), keyset, window, key)
        self.cache.put(token, entry)
        return entry

    def explain(self, token: str) -> Explanation:
        """Every step :meth:`verify` takes with ``token``, each passed or failed with its reason.

        The steps, in order, are those of :meth:`verify_entry`, made by the
        same functions: ``token shape``, ``header`` (read, then ``alg``,
        ``crit`` and ``kid``), ``key`` (the ``kid`` published by the team),
        ``signature`` (the header's registered members, then RS256 with the
        team's key), ``claims`` (the JSON object), then each check of
        :class:`~flask_cf_access._claims.ClaimsPolicy`, by name, in its
        fixed order. Verification stops at the first step before the claims
        that fails; the claims checks are all made, so that every claim is
        judged. The first failed step's reason is the one :meth:`verify`
        raises (:attr:`Explanation.reason`).

        Nothing is remembered: neither the token nor its header, so a token
        verified before is explained from scratch. The :class:`Explanation`
        holds the header and the claims, as read, never the token itself;
        claims whose signature did not verify are there only to be shown
        (:attr:`Explanation.signature_verified` is false).
        """
        steps: list[ExplainedStep] = []
        header: dict[str, Any] | None = None
        claims: dict[str, Any] | None = None
        signature_verified = False
        try:
            step = "token shape"
            signing_input, header_segment, payload_segment, signature_segment = check_token_shape(
                token
            )
            steps.append(ExplainedStep(step))
            claims = _unverified_claims(payload_segment)  # to show, unless they verify
            step = "header"
            header = read_unverified_header(header_segment)
            kid = _kid_of(header)
            steps.append(ExplainedStep(step))
            step = "key"
            key = self.keys.keyset_for(kid).keys[kid]
            steps.append(ExplainedStep(step))
            step = "signature"
            _check_header_members(header_segment, header)
            payload = self._key_verifier(kid, key).payload(
                signing_input, payload_segment, signature_segment
            )
            signature_verified = True
            steps.append(ExplainedStep(step))
            step = "claims"
            claims = _parsed_claims(payload)
            steps.append(ExplainedStep(step))
        except AccessError as error:
            steps.append(ExplainedStep(step, error.reason))
            return Explanation(tuple(steps), header, claims, signature_verified=signature_verified)
        steps.extend(ExplainedStep(name, reason) for name, reason in self.policy.explain(claims))
        return Explanation(tuple(steps), header, claims, signature_verified=signature_verified)

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

    def _new_header(self, header_segment: bytes) -> tuple[str, KeySet]:
        """The ``kid`` of a header not seen verified before, and the key set publishing it.

        Every check of the header is made here, in this order: the checks
        that need no key (:func:`_kid_of`), the ``kid`` published
        (``UNKNOWN_KID``), then those joserfc's JWS deserialization makes
        (:func:`_check_header_members`).
        """
        header = read_unverified_header(header_segment)
        kid = _kid_of(header)
        keyset = self.keys.keyset_for(kid)
        _check_header_members(header_segment, header)
        return kid, keyset


def _kid_of(header: Mapping[str, Any]) -> str:
    """The ``kid`` of an unverified header, once the checks that need no key pass.

    :raises AccessUnauthorized: ``alg`` other than RS256 (``BAD_ALGORITHM``),
        a ``crit`` member (``CRITICAL_HEADER``), or no ``kid`` that is a
        non-empty string (``MISSING_KID``).
    """
    if header.get("alg") not in ALGORITHMS:
        raise refusal(Reason.BAD_ALGORITHM)
    if "crit" in header:
        raise refusal(Reason.CRITICAL_HEADER)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise refusal(Reason.MISSING_KID)
    return kid


def _check_header_members(header_segment: bytes, header: dict[str, Any]) -> None:
    """Refuse a header that joserfc's ``jws.deserialize_compact`` would refuse.

    At most ``JWSRegistry.max_header_length`` bytes long, no member outside
    joserfc's JWS header registry, each registered member (``jku``, ``jwk``,
    ``x5u``, ``x5c``, ``typ``, ``cty``, ``b64``...) of its registered type,
    and ``b64``, when present, true (unencoded payloads are refused).
    Nothing here chooses a key or an algorithm.

    :raises AccessUnauthorized: ``MALFORMED_TOKEN``.
    """
    try:
        _REGISTRY.validate_header_size(header_segment)
        _REGISTRY.check_header(header)
    except JoseError as exc:
        raise refusal(Reason.MALFORMED_TOKEN) from exc
    if header.get("b64", True) is not True:
        raise refusal(Reason.MALFORMED_TOKEN)


def _unverified_claims(payload_segment: bytes) -> dict[str, Any] | None:
    """The claims of a payload whose signature has *not* been checked, to show; else ``None``."""
    try:
        claims = parse_json(decode_segment(payload_segment))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _parsed_claims(payload: bytes) -> dict[str, Any]:
    """The claims of a verified payload.

    :raises AccessUnauthorized: ``MALFORMED_CLAIMS``, not the JSON of an object.
    """
    try:
        claims = parse_json(payload)
    except ValueError as exc:
        raise refusal(Reason.MALFORMED_CLAIMS) from exc
    if not isinstance(claims, dict):
        raise refusal(Reason.MALFORMED_CLAIMS)
    return claims


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
            raise refusal(Reason.MALFORMED_TOKEN) from exc
        self._public_key = key.get_op_key("verify")

    def payload(
        self, signing_input: bytes, payload_segment: bytes, signature_segment: bytes
    ) -> bytes:
        """The payload of a token whose header is known to pass, once its signature verifies.

        The rest of what ``jws.deserialize_compact`` checks, in its order:
        the signature's size, the payload's base64url, the signature.

        :raises AccessUnauthorized: a malformed payload, or a bad signature.
        """
        if len(signature_segment) > _MAX_SIGNATURE_LENGTH:
            raise refusal(Reason.MALFORMED_TOKEN)
        try:
            payload = decode_segment(payload_segment)
        except ValueError as exc:
            raise refusal(Reason.MALFORMED_TOKEN) from exc
        try:
            signature = decode_segment(signature_segment)
            self._public_key.verify(signature, signing_input, _PKCS1V15, _SHA256)
        except (InvalidSignature, ValueError) as exc:
            raise refusal(Reason.BAD_SIGNATURE) from exc
        return payload
