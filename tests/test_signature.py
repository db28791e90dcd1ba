"""The signature: RS256 only, the key chosen by kid from the team's set only."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from functools import partial
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jws import JWSRegistry

from flask_cf_access import AccessSettings, AccessUnauthorized, Reason
from flask_cf_access._core.assembly import build_checker
from flask_cf_access._core.json_input import parse_json
from flask_cf_access._core.tokens import MAX_TOKEN_LENGTH, check_token_shape, read_unverified_header
from flask_cf_access._core.verifier import TokenVerifier
from flask_cf_access.testing import AccessIssuer, SigningKey, encode_token, run_inline

from .support import FrozenClock, bearer, outcome, reason_of


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return ".".join(b64(json.dumps(part).encode()) for part in (header, claims))


def good_claims(issuer: AccessIssuer) -> dict[str, Any]:
    now = int(issuer.clock())
    return {
        "aud": [issuer.audience],
        "email": "ada@example.com",
        "sub": "a",
        "iss": issuer.issuer,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "type": "app",
    }


def test_valid_token_passes(app: Flask, issuer: AccessIssuer) -> None:
    """A token signed by the team's key with good claims reaches the view."""
    response = app.test_client().get("/", headers=bearer(issuer.user_token("ada@example.com")))
    assert response.status_code == 200
    assert response.json == {"email": "ada@example.com", "name": "ada@example.com"}


def test_alg_none_refused(app: Flask, issuer: AccessIssuer) -> None:
    """An unsigned token (alg none) is refused, with or without a signature segment."""
    unsigned = segments({"alg": "none", "kid": issuer.signing_key.kid}, good_claims(issuer))
    # An empty signature segment is malformed before its algorithm is looked at.
    assert outcome(app, unsigned + ".") == (401, Reason.MALFORMED_TOKEN)
    assert outcome(app, unsigned + "." + b64(b"x")) == (401, Reason.BAD_ALGORITHM)


def test_hs256_with_public_key_as_secret_refused(app: Flask, issuer: AccessIssuer) -> None:
    """The classic confusion attack: HS256 keyed with the team's public key."""
    public_pem = issuer.signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, json.dumps(issuer.signing_key.jwk()).encode()):
        signing_input = segments(
            {"alg": "HS256", "kid": issuer.signing_key.kid}, good_claims(issuer)
        )
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert outcome(app, f"{signing_input}.{b64(signature)}") == (401, Reason.BAD_ALGORITHM)


@pytest.mark.parametrize(
    ("alg", "pad", "digest"),
    [
        ("RS512", padding.PKCS1v15(), hashes.SHA512()),
        ("PS256", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()),
    ],
)
def test_other_rsa_algorithms_refused(
    app: Flask,
    issuer: AccessIssuer,
    alg: str,
    pad: padding.AsymmetricPadding,
    digest: hashes.HashAlgorithm,
) -> None:
    """A token validly signed by the team's own key, but not with RS256, is refused."""
    signing_input = segments({"alg": alg, "kid": issuer.signing_key.kid}, good_claims(issuer))
    signature = issuer.signing_key.private_key.sign(signing_input.encode(), pad, digest)
    assert outcome(app, f"{signing_input}.{b64(signature)}") == (401, Reason.BAD_ALGORITHM)


def test_es256_refused(app: Flask, issuer: AccessIssuer) -> None:
    """An ES256 token is refused, whatever key it names."""
    key = ec.generate_private_key(ec.SECP256R1())
    signing_input = segments({"alg": "ES256", "kid": issuer.signing_key.kid}, good_claims(issuer))
    signature = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    assert outcome(app, f"{signing_input}.{b64(signature)}") == (401, Reason.BAD_ALGORITHM)


def test_rs256_header_with_other_signature_refused(app: Flask, issuer: AccessIssuer) -> None:
    """Claiming RS256 while signing with something else is a bad signature."""
    signing_input = segments({"alg": "RS256", "kid": issuer.signing_key.kid}, good_claims(issuer))
    signature = hmac.new(b"secret", signing_input.encode(), hashlib.sha256).digest()
    assert outcome(app, f"{signing_input}.{b64(signature)}") == (401, Reason.BAD_SIGNATURE)


