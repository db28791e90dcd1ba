"""The stand-in: a local imitation of one Access team and application.

Its RSA signing keys (:class:`SigningKey`) and the compact JWS tokens signed
with them; the ``get-identity`` profile fields, in Access's shapes
(:func:`identity_profile`); and :class:`AccessIssuer` itself, which mints
tokens, rotates its keys and answers the team's certs and ``get-identity``.
How it is served (in process, through ``responses`` or over HTTP) is
:mod:`._server`'s job.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .._core.tokens import TOKEN_COOKIE, read_unverified_claims
from ._server import CERTS_PATH, IDENTITY_PATH, StandInServer, issuer_session, register_responses

if TYPE_CHECKING:
    import requests
    from responses import RequestsMock


# -- keys and tokens ---------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair of the stand-in, with its Access-style ``kid``."""

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


# -- get-identity profile fields ---------------------------------------------------


def identity_profile(
    *,
    amr: Iterable[str] | None = None,
    idp: tuple[str, str] | None = None,
    posture: Mapping[str, bool | Mapping[str, Any]] | None = None,
    login_at: float | None = None,
    country: str | None = None,
    warp: bool | None = None,
    gateway: bool | None = None,
    device_id: str | None = None,
    custom: Mapping[str, Any] | None = None,
    oidc_fields: Mapping[str, Any] | None = None,
    client_certificate: bool | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    """The ``get-identity`` fields for a profile, for ``issuer.user_token(…, profile=…)``::

        identity_profile(amr=["pwd", "hwk"], posture={"disk-rule": True}, login_at=now - 60)

    Only the fields given are in the answer (the stand-in's own ``idp`` and ``iat``
    stay otherwise).

    :param amr: the methods the user signed in with, e.g. ``["pwd", "otp"]``.
    :param idp: the identity provider as ``(id, type)``, e.g. ``("okta-1", "okta")``.
    :param posture: by rule id, whether it passed, or a whole ``devicePosture`` entry.
    :param login_at: when the user signed in (``iat``), seconds since the epoch.
    :param client_certificate: whether Access saw a valid client certificate.
    """
    fields: dict[str, Any] = {}
    if amr is not None:
        fields["amr"] = list(amr)
    if idp is not None:
        fields["idp"] = {"id": idp[0], "type": idp[1]}
    if posture is not None:
        fields["devicePosture"] = {
            rule_id: _posture_entry(rule_id, result, login_at)
            for rule_id, result in posture.items()
        }
    if login_at is not None:
        fields["iat"] = login_at
    if country is not None:
        fields["geo"] = {"country": country}
    for name, value in (
        ("is_warp", warp),
        ("is_gateway", gateway),
        ("device_id", device_id),
        ("ip", ip),
    ):
        if value is not None:
            fields[name] = value
    if custom is not None:
        fields["custom"] = dict(custom)
    if oidc_fields is not None:
        fields["oidc_fields"] = dict(oidc_fields)
    if client_certificate is not None:
        fields["mtls_auth"] = {
            "cert_presented": client_certificate,
            "auth_status": "OK" if client_certificate else "NONE",
        }
    return fields


def _posture_entry(
    rule_id: str, result: bool | Mapping[str, Any], checked_at: float | None
) -> dict[str, Any]:
    if not isinstance(result, bool):
        return dict(result)
    when = datetime.datetime.fromtimestamp(checked_at or 0, tz=datetime.timezone.utc)
    return {
        "id": rule_id,
        "rule_name": f"Stand-in rule {rule_id}",
        "type": "file",
        "success": result,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "schedule": "5m",
        "input": {},
        "check": {},
    }


# -- the stand-in ------------------------------------------------------------------


#: How far in the past an ``expired=True`` token expired, and how far in the
#: future a ``not_yet_valid=True`` token becomes valid: beyond any leeway.
OUT_OF_LEEWAY = 3600


@dataclass
class _User:
    email: str
    groups: list[dict[str, str]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)


class AccessIssuer:
    """A local stand-in for one Cloudflare Access team and application.

    Thread-safe: a :class:`StandInServer` answers from its own threads while
    the test mints tokens and rotates keys.

    :param team_domain: the team's host name; URLs are ``https://<team_domain>/…``.
        By default a name under ``.invalid``, reserved never to resolve
        (RFC 6761), so that a test that forgets to answer the team's URLs
        (``session()``, ``register()`` or ``serve()``) cannot reach a real one.
    :param audience: the application's AUD tag (by default one derived from
        ``team_domain``, 64 hex characters like a real one).
    :param clock: the time source for ``iat``, ``nbf`` and ``exp``; by
        default ``time.time()``, looked up at each call, so that freezegun and
        time-machine both move it.
    :param token_lifetime: seconds a minted token is valid for, by default.
    """

    def __init__(
        self,
        team_domain: str = "test-team.invalid",
        audience: str | None = None,
        *,
        clock: Callable[[], float] | None = None,
        token_lifetime: int = 24 * 3600,
    ) -> None:
        self.team_domain = team_domain
        self.audience = audience or hashlib.sha256(team_domain.encode()).hexdigest()
        self.clock: Callable[[], float] = clock or _system_time
        self.token_lifetime = token_lifetime
        self.signing_key = SigningKey.generate()
        self.previous_key: SigningKey | None = None
        self._users: dict[str, _User] = {}
        self._lock = threading.RLock()

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
        with self._lock:
            return [self.signing_key] + ([self.previous_key] if self.previous_key else [])

    def certs(self) -> dict[str, Any]:
        """The certs document, in Cloudflare's exact shape."""
        keys = self.published_keys()
        certs = [{"kid": key.kid, "cert": key.certificate_pem} for key in keys]
        return {"keys": [key.jwk() for key in keys], "public_cert": certs[0], "public_certs": certs}

    def rotate(self) -> SigningKey:
        """Sign with a new key from now on, still publishing the previous one."""
        new_key = SigningKey.generate()
        with self._lock:
            self.previous_key = self.signing_key
            self.signing_key = new_key
        return new_key

    def drop_previous(self) -> None:
        """Stop publishing the previous key, as Access does after a rotation."""
        with self._lock:
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
        audience: str | Sequence[str] | None = None,
        expired: bool = False,
        not_yet_valid: bool = False,
        custom: Mapping[str, Any] | None = None,
    ) -> str:
        """A token with the team's usual claims, overridden or extended by ``claims``.

        A claim given as ``None`` is left out. ``header`` replaces the usual
        ``{"alg": "RS256", "kid": …}`` entirely.

        :param key: sign with this key instead of the current one.
        :param lifetime: seconds from ``iat`` to ``exp`` (default ``token_lifetime``).
        :param issued_at: the ``iat`` (default: the clock now).
        :param audience: the ``aud`` tag(s) instead of this application's:
            ``audience="another-app"`` makes a token for another application.
        :param expired: a token that expired an hour ago, beyond any leeway.
        :param not_yet_valid: a token whose ``nbf`` is an hour from now.
        :param custom: the ``custom`` claim, where Access puts SAML and OIDC
            attributes, e.g. ``{"department": "R&D", "groups": ["Admins"]}``.
        """
        with self._lock:
            signer = key or self.signing_key
        valid_for = self.token_lifetime if lifetime is None else lifetime
        now = int(self.clock() if issued_at is None else issued_at)
        if expired:
            now = int(self.clock()) - OUT_OF_LEEWAY - valid_for
        payload: dict[str, Any] = {
            "aud": [self.audience],
            "email": "",
            "exp": now + valid_for,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "type": "app",
            "identity_nonce": secrets.token_urlsafe(12),
            "sub": "",
            "country": "XX",
        }
        if audience is not None:
            payload["aud"] = [audience] if isinstance(audience, str) else list(audience)
        if not_yet_valid:
            payload["nbf"] = int(self.clock()) + OUT_OF_LEEWAY
        if custom is not None:
            payload["custom"] = dict(custom)
        payload.update(claims or {})
        payload = {name: value for name, value in payload.items() if value is not None}
        return encode_token(header or {"alg": "RS256", "kid": signer.kid}, payload, signer)

    def user_token(
        self,
        email: str,
        groups: Iterable[str] = (),
        *,
        groups_in_token: bool = False,
        audience: str | Sequence[str] | None = None,
        expired: bool = False,
        not_yet_valid: bool = False,
        custom: Mapping[str, Any] | None = None,
        lifetime: int | None = None,
        profile: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A user's token. Its groups are served by ``get-identity``, or carried in
        the token (``groups_in_token=True``, as some identity providers do); a
        single string is one group.

        ``profile``: more fields of the user's ``get-identity`` answer (device
        posture, ``amr``, ``idp``, login time…), as
        :func:`~flask_cf_access.testing.identity_profile` makes them; change
        them later with :meth:`set_profile`.

        ``audience``, ``expired``, ``not_yet_valid``, ``custom`` and
        ``lifetime`` are those of :meth:`mint`; other keywords are claims.
        """
        group_objects = [
            {"id": self.group_id(name), "name": name, "email": f"{name}@groups.example"}
            for name in ((groups,) if isinstance(groups, str) else groups)
        ]
        with self._lock:
            self._users[email] = _User(email, group_objects, dict(profile or {}))
        base: dict[str, Any] = {
            "email": email,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, email)),
        }
        if groups_in_token:
            base["groups"] = [group["name"] for group in group_objects]
        base.update(claims)
        return self.mint(
            base,
            audience=audience,
            expired=expired,
            not_yet_valid=not_yet_valid,
            custom=custom,
            lifetime=lifetime,
        )

    def set_profile(self, email: str, profile: Mapping[str, Any]) -> None:
        """From now on, answer ``profile`` as the profile fields of ``email``'s identity
        (a posture check failing, a new sign-in…).

        :raises KeyError: no token was minted for ``email``.
        """
        with self._lock:
            self._users[email].profile = dict(profile)

    def service_token(
        self,
        client_id: str = "test-client.access",
        *,
        audience: str | Sequence[str] | None = None,
        expired: bool = False,
        not_yet_valid: bool = False,
        lifetime: int | None = None,
        **claims: Any,
    ) -> str:
        """A service token's token: ``common_name`` set, ``sub`` empty, no e-mail.

        ``audience``, ``expired``, ``not_yet_valid`` and ``lifetime`` are those
        of :meth:`mint`; other keywords are claims.
        """
        return self.mint(
            {"common_name": client_id, "sub": "", "email": None, **claims},
            audience=audience,
            expired=expired,
            not_yet_valid=not_yet_valid,
            lifetime=lifetime,
        )

    def group_id(self, name: str) -> str:
        """The id this team gives the group called ``name``."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

    def identity_for(self, token: str) -> dict[str, Any] | None:
        """The ``get-identity`` answer for a token of a known user, else ``None``."""
        try:
            claims = decode_unverified_claims(token)
        except ValueError:
            return None
        with self._lock:
            user = self._users.get(str(claims.get("email", "")))
            if user is None:
                return None
            profile = dict(user.profile)
        return {
            "email": user.email,
            "id": claims.get("sub", ""),
            "user_uuid": claims.get("sub", ""),
            "name": user.email.split("@")[0],
            "groups": user.groups,
            "idp": {"id": "test-idp", "type": "onetimepin"},
            "iat": claims.get("iat"),
            **profile,
        }

    # -- minting asked for from outside the test ---------------------------

    def _mint_asked(self, request: object) -> str:
        """A token as asked for from outside the test, in JSON: by ``flask cf-access mint``
        (a :class:`StandInServer` started with ``minting=True``) or the sign-in page.

        :raises ValueError: the request is not an object of the expected members.
        """
        if not isinstance(request, dict):
            raise ValueError("the request must be a JSON object")
        options: dict[str, Any] = {
            "expired": _member(request, "expired", bool, False),
            "not_yet_valid": _member(request, "not_yet_valid", bool, False),
            "lifetime": _member(request, "lifetime", int, None),
            "audience": _member(request, "audience", str, None),
        }
        service_token = _member(request, "service_token", str, None)
        if service_token is not None:
            return self.service_token(service_token, **options)
        email = _member(request, "email", str, None)
        if not email:
            raise ValueError("an email or a service_token is needed")
        groups = _member(request, "groups", list, [])
        if not all(isinstance(group, str) and group for group in groups):
            raise ValueError("groups must be a list of names")
        profile = _member(request, "profile", dict, {})
        return self.user_token(email, groups, profile=self._profile_fields(profile), **options)

    def _profile_fields(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The get-identity fields a minting request's ``profile`` asks for.

        :raises ValueError: a member of the wrong type, or one it does not know.
        """
        unknown = set(request) - set(_PROFILE_MEMBERS)
        if unknown:
            raise ValueError(f"profile has no member {sorted(unknown)[0]!r}")
        given = {
            name: _member(request, name, kind, None) for name, kind in _PROFILE_MEMBERS.items()
        }
        amr, posture, custom = given["amr"], given["posture"], given["custom"]
        if amr is not None and not all(isinstance(method, str) for method in amr):
            raise ValueError("amr must be a list of methods")
        if posture is not None and not all(isinstance(ok, bool) for ok in posture.values()):
            raise ValueError("posture must map rule ids to true or false")
        login_age = given["login_age"]
        if login_age is not None and login_age < 0:
            raise ValueError("login_age must be seconds ago, 0 or more")
        idp = given["idp"]
        return identity_profile(
            amr=amr,
            idp=None if idp is None else (f"stand-in-{idp}", idp),
            posture=posture,
            login_at=None if login_age is None else self.clock() - login_age,
            country=given["country"],
            warp=given["warp"],
            gateway=given["gateway"],
            device_id=given["device_id"],
            custom=custom,
            client_certificate=given["client_certificate"],
        )

    # -- serving ---------------------------------------------------------

    def respond(self, path: str, cookie_header: str | None) -> tuple[int, Any]:
        """Status and JSON body the team would answer for ``path``."""
        if path == CERTS_PATH:
            return 200, self.certs()
        if path == IDENTITY_PATH:
            token = cookie_value(cookie_header or "", TOKEN_COOKIE)
            identity = self.identity_for(token) if token else None
            if identity is None:
                return 400, {"err": "no identity for this token"}
            return 200, identity
        return 404, {"err": "not found"}

    def session(self) -> requests.Session:
        """A ``requests.Session`` answered by this stand-in in process, with no HTTP."""
        return issuer_session(self)

    def register(self, mock: RequestsMock | None = None) -> None:
        """Answer this team's certs and ``get-identity`` URLs through ``responses``.

        The answers are computed on each call, so a :meth:`rotate` is seen
        at once. Count the fetches with ``mock.calls``::

            with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
                issuer.register(mock)
                app.config.update(issuer.settings())
                ...

        :param mock: the ``RequestsMock`` to register with; by default the one
            behind ``@responses.activate``.
        """
        register_responses(self, mock)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        minting: bool = False,
        sign_in: bool = False,
    ) -> StandInServer:
        """This stand-in served over real HTTP (a stand-in server); start it with ``with``::

            with issuer.serve() as server:
                app.config.update(server.settings())

        :param port: ``0`` (the default) picks a free port; read ``server.url``.
        :param minting: also mint tokens for ``flask cf-access mint`` at a
            secret URL (``server.mint_url``).
        :param sign_in: also serve a sign-in page shaped like Access's, that
            sets the ``CF_Authorization`` cookie in a developer's browser
            (``host`` must be 127.0.0.1).
        """
        return StandInServer(self, host=host, port=port, minting=minting, sign_in=sign_in)


def _system_time() -> float:
    return time.time()


def cookie_value(cookie_header: str, name: str) -> str | None:
    """The value of the cookie ``name`` in a ``Cookie`` header; ``None`` if absent or empty."""
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


#: What a minting request's ``profile`` may hold, with the type of each.
_PROFILE_MEMBERS: Mapping[str, type] = {
    "amr": list,
    "idp": str,
    "posture": dict,
    "login_age": int,
    "country": str,
    "warp": bool,
    "gateway": bool,
    "device_id": str,
    "custom": dict,
    "client_certificate": bool,
}


def _member(request: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """``request[name]`` if it is a ``kind`` (a bool only where a bool is wanted)."""
    value = request.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ValueError(f"{name} must be a {kind.__name__}")
    return value
