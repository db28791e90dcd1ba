"""The one place where a request's token becomes an identity, or a refusal.

Flask views (through the decorators) and plain WSGI applications (through
the middleware) share this code; neither has a verification of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import requests
from cachelib import BaseCache, SimpleCache

from .claims import ClaimsPolicy
from .errors import AccessError, AccessForbidden, AccessUnauthorized, Reason
from .groups import Group, MalformedGroups, groups_in_claims
from .identity import AccessIdentity
from .identity_endpoint import IdentityEndpoint
from .keys import KeyStore
from .settings import AccessSettings
from .shared_cache import SharedCache
from .tokens import choose_token
from .verifier import TokenVerifier

logger = logging.getLogger("flask_cf_access")

Clock = Callable[[], float]


class AccessGate:
    """Verifies tokens and checks identities for one configured team and app."""

    def __init__(
        self,
        settings: AccessSettings,
        *,
        cache: BaseCache | None = None,
        session: requests.Session | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.cache = SharedCache(cache if cache is not None else SimpleCache())
        http = session if session is not None else requests.Session()
        self.keys = KeyStore(
            certs_url=settings.certs_url,
            session=http,
            timeout=settings.http_timeout,
            cache=self.cache,
            clock=clock,
            max_age=settings.keys_max_age,
            min_refresh_interval=settings.keys_min_refresh_interval,
        )
        self.identity_endpoint = IdentityEndpoint(
            url=settings.identity_url,
            session=http,
            timeout=settings.http_timeout,
            cache=self.cache,
            clock=clock,
        )
        self.verifier = TokenVerifier(self.keys, ClaimsPolicy(settings, clock))

    def authenticate(self, header_value: str | None, cookie_value: str | None) -> AccessIdentity:
        """The identity of a request, from its header (authoritative) or cookie.

        :raises AccessUnauthorized: no token, or one that does not verify.
        :raises AccessUnavailable: no keys could be had.
        """
        token = choose_token(header_value, cookie_value)
        claims = self.verifier.verify(token)

        def load_groups() -> tuple[Group, ...]:
            try:
                carried = groups_in_claims(claims)
            except MalformedGroups as exc:
                raise AccessUnauthorized(Reason.MALFORMED_CLAIMS) from exc
            if carried is not None:
                return carried
            return self.identity_endpoint.groups(token, float(claims["exp"]))

        return AccessIdentity(claims, load_groups)

    def authorize(
        self,
        identity: AccessIdentity,
        *,
        groups: Iterable[str] = (),
        allow_service_tokens: bool = True,
    ) -> None:
        """Refuse an authenticated identity this resource does not admit.

        :raises AccessForbidden: a refused service token, or none of ``groups``.
        :raises AccessUnavailable: the groups were needed and could not be had.
        """
        if identity.is_service_token and not allow_service_tokens:
            raise AccessForbidden(Reason.SERVICE_TOKEN_REFUSED)
        wanted = tuple(groups)
        if wanted and not identity.in_any_group(*wanted):
            raise AccessForbidden(Reason.NOT_IN_GROUP)

    def check(
        self,
        header_value: str | None,
        cookie_value: str | None,
        *,
        groups: Iterable[str] = (),
        allow_service_tokens: bool = True,
    ) -> AccessIdentity:
        """:meth:`authenticate`, then :meth:`authorize`: the identity, if it may pass."""
        identity = self.authenticate(header_value, cookie_value)
        self.authorize(identity, groups=groups, allow_service_tokens=allow_service_tokens)
        return identity


def log_denial(error: AccessError, method: str, path: str) -> None:
    """The one log line of a refused request: status, reason code, never the token."""
    logger.warning("Cloudflare Access refused %s %s: %d %s", method, path, error.code, error.reason)
