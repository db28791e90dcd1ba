"""The stand-in team: its keys, the tokens it mints and what it answers."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._tokens import TOKEN_COOKIE
from ._keys import SigningKey, decode_unverified_claims, encode_token
from ._paths import CERTS_PATH, IDENTITY_PATH
from ._server import StandInServer
from ._transport import issuer_session, register_responses

if TYPE_CHECKING:
    import requests
    from responses import RequestsMock

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

    # -- serving ---------------------------------------------------------

    def respond(self, path: str, cookie_header: str | None) -> tuple[int, Any]:
        """Status and JSON body the team would answer for ``path``."""
        if path == CERTS_PATH:
            return 200, self.certs()
        if path == IDENTITY_PATH:
            token = _cookie_value(cookie_header or "", TOKEN_COOKIE)
            identity = self.identity_for(token) if token else None
            if identity is None:
                return 400, {"err": "no identity for this token"}
            return 200, identity
        return 404, {"err": "not found"}

    def session(self) -> requests.Session:
        """A ``requests.Session`` answered by this issuer in-process, with no HTTP."""
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
        """A real HTTP server answering as this team; start it with ``with``::

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


def _cookie_value(cookie_header: str, name: str) -> str | None:
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
