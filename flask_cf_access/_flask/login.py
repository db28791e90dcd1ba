"""A bridge to Flask-Login: ``@login_required`` and ``current_user`` from the Access token.

Needs the ``login`` extra (``pip install 'flask-cf-access[login]'``)::

    login_manager = LoginManager()
    cf_access.init_login_manager(login_manager)

    def create_app():
        ...
        cf_access.init_app(app)
        login_manager.init_app(app)

The user is the one :meth:`CloudflareAccess.user_loader
<flask_cf_access.CloudflareAccess.user_loader>` gives for the request's token,
checked on every request. It is stateless: Flask-Login's own ways of finding
a user, the session's ``_user_id`` and the "remember me" cookie, are never
consulted, and nothing is written to the session, so no Flask-Login session
can outlive an Access logout or a revoked token, and a request whose token is
bad is never rescued by a session. Signing in and out is Access's business:
a bridged app has no use for ``login_user()`` or ``logout_user()`` (send people
to ``/cdn-cgi/access/logout`` instead).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request

try:
    from flask_login import LoginManager
    from flask_login.signals import (
        user_accessed,
        user_loaded_from_request,
    )
except ImportError as exc:
    raise ImportError(
        "The Flask-Login bridge needs Flask-Login: pip install 'flask-cf-access[login]'"
    ) from exc

from .guards import ANY_GUARD
from .request import (
    check_guard,
    get_identity,
    get_user,
    note_login_user,
    request_has_token,
)


def load_user_from_access(_request: Any = None) -> Any:
    """The user for the current request's token, or ``None`` when it sends none.

    Flask-Login's ``request_loader``. With no token the user is anonymous (so
    ``@login_required`` answers as Flask-Login does, 401 by default); a token
    that is sent is verified (401 if bad, 503 if the keys cannot be had) and
    given to the app's user loader (403, ``Reason.NO_ACCOUNT``, if it has no
    account here, refused with the check, before the user is read). A check
    already passed in this request is not repeated; after one that needed no
    account (``account=False``, an optional route), an identity without one
    is anonymous.
    """
    if get_identity(default=None) is None:
        if not request_has_token():
            return None
        check_guard(current_app._get_current_object(), ANY_GUARD)  # type: ignore[attr-defined]
    return get_user()


#: What the bridge relies on in Flask-Login, a private method it replaces and one it calls.
_REPLACED = ("_load_user", "_update_request_context_with_user")


def init_login_manager(login_manager: LoginManager) -> None:
    """Make ``login_manager`` take its user from the Access token only.

    Sets its ``request_loader`` to :func:`load_user_from_access`, and its user
    lookup to that loader alone: Flask-Login looks first at the session's
    ``_user_id`` and at the "remember me" cookie, and a lookup through either
    would let a session or cookie outlive the Access token (a logout, a
    revocation) or stand in for a bad one. Neither is read, and nothing is
    written to the session for these users. Flask-Login's ``user_accessed``
    and ``user_loaded_from_request`` signals are still sent.

    :raises RuntimeError: a Flask-Login whose ``LoginManager`` has not the
        methods the bridge replaces (it was written for Flask-Login 0.6).
    """
    for name in _REPLACED:
        if not callable(getattr(login_manager, name, None)):
            # Fail closed: without this replacement Flask-Login would find users
            # through the session and the "remember me" cookie again.
            raise RuntimeError(
                f"This Flask-Login has no LoginManager.{name}, which the Access bridge"
                " replaces to keep sessions out of it: use Flask-Login 0.6."
            )
    login_manager.request_loader(load_user_from_access)

    def load_user_statelessly() -> None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        user_accessed.send(app)
        user = load_user_from_access(request)
        if user is not None:
            user_loaded_from_request.send(app, user=user)
        login_manager._update_request_context_with_user(user)
        note_login_user()  # so that it is dropped with the request's other state

    # Flask-Login's _get_user() asks the app's manager for _load_user(): this
    # replaces, on this manager only, its lookup through session and cookie.
    login_manager._load_user = load_user_statelessly
