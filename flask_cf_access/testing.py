"""Test your protected views without Cloudflare: a local stand-in for an Access team.

:class:`AccessIssuer` behaves like a Cloudflare Access team. It holds RSA-2048
signing keys whose ``kid`` is the SHA-256 of the key's DER
SubjectPublicKeyInfo (as real Access key ids are), publishes them in
Cloudflare's certs shape, mints tokens with the claims you choose, rotates
its keys, and answers ``get-identity`` for the users it minted tokens for.

An app reaches the stand-in in one of three ways, whichever suits the test:

- in process, with no HTTP at all: ``CloudflareAccess(app, session=issuer.session())``;
- through ``responses``: ``issuer.register(mock)``;
- over real HTTP on 127.0.0.1: ``with issuer.serve() as server:`` and
  ``app.config.update(server.settings())``.

::

    issuer = AccessIssuer()
    app.config.update(issuer.settings())
    CloudflareAccess(app, session=issuer.session())
    token = issuer.user_token("ada@example.com", groups=["Admins"])
    client.get("/", headers={"Cf-Access-Jwt-Assertion": token})

    app.test_client_class = AccessClient
    client = app.test_client(issuer=issuer)
    client.get("/admin/", as_user="ada@example.com", groups=["Admins"])

With pytest, the fixtures of :mod:`flask_cf_access.pytest_plugin`
(``cf_access_issuer``, ``cf_access_server``, ``cf_access_responses``) are
available as soon as the package is installed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import json
import logging
import secrets
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response
from werkzeug.datastructures import Headers

if TYPE_CHECKING:
    from flask import Flask
    from responses import RequestsMock
    from werkzeug.test import TestResponse

__all__ = [
    "AccessClient",
    "AccessIssuer",
    "RequestCounts",
    "SigningKey",
    "StandInServer",
    "decode_unverified_claims",
    "encode_token",
]

logger = logging.getLogger("flask_cf_access.testing")

CERTS_PATH = "/cdn-cgi/access/certs"
IDENTITY_PATH = "/cdn-cgi/access/get-identity"
#: Where a :class:`StandInServer` started with ``minting=True`` mints tokens,
#: under a random secret: ``/__stand-in__/<secret>/tokens``.
MINT_PREFIX = "/__stand-in__/"

#: How far in the past an ``expired=True`` token expired, and how far in the
#: future a ``not_yet_valid=True`` token becomes valid: beyond any leeway.
OUT_OF_LEEWAY = 3600

#: The largest minting request body a stand-in server reads.
_MAX_MINT_BODY = 64 * 1024


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

    Thread-safe: a :class:`StandInServer` answers from its own threads while
    the test mints tokens and rotates keys.

    :param team_domain: the team's host name; URLs are ``https://<team_domain>/…``.
    :param audience: the application's AUD tag (by default one derived from
        ``team_domain``, 64 hex characters like a real one).
    :param clock: the time source for ``iat``, ``nbf`` and ``exp``.
    :param token_lifetime: seconds a minted token is valid for, by default.
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
        **claims: Any,
    ) -> str:
        """A user's token. Its groups are served by ``get-identity``, or carried in
        the token (``groups_in_token=True``, as some identity providers do).

        ``audience``, ``expired``, ``not_yet_valid``, ``custom`` and
        ``lifetime`` are those of :meth:`mint`; other keywords are claims.
        """
        group_objects = [
            {"id": self.group_id(name), "name": name, "email": f"{name}@groups.example"}
            for name in groups
        ]
        with self._lock:
            self._users[email] = _User(email, group_objects)
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
        except (ValueError, IndexError):
            return None
        with self._lock:
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
        import responses

        target = responses.mock if mock is None else mock

        def answer(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
            path = urlsplit(request.url or "").path
            status, body = self.respond(path, request.headers.get("Cookie"))
            return status, {}, json.dumps(body)

        for url in (self.certs_url, self.identity_url):
            target.add_callback(
                responses.GET, url, callback=answer, content_type="application/json"
            )

    def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, minting: bool = False
    ) -> StandInServer:
        """A real HTTP server answering as this team; start it with ``with``::

            with issuer.serve() as server:
                app.config.update(server.settings())

        :param port: ``0`` (the default) picks a free port; read ``server.url``.
        :param minting: also mint tokens for ``flask cf-access mint`` at a
            secret URL (``server.mint_url``).
        """
        return StandInServer(self, host=host, port=port, minting=minting)


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
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""


# -- a real HTTP server --------------------------------------------------


class RequestCounts(Mapping[str, int]):
    """Requests answered, by path; thread-safe. A path never asked for counts 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, path: str) -> None:
        """Count one request for ``path``."""
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()

    def __getitem__(self, path: str) -> int:
        with self._lock:
            return self._counts.get(path, 0)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._counts

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._counts))

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    def __repr__(self) -> str:
        with self._lock:
            return f"RequestCounts({self._counts!r})"


