"""The Flask extension object: ``init_app`` installs each app's state and hooks.

The top of the Flask layer: it wires up the modules below it (the checker,
the route policy, the user loader, the browser URLs) and nothing imports it
but the package itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app, request, request_tearing_down
from flask.typing import ResponseReturnValue

from .._core import browser as _browser
from .._core.assembly import checker_from_mapping
from .._core.caching import PrivateWhenChecked
from .._core.clock import Clock, system_time
from .._core.single_flight import Background
from .app_state import EXTENSION_KEY, AccessState, RoutePolicy, access_state
from .guards import PUBLIC_ATTRIBUTE
from .request import reset_request_access
from .routes import install_application_check, install_deny_by_default
from .session import add_expiry_header
from .users import UserLoader, UserLoading

F = TypeVar("F", bound=Callable[..., Any])

L = TypeVar("L", bound=UserLoader)


class CloudflareAccess:
    """Lets a Flask application trust Cloudflare Access.

    Holds no application: :meth:`init_app` reads and validates the app's
    ``CF_ACCESS_*`` settings and stores the app's own state (its checker with
    keys, caches and verifier; the user loader; the route policy) in
    ``app.extensions["cf_access"]``, so one instance serves many apps::

        cf_access = CloudflareAccess()

        def create_app():
            app = Flask(__name__)
            app.config.from_prefixed_env()
            cf_access.init_app(app)
            return app

    ``clock``, ``session`` and ``background`` are for tests: the time source,
    the ``requests.Session`` used to reach Cloudflare, and how work that no
    request waits out is started (key fetches and refreshes, get-identity
    calls): a callable given a job taking no argument, by default running each
    in a daemon thread. A test passes
    :func:`~flask_cf_access.testing.run_inline` to have a refresh done by the
    request that starts it (see :doc:`testing`).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        clock: Clock = system_time,
        session: requests.Session | None = None,
        background: Background | None = None,
    ) -> None:
        self._clock = clock
        self._session = session
        self._background = background
        self._users = UserLoading()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the app's settings and install the checker.

        Reads these keys of ``app.config``, all through
        :meth:`AccessSettings.from_mapping() <flask_cf_access.AccessSettings.from_mapping>`
        (each is the settings' attribute of its name less the prefix, lower
        case; see :doc:`configuration` for their meanings and defaults):

        - the team and its applications: ``CF_ACCESS_TEAM_DOMAIN`` (required),
          ``CF_ACCESS_AUDIENCE`` (required unless ``CF_ACCESS_APPLICATIONS``
          is given), ``CF_ACCESS_APPLICATIONS``, ``CF_ACCESS_CERTS_URL``,
          ``CF_ACCESS_IDENTITY_URL``;
        - tokens: ``CF_ACCESS_LEEWAY``, ``CF_ACCESS_MAX_TOKEN_AGE``,
          ``CF_ACCESS_TOKEN_CACHE_SIZE``;
        - keys and calls to Cloudflare: ``CF_ACCESS_KEYS_MAX_AGE``,
          ``CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL``, ``CF_ACCESS_LOAD_KEYS_ON_INIT``,
          ``CF_ACCESS_HTTP_TIMEOUT``, ``CF_ACCESS_UPSTREAM_WAIT``,
          ``CF_ACCESS_IDENTITY_CONCURRENCY``, ``CF_ACCESS_CACHE``,
          ``CF_ACCESS_PROFILE_MAX_AGE``;
        - who gets in: ``CF_ACCESS_ROLES``, ``CF_ACCESS_ALLOWED_EMAIL_DOMAINS``,
          ``CF_ACCESS_ALLOWED_EMAILS``, ``CF_ACCESS_SERVICE_TOKENS``,
          ``CF_ACCESS_REQUIRE_MFA``, ``CF_ACCESS_REQUIRE_POSTURE``;
        - browsers and responses: ``CF_ACCESS_CSRF_PROTECT``,
          ``CF_ACCESS_TRUSTED_ORIGINS``, ``CF_ACCESS_UNAUTHORIZED``,
          ``CF_ACCESS_PRIVATE_RESPONSES``, ``CF_ACCESS_EXPIRY_HEADER``;
        - routes: ``CF_ACCESS_PROTECT_ALL``, ``CF_ACCESS_PUBLIC_ENDPOINTS``;
        - the local stand-in only: ``CF_ACCESS_STAND_IN``.

        Any other ``CF_ACCESS_*`` key is warned of
        (:class:`~flask_cf_access.UnknownSettingWarning`).

        Loads the team's keys unless ``CF_ACCESS_LOAD_KEYS_ON_INIT`` is false;
        a failure to load them is logged, not raised: protected views answer
        503 until the keys can be had.

        Marks the response of every checked request ``Cache-Control: private``
        when it sets none of its own, unless ``CF_ACCESS_PRIVATE_RESPONSES`` is false.

        With ``CF_ACCESS_PROTECT_ALL`` true, installs a ``before_request``
        hook, ahead of the app's own, that asks every endpoint for a verified
        token unless it is marked public (:meth:`public`, or listed in
        ``CF_ACCESS_PUBLIC_ENDPOINTS``).

        With ``CF_ACCESS_EXPIRY_HEADER`` true, admitted responses say when
        their token expires (``Access-Session-Expires``).

        Views and blueprints that name their Access application
        (``require(application=...)``, ``access_guard(application=...)``) must
        agree with ``CF_ACCESS_APPLICATIONS``: the routes registered by now are
        checked here, every route before the first request.

        :raises ConfigurationError: naming the first missing or invalid setting,
            or the routes whose named application the path map contradicts.
        :raises RuntimeError: ``init_app`` was already called on ``app``.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "CloudflareAccess.init_app was already called on this app; call it once."
            )
        checker = checker_from_mapping(
            app.config, session=self._session, clock=self._clock, background=self._background
        )
        settings = checker.settings
        routes = RoutePolicy(
            protect_all=settings.protect_all, public_endpoints=settings.public_endpoints
        )
        app.extensions[EXTENSION_KEY] = AccessState(checker, self._users, routes)
        if routes.protect_all:
            install_deny_by_default(app)
        install_application_check(app)
        app.before_request(_answer_automatic_options)
        if settings.expiry_header:
            app.after_request(add_expiry_header)
        if settings.private_responses:
            # On the answer as it leaves the app: after the view, the app's
            # own after_request functions and any middleware inside.
            app.wsgi_app = PrivateWhenChecked(app.wsgi_app)  # type: ignore[method-assign]
        app.context_processor(self._template_context)
        # An app context pushed around several requests (tests, CLI commands,
        # task runners) keeps its g between them: no request, protected or
        # not, may see the identity, user or optional mark of the one before.
        # What a request kept goes when its context is torn down (dispatched
        # or not: test_request_context too), after the app's own
        # teardown_request functions, which may still read it.
        request_tearing_down.connect(reset_request_access, app)

    @staticmethod
    def public(view: F) -> F:
        """Mark a view as needing no token under ``CF_ACCESS_PROTECT_ALL``::

            @app.get("/health")
            @cf_access.public
            def health(): ...

        The route audit lists it as public; ``--strict`` does not flag it.
        """
        setattr(view, PUBLIC_ATTRIBUTE, True)
        return view

    def user_loader(self, loader: L) -> L:
        """Register ``loader(identity) -> user | None``, as a decorator.

        It turns a verified identity into the app's own user, for
        :data:`~flask_cf_access.current_user` and
        :func:`~flask_cf_access.get_user`: at most once per request, never for
        a refused request. On a route that needs an account (the default) it
        runs with the check, before the view, and ``None`` (no account here)
        refuses the request (403, ``Reason.NO_ACCOUNT``); where no account is
        needed (``account=False``, an optional route) it runs when the user is
        first read, and ``None`` means nobody. Return
        :class:`~flask_cf_access.NewUser` around an account just created.
        One loader serves every app this extension object sets up, whether
        registered before or after :meth:`init_app`.
        """
        self._users.loader = loader
        return loader

    def init_login_manager(self, login_manager: Any) -> None:
        """Make a Flask-Login ``LoginManager`` take its user from the Access token.

        Sets its ``request_loader`` to the token check and this extension's
        user loader, with the token verified on every request; the session
        and the "remember me" cookie are never read to find a user (see
        :doc:`users`).
        """
        # Imported here: Flask-Login is an optional dependency.
        from .login import init_login_manager

        init_login_manager(login_manager)

    def login_url(self, next: str | None = None) -> str:
        """The Access login page for this app, coming back to ``next`` (default: this page).

        ``https://<team>/cdn-cgi/access/login/<this host>?kid=<aud>&redirect_url=<next>``;
        with a local stand-in, its sign-in page. In templates: ``cf_access.login_url()``.
        With ``CF_ACCESS_APPLICATIONS``, ``kid`` is that of the application ``next`` is under.

        :raises ValueError: ``next`` is not a path on this host (``/…``).
        """
        checker = access_state().checker
        settings = checker.settings
        if next is None:
            audience = _browser.login_audience(
                checker.applications, request.host, request.environ.get("PATH_INFO") or "/"
            )
            return _browser.login_redirect_for(settings, request.host, request.full_path, audience)
        audience = _browser.login_audience(
            checker.applications, request.host, urlsplit(next).path or "/"
        )
        return _browser.login_url(settings, request.host, next, audience)

    def logout_url(self) -> str:
        """This app's Access logout, ``<this host>/cdn-cgi/access/logout`` (or the stand-in's).

        Ends the Access session and drops the ``CF_Authorization`` cookie.
        """
        return _browser.logout_url(access_state().checker.settings, request.host_url)

    def team_logout_url(self) -> str:
        """The team-wide Access logout, ``https://<team>/cdn-cgi/access/logout``."""
        return _browser.team_logout_url(access_state().checker.settings)

    def _template_context(self) -> dict[str, Any]:
        """Templates get ``cf_access``: ``{{ cf_access.login_url() }}``, ``logout_url()``."""
        return {"cf_access": self}


def _answer_automatic_options() -> ResponseReturnValue | None:
    """Answer Flask's automatic ``OPTIONS`` before any guard in ``before_request`` runs.

    Flask answers it without view code; a blueprint guard would otherwise
    refuse a CORS preflight, which never carries the Access cookie.
    """
    if request.method == "OPTIONS":
        rule = request.url_rule
        if rule is not None and getattr(rule, "provide_automatic_options", False):
            return current_app.make_default_options_response()
    return None