def test_key_outside_the_team_refused(app: Flask, issuer: AccessIssuer) -> None:
    """A token signed by a stranger's key with the team's kid is refused."""
    stranger = SigningKey.generate()
    token = encode_token(
        {"alg": "RS256", "kid": issuer.signing_key.kid}, good_claims(issuer), stranger
    )
    assert outcome(app, token) == (401, Reason.BAD_SIGNATURE)


def test_embedded_and_remote_keys_ignored(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """jwk, jku, x5u and x5c in the header never choose a key, nor get fetched."""
    attacker = SigningKey.generate()
    header = {
        "alg": "RS256",
        "kid": attacker.kid,
        "jwk": attacker.jwk(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": [attacker.certificate_pem.splitlines()[1]],
    }
    assert outcome(app, encode_token(header, good_claims(issuer), attacker)) == (
        401,
        Reason.UNKNOWN_KID,
    )
    fetched = {call.request.url for call in mocked_team.calls}
    assert fetched <= {issuer.certs_url}


def test_remote_key_headers_beside_a_good_kid_do_not_matter(
    app: Flask, issuer: AccessIssuer
) -> None:
    """A genuine token whose header also names a jku still verifies by kid alone."""
    header = {"alg": "RS256", "kid": issuer.signing_key.kid, "jku": "https://attacker.example/"}
    assert outcome(app, encode_token(header, good_claims(issuer), issuer.signing_key)) == (
        200,
        None,
    )


def test_crit_header_refused(app: Flask, issuer: AccessIssuer) -> None:
    """A crit header asks for processing we do not do: refused."""
    header = {"alg": "RS256", "kid": issuer.signing_key.kid, "crit": ["exp"], "exp": 1}
    assert outcome(app, encode_token(header, good_claims(issuer), issuer.signing_key)) == (
        401,
        Reason.CRITICAL_HEADER,
    )


@pytest.mark.parametrize("kid", [None, "", 7, ["a"]])
def test_missing_or_odd_kid_refused(app: Flask, issuer: AccessIssuer, kid: object) -> None:
    """Without a string kid there is no key to choose: refused, not keys[0]."""
    header: dict[str, Any] = {"alg": "RS256"}
    if kid is not None:
        header["kid"] = kid
    assert outcome(app, encode_token(header, good_claims(issuer), issuer.signing_key)) == (
        401,
        Reason.MISSING_KID,
    )


def test_tampered_claims_refused(app: Flask, issuer: AccessIssuer) -> None:
    """Changing the claims of a signed token breaks its signature."""
    head, _, signature = issuer.user_token("ada@example.com").split(".")
    forged = b64(json.dumps({**good_claims(issuer), "email": "root@example.com"}).encode())
    assert outcome(app, f"{head}.{forged}.{signature}") == (401, Reason.BAD_SIGNATURE)


def test_no_typ_header_needed(app: Flask, issuer: AccessIssuer) -> None:
    """Real tokens carry no typ: it is not required."""
    header = {"alg": "RS256", "kid": issuer.signing_key.kid}
    assert outcome(app, encode_token(header, good_claims(issuer), issuer.signing_key)) == (
        200,
        None,
    )


# -- the one RS256 path against joserfc's own, as an independent oracle -----------


@functools.cache
def shared_team() -> tuple[AccessIssuer, SigningKey]:
    """One stand-in team, and a stranger's key (keys cost tens of milliseconds)."""
    return AccessIssuer(clock=FrozenClock()), SigningKey.generate()


def fresh_verifier(issuer: AccessIssuer) -> TokenVerifier:
    """A cold verifier trusting ``issuer``: nothing remembered yet."""
    settings = AccessSettings.from_mapping(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    return build_checker(
        settings, session=issuer.session(), clock=issuer.clock, background=run_inline
    ).verifier


def joserfc_reason(verifier: TokenVerifier, token: str) -> Reason | None:
    """What ``verifier`` should say of ``token``, judged by ``jws.deserialize_compact``.

    The checks before the key (shape, ``alg``, ``crit``, ``kid``) and the key look-up
    are the package's own policy; from the key on, joserfc decides: header size and
    registry, ``b64``, payload and signature spelling and sizes, the RS256 signature.
    """
    try:
        _, header_segment, _, _ = check_token_shape(token)
        header = read_unverified_header(header_segment)
        if header.get("alg") != "RS256":
            return Reason.BAD_ALGORITHM
        if "crit" in header:
            return Reason.CRITICAL_HEADER
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            return Reason.MISSING_KID
        key = verifier.keys.key_for(kid)
        payload = jws.deserialize_compact(token, key, algorithms=["RS256"]).payload
    except AccessUnauthorized as refusal:
        return refusal.reason
    except BadSignatureError:
        return Reason.BAD_SIGNATURE
    except (JoseError, ValueError, TypeError):
        return Reason.MALFORMED_TOKEN
    try:
        claims = parse_json(payload)
    except ValueError:
        return Reason.MALFORMED_CLAIMS
    if not isinstance(claims, dict):
        return Reason.MALFORMED_CLAIMS
    return reason_of(partial(verifier.policy.check, claims))


header_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["RS256", "https://attacker.example/keys", "JWT", ""]),
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=6), max_size=2),
    st.lists(st.integers(), min_size=1, max_size=2),
    st.dictionaries(st.sampled_from(["kty", "n"]), st.text(max_size=4), max_size=2),
)
#: The members of joserfc's JWS header registry, then some it does not know.
HEADER_NAMES = ["alg", "kid", "typ", "cty", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "b64"]
HEADER_NAMES += ["crit", "zip", "foo"]
header_members = st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=3)