class StandInServer:
    """An :class:`AccessIssuer`'s team served over real HTTP, in a thread.

    Serves ``GET /cdn-cgi/access/certs`` and ``GET /cdn-cgi/access/get-identity``
    (the token in the ``CF_Authorization`` cookie), as Cloudflare does, from a
    ``ThreadingHTTPServer`` on ``host`` (127.0.0.1) and an ephemeral port.
    Start and stop it with ``with``, or :meth:`start` and :meth:`close`::

        with issuer.serve() as server:
            app = create_app(server.settings())
            assert server.calls["/cdn-cgi/access/certs"] == 1

    The token ``iss`` stays ``https://<team_domain>``; only the URLs the app
    fetches from point here, so :meth:`settings` sets ``CF_ACCESS_CERTS_URL``
    and ``CF_ACCESS_IDENTITY_URL``.
    """

    def __init__(
        self,
        issuer: AccessIssuer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        minting: bool = False,
    ) -> None:
        self.issuer = issuer
        self.host = host
        self.port = port
        #: Requests answered so far, by path.
        self.calls = RequestCounts()
        self._mint_path = f"{MINT_PREFIX}{secrets.token_urlsafe(24)}/tokens" if minting else None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------

    def start(self) -> StandInServer:
        """Bind the port and serve in a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("the stand-in server is already running")
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.stand_in = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"cf-access-stand-in:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the socket and join the thread. Safe to call twice."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- where it answers -------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, with no trailing slash."""
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not running: use `with issuer.serve():`")
        return f"http://{self.host}:{self.port}"

    @property
    def certs_url(self) -> str:
        """The URL of the certs document on this server."""
        return self.url + CERTS_PATH

    @property
    def identity_url(self) -> str:
        """The URL of ``get-identity`` on this server."""
        return self.url + IDENTITY_PATH

    @property
    def mint_url(self) -> str | None:
        """Where ``flask cf-access mint`` asks for tokens, if started with ``minting=True``.

        The URL holds a random secret: whoever knows it can mint tokens that
        apps trusting this stand-in accept, so it is only ever printed to the
        terminal that started the server.
        """
        return None if self._mint_path is None else self.url + self._mint_path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``CF_ACCESS_*`` settings for an app that trusts this stand-in over HTTP.

        ``CF_ACCESS_TEAM_DOMAIN`` is the issuer's (it is the tokens' ``iss``);
        the certs and identity URLs point at this server. With ``minting=True``,
        ``CF_ACCESS_STAND_IN`` is the :attr:`mint_url`.
        """
        settings = self.issuer.settings(
            CF_ACCESS_CERTS_URL=self.certs_url, CF_ACCESS_IDENTITY_URL=self.identity_url
        )
        if self.mint_url is not None:
            settings["CF_ACCESS_STAND_IN"] = self.mint_url
        settings.update(overrides)
        return settings

    def environ(self, **overrides: Any) -> dict[str, str]:
        """:meth:`settings` as environment variables (non-strings as JSON), e.g.
        for ``gunicorn`` running an app that reads ``CF_ACCESS_*`` from them."""
        return {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in self.settings(**overrides).items()
        }

    # -- answering, called from the server's threads -----------------------

    def _answer_get(self, path: str, cookie_header: str | None) -> tuple[int, Any]:
        return self.issuer.respond(path, cookie_header)

    def _answer_post(self, path: str, body: bytes) -> tuple[int, Any]:
        if self._mint_path is None or not secrets.compare_digest(
            path.encode(), self._mint_path.encode()
        ):
            return 404, {"err": "not found"}
        try:
            request = json.loads(body or b"{}")
            return 200, {"token": self._mint(request)}
        except (ValueError, TypeError) as exc:
            return 400, {"err": str(exc)}

    def _mint(self, request: object) -> str:
        """A token as asked for by ``flask cf-access mint``.

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
            return self.issuer.service_token(service_token, **options)
        email = _member(request, "email", str, None)
        if not email:
            raise ValueError("an email or a service_token is needed")
        groups = _member(request, "groups", list, [])
        if not all(isinstance(group, str) and group for group in groups):
            raise ValueError("groups must be a list of names")
        return self.issuer.user_token(email, groups, **options)


