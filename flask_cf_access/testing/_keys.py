"""The stand-in team's RSA signing keys, and compact JWS tokens signed with them."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .._tokens import read_unverified_claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair of the stand-in team, with its Access-style ``kid``."""

    private_key: rsa.RSAPrivateKey
    kid: str
    certificate_pem: str

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh RSA-2048 key, its ``kid`` and a self-signed certificate."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudflareaccess.com")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=60))
            .sign(private_key, hashes.SHA256())
        )
        return cls(
            private_key=private_key,
            kid=hashlib.sha256(public_der).hexdigest(),
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        )

    def jwk(self) -> dict[str, str]:
        """The public key as Cloudflare publishes it in ``keys``."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kid": self.kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "e": _b64url_uint(numbers.e),
            "n": _b64url_uint(numbers.n),
        }

    def sign(self, signing_input: bytes) -> bytes:
        """An RS256 signature of ``signing_input``."""
        return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def encode_token(header: Mapping[str, Any], claims: Mapping[str, Any], key: SigningKey) -> str:
    """A compact JWS of ``claims`` with exactly ``header``, signed RS256 by ``key``."""
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode()))}"


def decode_unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a token, read *without* checking its signature. For the stand-in only.

    :raises ValueError: not a compact JWS whose payload is a JSON object.
    """
    return read_unverified_claims(token)
