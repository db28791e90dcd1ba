"""Test your protected views without Cloudflare: a local stand-in for an Access team.

:class:`AccessIssuer` behaves like a Cloudflare Access team. It holds RSA-2048
signing keys whose ``kid`` is the SHA-256 of the key's DER
SubjectPublicKeyInfo (as real Access key ids are), publishes them in
Cloudflare's certs shape, mints tokens with the claims you choose, rotates
its keys, and answers ``get-identity`` for the users it minted tokens for::

    issuer = AccessIssuer()
    app.config.update(issuer.settings())
    CloudflareAccess(app, session=issuer.session())
    token = issuer.user_token("ada@example.com", groups=["admins"])
    client.get("/", headers={"Cf-Access-Jwt-Assertion": token})
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

__all__ = ["AccessIssuer", "SigningKey"]

CERTS_PATH = "/cdn-cgi/access/certs"
IDENTITY_PATH = "/cdn-cgi/access/get-identity"


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
    """The claims of a token, read *without* checking anything. For the stand-in only."""
    segment = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(claims, dict):
        raise ValueError("the token's claims are not an object")
    return claims


@dataclass
class _User:
    email: str
    groups: list[dict[str, str]] = field(default_factory=list)


class AccessIssuer:
    """A local stand-in for one Cloudflare Access team and application.

    :param team_domain: the team's host name; URLs are ``https://<team_domain>/…``.
    :param audience: the application's AUD tag.
    :param clock: the time source for ``iat``, ``nbf`` and ``exp``.
    """

    def __init__(
        self,
        team_domain: str = "test-team.cloudflareaccess.com",
        audience: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        token_lifetime: int = 24 * 3600,
    ) -> None:
        self.team_domain = team_domain
        self.audience = audience or hashlib.sha256(team_domain.encode()).hexdigest()
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.signing_key = SigningKey.generate()
        self.previous_key: SigningKey | None = None
        self._users: dict[str, _User] = {}

    # -- the team --------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The ``iss`` of this team's tokens."""
        return f"https://{self.team_domain}"

    @property
    def certs_url(self) -> str:
        """Where this team publishes its keys."""
        return self.issuer + CERTS_PATH

    @property
    def identity_url(self) -> str:
        """Where this team answers ``get-identity``."""
        return self.issuer + IDENTITY_PATH

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``CF_ACCESS_*`` settings for an app that trusts this team."""
        return {
            "CF_ACCESS_TEAM_DOMAIN": self.team_domain,
            "CF_ACCESS_AUDIENCE": self.audience,
            **overrides,
        }

    def published_keys(self) -> list[SigningKey]:
        """The keys in the certs document: the current one, then the previous one."""
        return [self.signing_key] + ([self.previous_key] if self.previous_key else [])

    def certs(self) -> dict[str, Any]:
        """The certs document, in Cloudflare's exact shape."""
        keys = self.published_keys()
        certs = [{"kid": key.kid, "cert": key.certificate_pem} for key in keys]
        return {"keys": [key.jwk() for key in keys], "public_cert": certs[0], "public_certs": certs}

    def rotate(self) -> SigningKey:
        """Sign with a new key from now on, still publishing the previous one."""
        self.previous_key = self.signing_key
        self.signing_key = SigningKey.generate()
        return self.signing_key

    def drop_previous(self) -> None:
        """Stop publishing the previous key, as Access does after a rotation."""
        self.previous_key = None

    # -- tokens ----------------------------------------------------------

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
        lifetime: int | None = None,
        issued_at: float | None = None,
    ) -> str:
        """A token with the team's usual claims, overridden or extended by ``claims``.

        A claim given as ``None`` is left out. ``header`` replaces the usual
        ``{"alg": "RS256", "kid": …}`` entirely.
        """
        signer = key or self.signing_key
        now = int(self.clock() if issued_at is None else issued_at)
        payload: dict[str, Any] = {
            "aud": [self.audience],
            "email": "",
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "type": "app",
            "identity_nonce": secrets.token_urlsafe(12),
            "sub": "",
            "country": "XX",
        }
        payload.update(claims or {})
        payload = {name: value for name, value in payload.items() if value is not None}
        return encode_token(header or {"alg": "RS256", "kid": signer.kid}, payload, signer)

    def user_token(
        self,
        email: str,
        groups: Iterable[str] = (),
        *,
        groups_in_token: bool = False,
        **claims: Any,
    ) -> str:
        """A user's token. Its groups are served by ``get-identity``, or carried in
        the token (``groups_in_token=True``, as some identity providers do)."""
        group_objects = [
            {"id": self.group_id(name), "name": name, "email": f"{name}@groups.example"}
            for name in groups
        ]
        self._users[email] = _User(email, group_objects)
        base: dict[str, Any] = {
            "email": email,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, email)),
        }
        if groups_in_token:
            base["groups"] = [group["name"] for group in group_objects]
        base.update(claims)
        return self.mint(base)

    def service_token(self, client_id: str = "test-client.access", **claims: Any) -> str:
        """A service token's token: ``common_name`` set, ``sub`` empty, no e-mail."""
        return self.mint({"common_name": client_id, "sub": "", "email": None, **claims})

    def group_id(self, name: str) -> str:
        """The id this team gives the group called ``name``."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

    def identity_for(self, token: str) -> dict[str, Any] | None:
        """The ``get-identity`` answer for a token of a known user, else ``None``."""
        try:
            claims = decode_unverified_claims(token)
        except (ValueError, IndexError):
            return None
        user = self._users.get(str(claims.get("email", "")))
        if user is None:
            return None
        return {
            "email": user.email,
            "id": claims.get("sub", ""),
            "name": user.email.split("@")[0],
            "groups": user.groups,
            "idp": {"id": "test-idp", "type": "onetimepin"},
            "iat": claims.get("iat"),
        }

    # -- serving ---------------------------------------------------------

    def respond(self, path: str, cookie_header: str | None) -> tuple[int, Any]:
        """Status and JSON body the team would answer for ``path``."""
        if path == CERTS_PATH:
            return 200, self.certs()
        if path == IDENTITY_PATH:
            token = _cookie_value(cookie_header or "", "CF_Authorization")
            identity = self.identity_for(token) if token else None
            if identity is None:
                return 400, {"err": "no identity for this token"}
            return 200, identity
        return 404, {"err": "not found"}

    def session(self) -> requests.Session:
        """A ``requests.Session`` answered by this issuer in-process, with no HTTP."""
        session = requests.Session()
        session.mount(self.issuer + "/", _IssuerAdapter(self))
        return session


def _cookie_value(cookie_header: str, name: str) -> str | None:
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class _IssuerAdapter(BaseAdapter):
    """A transport adapter that answers requests from an :class:`AccessIssuer`."""

    def __init__(self, issuer: AccessIssuer) -> None:
        super().__init__()
        self.issuer = issuer
        #: Requests answered, by path, so tests can count fetches.
        self.calls: dict[str, int] = {}

    def send(  # type: ignore[override]
        self, request: PreparedRequest, **kwargs: Any
    ) -> Response:
        path = urlsplit(request.url or "").path
        self.calls[path] = self.calls.get(path, 0) + 1
        status, body = self.issuer.respond(path, request.headers.get("Cookie"))
        response = Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps(body).encode()
        response._content_consumed = True
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""