def _member(request: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """``request[name]`` if it is a ``kind`` (a bool only where a bool is wanted)."""
    value = request.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ValueError(f"{name} must be a {kind.__name__}")
    return value


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    stand_in: StandInServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name; not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    """Answers one request for a :class:`StandInServer` (HTTP/1.0: one per connection)."""

    server: _HTTPServer
    server_version = "cf-access-stand-in"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.stand_in.calls.add(path)
        status, body = self.server.stand_in._answer_get(path, self.headers.get("Cookie"))
        self._send_json(status, body)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.server.stand_in.calls.add(path)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_MINT_BODY:
            self._send_json(400, {"err": "bad Content-Length"})
            return
        status, body = self.server.stand_in._answer_post(path, self.rfile.read(length))
        self._send_json(status, body)

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("stand-in %s: " + format, self.address_string(), *args)


# -- a test client ---------------------------------------------------------


class AccessClient(FlaskClient):
    """A Flask test client that sends requests as a user or a service token.

    Make it the app's test client class and give it the issuer the app trusts::

        app.test_client_class = AccessClient
        client = app.test_client(issuer=issuer)

        client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
        client.get("/api/whoami", as_service_token="ci.access")
        client.get("/", token=issuer.user_token("ada@example.com", expired=True))
        client.get("/")  # no token at all

    The token goes in the ``Cf-Access-Jwt-Assertion`` header, as Access sends
    it. To test the cookie instead, set it yourself:
    ``client.set_cookie("CF_Authorization", token)``. The options are ignored
    when the request is given as an ``EnvironBuilder`` or environ.
    """

    def __init__(self, *args: Any, issuer: AccessIssuer | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The team whose tokens ``as_user`` and ``as_service_token`` mint.
        self.issuer = issuer

    @classmethod
    def for_app(cls, app: Flask, issuer: AccessIssuer, **kwargs: Any) -> AccessClient:
        """A client of ``app`` sending tokens of ``issuer``, whatever the app's
        ``test_client_class``."""
        return cls(app, app.response_class, use_cookies=True, issuer=issuer, **kwargs)

    def open(
        self,
        *args: Any,
        as_user: str | None = None,
        groups: Iterable[str] = (),
        as_service_token: str | None = None,
        token: str | None = None,
        buffered: bool = False,
        follow_redirects: bool = False,
        **kwargs: Any,
    ) -> TestResponse:
        """Open a request, with a token when asked for.

        :param as_user: mint a token for this e-mail; its ``groups`` are
            served by the issuer's ``get-identity``.
        :param groups: the user's group names.
        :param as_service_token: mint a service token's token for this client id.
        :param token: send this token as it is (any kind the issuer minted).
        """
        chosen = self._token(as_user, tuple(groups), as_service_token, token)
        if chosen is not None:
            headers = Headers(kwargs.pop("headers", None))
            headers["Cf-Access-Jwt-Assertion"] = chosen
            kwargs["headers"] = headers
        return super().open(*args, buffered=buffered, follow_redirects=follow_redirects, **kwargs)

    def _token(
        self,
        as_user: str | None,
        groups: tuple[str, ...],
        as_service_token: str | None,
        token: str | None,
    ) -> str | None:
        if sum(option is not None for option in (as_user, as_service_token, token)) > 1:
            raise TypeError("give only one of as_user, as_service_token and token")
        if groups and as_user is None:
            raise TypeError("groups are for as_user")
        if token is not None or (as_user is None and as_service_token is None):
            return token
        if self.issuer is None:
            raise TypeError(
                "AccessClient has no issuer: use app.test_client(issuer=issuer)"
                " or AccessClient.for_app(app, issuer)"
            )
        if as_user is not None:
            return self.issuer.user_token(as_user, groups)
        return self.issuer.service_token(str(as_service_token))
