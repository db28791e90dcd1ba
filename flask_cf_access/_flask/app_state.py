"""What ``init_app`` keeps for an app: one :class:`AccessState` under one ``app.extensions`` key.

Below everything Flask-facing: the request primitive, the decorators, the
route audit, the user loader and the logout view find the app's state here,
and only :class:`~flask_cf_access.CloudflareAccess` puts it there.
:func:`verify_token` checks a token with that state outside a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, has_app_context

from .._core.checker import AccessChecker
from .._core.identity import AccessIdentity
from .._core.requirements import ANY_TOKEN, Requirement
from .guards import checks_apart
from .users import UserLoading

#: The one ``app.extensions`` key: the app's :class:`AccessState`.
EXTENSION_KEY = "cf_access"

#: What every look-up says when ``init_app`` was not called.
NOT_SET_UP = "Cloudflare Access is not set up on this app: call CloudflareAccess.init_app(app)."


@dataclass(frozen=True)
class RoutePolicy:
    """``CF_ACCESS_PROTECT_ALL`` and ``CF_ACCESS_PUBLIC_ENDPOINTS`` of one app."""

    protect_all: bool = False
    public_endpoints: frozenset[str] = frozenset()


class AccessState:
    """Everything kept for one app, in ``app.extensions["cf_access"]``."""

    __slots__ = ("_checks_apart", "checker", "routes", "users")

    def __init__(self, checker: AccessChecker, users: UserLoading, routes: RoutePolicy) -> None:
        #: Settings, keys, caches, verifier and policy: checks every request.
        self.checker = checker
        #: The extension object's user loader, shared by every app it set up.
        self.users = users
        #: Deny by default and the endpoints it leaves public.
        self.routes = routes
        #: Per endpoint, :func:`~flask_cf_access._flask.guards.checks_apart`.
        self._checks_apart: dict[str, int] = {}

    def checks_apart(self, app: Flask, endpoint: str) -> int:
        """How many guards may check a request to ``endpoint`` apart from one judging
        its declared guards together; counted once per endpoint (routes and hooks
        are fixed once the app serves requests)."""
        count = self._checks_apart.get(endpoint)
        if count is None:
            count = checks_apart(app, endpoint)
            # Kept once the app served a request (before, hooks may still come:
            # a test_request_context).
            if app._got_first_request:
                self._checks_apart[endpoint] = count
        return count


def state_of(app: Flask) -> AccessState | None:
    """The state ``init_app`` installed on ``app``; ``None`` when it was not called."""
    state = app.extensions.get(EXTENSION_KEY)
    return state if isinstance(state, AccessState) else None


def access_state(app: Flask | None = None) -> AccessState:
    """The state of ``app``, by default the current app.

    :raises RuntimeError: ``CloudflareAccess.init_app`` was not called on it,
        or there is no ``app`` and no app context.
    """
    if app is None:
        if not has_app_context():
            raise RuntimeError(
                "No app: pass app=, or work in an app context (with app.app_context():)."
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AccessState):
        raise RuntimeError(NOT_SET_UP)
    return state


def verify_token(
    token: str | None, requirement: Requirement | None = None, *, app: Flask | None = None
) -> AccessIdentity:
    """The identity of ``token``, checked outside a request: a websocket, a task, the CLI.

    ``token`` is an application token, as a request sends it in
    ``Cf-Access-Jwt-Assertion`` or ``CF_Authorization`` (``None`` or empty:
    no token, ``missing_token``). It is judged as
    :func:`~flask_cf_access.require_access` judges a request's token on ``app``
    (by default the current app): the signature with the team's keys, the
    claims (audience, issuer, expiry, age), then the app-wide rules
    (``CF_ACCESS_ALLOWED_EMAILS`` and ``_DOMAINS``, known service tokens,
    ``CF_ACCESS_REQUIRE_MFA``, ``CF_ACCESS_REQUIRE_POSTURE``), then
    ``requirement`` if given::

        identity = verify_token(token, require(roles=["admin"]), app=app)

    What only a request has is not judged: the application its path falls
    under (with ``CF_ACCESS_APPLICATIONS``, any configured application's token
    passes unless ``requirement`` names one, ``require(application=...)``),
    cross-site forgery, and the account (the user loader is not called).
    Nothing is put on ``g``, logged or signalled: the caller has the error
    and its reason.

    :param requirement: a :func:`~flask_cf_access.require` requirement; by
        default any verified token.
    :param app: the Flask app whose settings and keys judge the token; by
        default the current app.
    :raises AccessUnauthorized: 401, no token or one that does not verify
        (its :attr:`~flask_cf_access.AccessError.reason` says why).
    :raises AccessForbidden: 403, refused by an app-wide rule or ``requirement``.
    :raises AccessUnavailable: 503, keys, groups or the profile could not be had.
    :raises TypeError: ``token`` is not a string, or ``requirement`` not a
        :class:`~flask_cf_access.Requirement`.
    :raises RuntimeError: no ``app`` and no app context, or ``init_app`` was
        not called on the app.
    """
    if token is not None and not isinstance(token, str):
        raise TypeError("verify_token() takes the token as a str (decode bytes first).")
    if requirement is not None and not isinstance(requirement, Requirement):
        raise TypeError("verify_token() takes a requirement made by require().")
    checker = access_state(app).checker
    return checker.verify_token(token, ANY_TOKEN if requirement is None else requirement)
