"""The Flask extension object and the per-app state it installs."""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask, current_app, g, request_started

from .gate import AccessGate, Clock, system_time

#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "cf_access"

#: The class of ``g`` in an app that does not set its own ``app_ctx_globals_class``.
_FLASK_GLOBALS = Flask.app_ctx_globals_class


class CloudflareAccess:
    """Lets a Flask application trust Cloudflare Access.

    Holds no application: :meth:`init_app` reads and validates the app's
    ``CF_ACCESS_*`` settings and stores an :class:`AccessGate` in
    ``app.extensions["cf_access"]``, so one instance serves many apps::

        cf_access = CloudflareAccess()

        def create_app():
            app = Flask(__name__)
            app.config.from_prefixed_env()
            cf_access.init_app(app)
            return app

    ``clock`` and ``session`` are for tests: the time source, and the
    ``requests.Session`` used to reach Cloudflare.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        clock: Clock = system_time,
        session: requests.Session | None = None,
    ) -> None:
        self._clock = clock
        self._session = session
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the app's settings and install the gate.

        Loads the team's keys unless ``CF_ACCESS_LOAD_KEYS_ON_INIT`` is false;
        a failure to load them is logged, not raised: protected views answer
        503 until the keys can be had.

        :raises ConfigurationError: naming the first missing or invalid setting.
        """
        app.extensions[EXTENSION_KEY] = AccessGate.from_config(
            app.config, session=self._session, clock=self._clock
        )
        # An app context pushed around several requests (tests, CLI commands,
        # task runners) keeps its g between them: no request, protected or
        # not, may see the identity of the one before. The signal comes before
        # any before_request function, so it never undoes a guard's check.
        request_started.connect(_forget_previous_identity, app)


def _forget_previous_identity(sender: Flask, **extra: Any) -> None:
    forget_identity(g._get_current_object())


def forget_identity(context_globals: Any) -> None:
    """Remove the identity and claims a check put on ``g`` (given as ``context_globals``)."""
    if type(context_globals) is _FLASK_GLOBALS:
        namespace = context_globals.__dict__
        namespace.pop("cf_access_identity", None)
        namespace.pop("cf_access_claims", None)
        return
    for name in ("cf_access_identity", "cf_access_claims"):
        if hasattr(context_globals, name):
            delattr(context_globals, name)


def get_gate(app: Flask | None = None) -> AccessGate:
    """The gate of ``app``, by default the current app.

    :raises RuntimeError: ``CloudflareAccess.init_app`` was not called on it.
    """
    gate = (app or current_app).extensions.get(EXTENSION_KEY)
    if not isinstance(gate, AccessGate):
        raise RuntimeError(
            "Cloudflare Access is not set up on this app: call CloudflareAccess.init_app(app)."
        )
    return gate
