"""The signature: RS256 only, the key chosen by kid from the team's set only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from flask import Flask

from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer, SigningKey, encode_token

from .support import bearer, outcome


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
