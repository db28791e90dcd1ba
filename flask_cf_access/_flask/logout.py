"""A ready "log out" view: clears the Flask session and leaves through Access."""

from __future__ import annotations

from flask import Blueprint, redirect, request, session
from flask.sessions import NullSession
from werkzeug.wrappers import Response

from .._core.browser import logout_url
from .app_state import access_state


def logout_blueprint(name: str = "cf_access_logout", *, url: str = "/logout") -> Blueprint:
    """A blueprint whose ``url`` (GET or POST) clears the Flask session and leaves through Access.

    ::

        app.register_blueprint(logout_blueprint())
        # <a href="{{ url_for('cf_access_logout.logout') }}">Log out</a>

    The browser is sent to :meth:`CloudflareAccess.logout_url`, where Access
    ends its session and drops the ``CF_Authorization`` cookie.
    """
    blueprint = Blueprint(name, __name__)

    @blueprint.route(url, methods=["GET", "POST"])
    def logout() -> Response:
        # An app without SECRET_KEY has no session to clear (Flask's NullSession
        # refuses every change): the logout itself still works.
        if not isinstance(session._get_current_object(), NullSession):  # type: ignore[attr-defined]
            session.clear()
        response = redirect(logout_url(access_state().checker.settings, request.host_url))
        response.headers["Cache-Control"] = "no-store"  # a kept copy would not log out
        return response

    return blueprint