@st.composite
def tokens_beside_a_genuine_one(draw: st.DrawFn) -> tuple[str, str]:
    """A genuine token, and a token with the same header broken (or not) elsewhere."""
    issuer, stranger = shared_team()
    header: dict[str, Any] = {"alg": "RS256", "kid": issuer.signing_key.kid}
    header |= draw(st.one_of(st.just({}), st.just({"typ": "JWT"}), header_members))
    if draw(st.integers(0, 4)) == 0:
        header["typ"] = "x" * draw(st.integers(300, 700))  # across joserfc's 512 bytes
    head = b64(json.dumps(header).encode())
    claims = good_claims(issuer) | draw(
        st.dictionaries(st.sampled_from(["exp", "aud", "iss"]), st.sampled_from([0, "x"]))
    )
    payload = json.dumps(claims).encode()
    if draw(st.integers(0, 4)) == 0:
        payload = draw(st.sampled_from([b"[]", b"{", b"\xff", b"{}"]))
    body = b64(payload)
    if len(body) % 4 in (2, 3) and draw(st.integers(0, 4)) == 0:
        body = body[:-1] + ("B" if body[-1] == "A" else "A")  # another spelling, maybe
    signing_input = f"{head}.{body}"
    signer = draw(st.sampled_from(["team", "team", "stranger", "bytes"]))
    if signer == "bytes":
        signature = b64(draw(st.binary(min_size=1, max_size=800)))
    else:
        key = issuer.signing_key if signer == "team" else stranger
        signature = b64(key.sign(signing_input.encode()))
    genuine = f"{head}.{b64(json.dumps(good_claims(issuer)).encode())}"
    genuine += "." + b64(issuer.signing_key.sign(genuine.encode()))
    return genuine, f"{signing_input}.{signature}"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(tokens=tokens_beside_a_genuine_one())
def test_verifier_agrees_with_joserfc(tokens: tuple[str, str]) -> None:
    """Every token gets the reason joserfc's deserialization gives, whether its header
    is new to the verifier or known from a genuine token that verified with it."""
    genuine, token = tokens
    issuer, _ = shared_team()
    cold = fresh_verifier(issuer)
    expected = joserfc_reason(cold, token)
    assert reason_of(partial(cold.verify, token)) == expected
    warm = fresh_verifier(issuer)
    assert reason_of(partial(warm.verify, genuine)) == joserfc_reason(warm, genuine)
    assert reason_of(partial(warm.verify, token)) == expected


def test_no_token_reaches_joserfcs_payload_limit() -> None:
    """The payload size joserfc refuses is beyond any token the shape check lets through."""
    assert JWSRegistry.max_payload_length > MAX_TOKEN_LENGTH
