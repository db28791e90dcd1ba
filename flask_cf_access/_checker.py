"""The one place where a request's token becomes an identity, or a refusal.

Flask views (through the decorators) and plain WSGI applications (through
the middleware) share this code; neither has a verification of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict

import requests
from cachelib import BaseCache, SimpleCache

from ._applications import ApplicationMap, ApplicationSettings
from ._browser import login_redirect_for
from ._claims import ClaimsPolicy
from ._clock import Clock, system_time
from ._csrf import SAFE_METHODS, check_origin
from ._errors import AccessError, AccessUnauthorized, Reason, prefers_html, refusal, report_refusal
from ._fetch import fork_safe_session
from ._groups import Group, MalformedGroups, groups_in_claims
from ._identity import AccessIdentity
from ._identity_endpoint import IdentityEndpoint
from ._keys import KeyStore
from ._profile import AccessProfile, MalformedProfile, parse_profile
from ._requirements import ANY_TOKEN, AccessPolicy, Requirement, require
from ._settings import AccessSettings
from ._shared_cache import SharedCache
from ._signals import access_granted
from ._tokens import TOKEN_COOKIE
from ._verifier import TokenVerifier

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

logger = logging.getLogger("flask_cf_access")


class _Reach(TypedDict):
    """How the key store and the identity endpoint reach Cloudflare and keep what they learn."""

    session: requests.Session
    timeout: float
    cache: SharedCache
    clock: Clock


class AccessChecker:
    """Verifies tokens and checks identities for one configured team and app."""

    def __init__(
        self,
        settings: AccessSettings,
        *,
        cache: BaseCache | None = None,
        session: requests.Session | None = None,
        clock: Clock = system_time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.cache = SharedCache(cache if cache is not None else SimpleCache(), clock=clock)
        #: The ``requests.Session`` every call to Cloudflare goes through.
        self.session = session if session is not None else fork_safe_session()
        reach = _Reach(
            session=self.session, timeout=settings.http_timeout, cache=self.cache, clock=clock
        )
        #: How long a request waits for keys or an identity being fetched.
        budget = min(settings.upstream_wait, settings.http_timeout)
        self.keys = KeyStore(
            certs_url=settings.certs_url,
            budget=budget,
            max_age=settings.keys_max_age,
            min_refresh_interval=settings.keys_min_refresh_interval,
            **reach,
        )
        self.identity_endpoint = IdentityEndpoint(
            url=settings.identity_url,
            budget=budget,
            slots=settings.identity_concurrency,
            **reach,
        )
        self.verifier = TokenVerifier(self.keys, ClaimsPolicy(settings, clock))
        #: Roles, known service tokens and app-wide rules; judges every requirement.
        self.policy = AccessPolicy(settings)
        #: ``CF_ACCESS_APPLICATIONS``, when several applications are configured; else ``None``.
        self.applications = ApplicationMap(settings.applications) if settings.applications else None

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        clock: Clock | None = None,
    ) -> AccessChecker:
        """A checker from ``CF_ACCESS_*`` settings (``app.config``, ``os.environ``…).

        Loads the keys unless ``CF_ACCESS_LOAD_KEYS_ON_INIT`` is false; a
        failure to load them is logged, not raised.

        :raises ConfigurationError: naming the first missing or invalid setting.
        """
        settings = AccessSettings.from_mapping(config)
        checker = cls(settings, cache=settings.cache, session=session, clock=clock or system_time)
        if settings.load_keys_on_init:
            checker.keys.preload()
        return checker

    def authenticate(self, header_value: str | None, cookie_value: str | None) -> AccessIdentity:
        """The identity of a request, from its header (authoritative) or cookie.

        :raises AccessUnauthorized: no token, or one that does not verify.
        :raises AccessUnavailable: no keys could be had.
        """
        # The header is authoritative: when present, even empty or bad, the
        # cookie is not looked at.
        token = header_value if header_value is not None else cookie_value
        if not token:
            raise refusal(Reason.MISSING_TOKEN)
        token = token.strip()
        verified = self.verifier.verify_entry(token)
        identity = verified.identity
        if identity is None:
            # Made once per remembered token; its groups and profile are had once too.
            claims = verified.claims
            identity = verified.identity = AccessIdentity(
                claims,
                partial(self._groups_of, token, claims),
                self.policy,
                load_profile=partial(self._profile_of, token, claims),
                clock=self.clock,
            )
        return identity

    def verify_token(
        self, token: str | None, requirement: Requirement = ANY_TOKEN
    ) -> AccessIdentity:
        """The identity of ``token``, judged as a request's would be but for what
        only a request has (see :func:`flask_cf_access.verify_token`).

        :meth:`authenticate`, then the applications ``requirement`` names, then
        the app-wide rules and ``requirement`` (:attr:`policy`); nothing is reported.

        :raises AccessUnauthorized: 401, no token or one that does not verify.
        :raises AccessForbidden: 403, refused by an app-wide rule or ``requirement``.
        :raises AccessUnavailable: 503, keys, groups or the profile could not be had.
        """
        identity = self.authenticate(token, None)
        if requirement.applications:
            self._check_named_applications(identity, requirement)
        self.policy.authorize(identity, requirement)
        return identity

    def _profile_of(
        self, token: str, claims: Mapping[str, Any], held: AccessProfile | None, fresh: bool
    ) -> AccessProfile:
        """The profile of the user of ``token``: ``held`` if it will do, else from
        get-identity (from the answer cached with the groups, if recent enough).

        ``fresh``: the profile must have been had from get-identity by this
        process no longer ago than ``CF_ACCESS_PROFILE_MAX_AGE``, by this
        process's clock (:meth:`IdentityEndpoint.answer`): no time written by
        another host is trusted.

        :raises AccessUnavailable: get-identity could not be asked, or its answer
            has a malformed profile field.
        """
        max_age = self.settings.profile_max_age if fresh else None
        if held is not None and (
            max_age is None
            or (held.fetched_at is not None and 0 <= self.clock() - held.fetched_at <= max_age)
        ):
            return held
        answer = self.identity_endpoint.answer(token, float(claims["exp"]), claims, max_age=max_age)
        try:
            return parse_profile(answer.document, fetched_at=answer.fetched_at)
        except MalformedProfile as exc:
            logger.error("Cloudflare Access identity has a malformed profile: %s", exc)
            raise refusal(Reason.MALFORMED_PROFILE) from exc

    def _groups_of(self, token: str, claims: Mapping[str, Any]) -> tuple[Group, ...]:
        """The groups of the identity of ``token``: in its claims, else from get-identity.

        :raises AccessUnauthorized: a groups claim that is not well formed.
        :raises AccessUnavailable: get-identity could not be asked.
        """
        try:
            carried = groups_in_claims(claims)
        except MalformedGroups as exc:
            raise refusal(Reason.MALFORMED_CLAIMS) from exc
        if carried is not None:
            return carried
        return self.identity_endpoint.groups(token, float(claims["exp"]), claims)

    def authorize(
        self,
        identity: AccessIdentity,
        *,
        groups: Collection[str] = (),
        allow_service_tokens: bool = True,
        requirement: Requirement | None = None,
    ) -> None:
        """Refuse an authenticated identity this resource does not admit.

        Judged by :attr:`policy`: the app-wide rules, then ``requirement``
        (or, without one, ``groups``, any of them, and ``allow_service_tokens``).

        :raises AccessForbidden: a rule or part of the requirement does not hold.
        :raises AccessUnavailable: the groups were needed and could not be had.
        """
        if requirement is None:
            requirement = _requirement(groups, allow_service_tokens)
        self.policy.authorize(identity, requirement)

    def check_request(
        self,
        sender: object,
        request: Request,
        header_value: str | None,
        cookie_value: str | None,
        requirement: Requirement = ANY_TOKEN,
        *,
        csrf_exempt: bool = False,
        admit: Callable[[AccessIdentity], None] | None = None,
        report_granted: bool = True,
        verified: AccessIdentity | None = None,
    ) -> AccessIdentity:
        """Check one request: :meth:`authenticate`, then :meth:`authorize`, reported.

        ``header_value`` and ``cookie_value`` are the token the request sends
        (:func:`~flask_cf_access._tokens.sent_token`). A user's unsafe request
        is also checked for cross-site forgery (``CF_ACCESS_CSRF_PROTECT``,
        unless ``csrf_exempt``), and a browser refused for want of a token is
        sent to the login page when ``CF_ACCESS_UNAUTHORIZED = "redirect"``.
        ``admit``, if given, is the last step: it gets the identity once every
        rule passed and may still refuse it (the Flask layer's account check).
        ``report_granted=False`` leaves the grant to be reported later, with
        :meth:`granted` (a later check in the request may still refuse).
        ``verified``: the identity an earlier check of the same request got
        from the same token; it is not verified again, every rule still is.

        Reported means one log line per refusal, and the
        :data:`~flask_cf_access.access_granted` or
        :data:`~flask_cf_access.access_denied` signal from ``sender``.
        The decorators and the WSGI middleware both come through here.

        :returns: the identity, if it may pass.
        :raises AccessUnauthorized: 401, no token or one that does not verify.
        :raises AccessForbidden: 403, refused by an app-wide rule or by
            ``requirement``, or a cross-site request.
        :raises AccessUnavailable: 503, keys or identity could not be had.
        """
        identity: AccessIdentity | None = None
        application: ApplicationSettings | None = None
        applications = self.applications
        try:
            if applications is not None:
                application = applications.application_for(
                    request.host, request.environ.get("PATH_INFO") or "/"
                )
            identity = (
                verified if verified is not None else self.authenticate(header_value, cookie_value)
            )
            if applications is not None or requirement.applications:
                self.check_application(identity, application, requirement)
            if (
                request.method not in SAFE_METHODS
                and not csrf_exempt
                and not identity.is_service_token
            ):
                settings = self.settings
                check_origin(
                    request,
                    settings.csrf_protect,
                    settings.trusted_origins,
                    TOKEN_COOKIE in request.cookies,
                )
            self.policy.authorize(identity, requirement)
            if admit is not None:
                admit(identity)
        except AccessError as error:
            self._refused(sender, request, error, identity, application)
            raise
        if report_granted and access_granted.receivers:
            self.granted(sender, request, identity)
        return identity

    @staticmethod
    def granted(sender: object, request: Request, identity: AccessIdentity) -> None:
        """Report that ``request`` was let through as ``identity`` (``access_granted``)."""
        if access_granted.receivers:
            access_granted.send(sender, identity=identity, method=request.method, path=request.path)

    def login_audience(self, host: str, path_info: str) -> str | None:
        """The AUD a browser signs in to for ``path_info`` on ``host``: that of the
        path's application (``CF_ACCESS_APPLICATIONS``); ``None`` for the default
        (the first tag), also for a path no application covers or an ambiguous one."""
        if self.applications is None:
            return None
        try:
            application = self.applications.application_for(host, path_info)
        except AccessError:
            return None
        return application.audience[0] if application is not None else None

    def check_application(
        self,
        identity: AccessIdentity,
        application: ApplicationSettings | None,
        requirement: Requirement,
    ) -> None:
        """Refuse a token that is not for the request's application, nor for each
        application ``requirement`` names (``CF_ACCESS_APPLICATIONS``).

        :raises AccessForbidden: 403, ``wrong_application``; also for a path no
            application covers, and for a name no application has (fail closed).
        """
        applications = self.applications
        if applications is not None and (
            application is None or not application.admits(identity.claims)
        ):
            raise refusal(Reason.WRONG_APPLICATION)
        self._check_named_applications(identity, requirement)

    def _check_named_applications(self, identity: AccessIdentity, requirement: Requirement) -> None:
        """Refuse a token not for each application ``requirement`` names (fail closed
        for a name no application has).

        :raises AccessForbidden: 403, ``wrong_application``.
        """
        claims = identity.claims
        applications = self.applications
        for name in requirement.applications:
            named = applications.by_name.get(name) if applications is not None else None
            if named is None or not named.admits(claims):
                raise refusal(Reason.WRONG_APPLICATION)

    def _refused(
        self,
        sender: object,
        request: Request,
        error: AccessError,
        identity: AccessIdentity | None,
        application: ApplicationSettings | None = None,
    ) -> None:
        """Report a refusal; a browser without a token, or whose sign-in is too old
        for the view, may be sent to sign in (again) first, and one with another
        application's token to sign in to this path's (step-up)."""
        if self.settings.unauthorized == "redirect" and (
            isinstance(error, AccessUnauthorized)
            or error.reason is Reason.LOGIN_TOO_OLD
            or (error.reason is Reason.WRONG_APPLICATION and application is not None)
        ):
            error.may_send_to_login()
            if request.method in ("GET", "HEAD") and prefers_html(request.environ):
                audience = application.audience[0] if application is not None else None
                url = login_redirect_for(self.settings, request.host, request.full_path, audience)
                error.send_to_login(url)
        report_refusal(sender, error, method=request.method, path=request.path, identity=identity)


def _requirement(groups: Collection[str], allow_service_tokens: bool) -> Requirement:
    """The requirement the ``groups`` and ``allow_service_tokens`` arguments stand for."""
    if not groups and allow_service_tokens:
        return ANY_TOKEN
    # require() takes a single string as one group, and refuses non-strings.
    return require(groups=groups, allow_service_tokens=allow_service_tokens)
