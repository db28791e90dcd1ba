"""The one place where a request's token becomes an identity, or a refusal.

Flask views (through the decorators) and plain WSGI applications (through
the middleware) share this code; neither has a verification of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import requests

from .applications import ApplicationMap, ApplicationSettings
from .browser import offer_login
from .clock import Clock
from .csrf import SAFE_METHODS, check_origin
from .errors import AccessError, Reason, refusal, report_refusal
from .groups import Group, MalformedGroups, groups_in_claims
from .identity import AccessIdentity
from .identity_endpoint import IdentityEndpoint
from .keys import KeyStore
from .profile import AccessProfile, MalformedProfile, parse_profile
from .requirements import ANY_TOKEN, AccessPolicy, Requirement, require
from .settings import AccessSettings
from .shared_cache import SharedCache
from .signals import PENDING_GRANT_ENVIRON_KEY, access_granted
from .tokens import TOKEN_COOKIE
from .verifier import TokenVerifier

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from .token_cache import VerifiedToken

logger = logging.getLogger("flask_cf_access")


class AccessChecker:
    """Verifies tokens and checks identities for one configured team and app.

    Runs requests through the parts it is given; :func:`~flask_cf_access._assembly.build_checker`
    builds them from the settings.
    """

    def __init__(
        self,
        settings: AccessSettings,
        *,
        clock: Clock,
        cache: SharedCache,
        session: requests.Session,
        keys: KeyStore,
        identity_endpoint: IdentityEndpoint,
        verifier: TokenVerifier,
        policy: AccessPolicy,
        applications: ApplicationMap | None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        #: Where keys and identities are shared between workers and hosts.
        self.cache = cache
        #: The ``requests.Session`` every call to Cloudflare goes through.
        self.session = session
        self.keys = keys
        self.identity_endpoint = identity_endpoint
        self.verifier = verifier
        #: Roles, known service tokens and app-wide rules; judges every requirement.
        self.policy = policy
        #: ``CF_ACCESS_APPLICATIONS``, when several applications are configured; else ``None``.
        self.applications = applications

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
        return verified.identity or self._new_identity(token, verified)

    def _new_identity(self, token: str, verified: VerifiedToken) -> AccessIdentity:
        """The identity of a newly remembered ``token``: made once per token, whose
        groups and profile are then had once too."""
        claims = verified.claims
        identity = verified.identity = AccessIdentity._with_lookups(
            claims, _TokenLookups(self, token, claims), self.policy, self.clock
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

    def check_header_token(
        self, sender: object, request: Request, token: str, requirement: Requirement
    ) -> AccessIdentity | None:
        """:meth:`check_request` in one step for what nearly every request to a
        protected page is; ``None`` when ``request`` is not that and needs
        :meth:`check_request`.

        That is: a safe method (no cross-site check), a non-empty ``token`` in
        the header, one Access application, and nothing to admit after the
        rules (no account to load). The steps are those of
        :meth:`check_request`, in its order, reported the same way; written
        out for this case, they skip its calls and branches. With the Flask
        decorators' own one-step path in front of it, a repeat-token request
        costs some 22,000 machine instructions more than the bare view
        instead of 32,000 (callgrind), which ``benchmarks/bench_verify.py``'s
        repeat-token and role views need to stay near 1.10 times the bare
        view (``docs/performance.rst``).

        :raises AccessUnauthorized: the token does not verify.
        :raises AccessForbidden: refused by an app-wide rule or ``requirement``.
        :raises AccessUnavailable: keys or identity could not be had.
        """
        if (
            self.applications is not None
            or requirement.applications
            or request.method not in SAFE_METHODS
        ):
            return None
        identity: AccessIdentity | None = None
        try:
            # authenticate(token, None), written out: calling it costs a repeat
            # request some 1,100 instructions (0.3 % of the bare view).
            token = token.strip()
            verified = self.verifier.verify_entry(token)
            identity = verified.identity or self._new_identity(token, verified)
            self.policy.authorize(identity, requirement)
        except AccessError as error:
            self._refused(sender, request, error, identity)
            raise
        if access_granted.receivers:
            self.granted(sender, request, identity)
        return identity

    @staticmethod
    def granted(sender: object, request: Request, identity: AccessIdentity) -> None:
        """Report that ``request`` was let through as ``identity`` (``access_granted``),
        instead of any grant a middleware in front has still to report."""
        request.environ.pop(PENDING_GRANT_ENVIRON_KEY, None)
        if access_granted.receivers:
            access_granted.send(sender, identity=identity, method=request.method, path=request.path)

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
        """Report a refusal, once :func:`~flask_cf_access._browser.offer_login` has
        decided whether a browser is sent to sign in (again) instead; a grant a
        middleware in front has still to report is not (the client is refused)."""
        request.environ.pop(PENDING_GRANT_ENVIRON_KEY, None)
        offer_login(self.settings, request, error, application)
        report_refusal(sender, error, method=request.method, path=request.path, identity=identity)


def _requirement(groups: Collection[str], allow_service_tokens: bool) -> Requirement:
    """The requirement the ``groups`` and ``allow_service_tokens`` arguments stand for."""
    if not groups and allow_service_tokens:
        return ANY_TOKEN
    # require() takes a single string as one group, and refuses non-strings.
    return require(groups=groups, allow_service_tokens=allow_service_tokens)


class _TokenLookups:
    """The groups and profile of the identity of one remembered token, had from
    its checker when first asked (one object per token, which a worker's
    garbage collector walks beside the token cache)."""

    __slots__ = ("_checker", "_claims", "_token")

    def __init__(self, checker: AccessChecker, token: str, claims: Mapping[str, Any]) -> None:
        self._checker = checker
        self._token = token
        self._claims = claims

    def groups(self) -> tuple[Group, ...]:
        return self._checker._groups_of(self._token, self._claims)

    def profile(self, held: AccessProfile | None, fresh: bool) -> AccessProfile:
        return self._checker._profile_of(self._token, self._claims, held, fresh)
