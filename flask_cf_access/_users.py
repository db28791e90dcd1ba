"""From a verified identity to the app's own user: the user loader and its accessors.

The app registers one loader on the extension object
(``@cf_access.user_loader``); ``init_app`` puts the extension's
:class:`UserLoading` in ``app.extensions`` beside the checker, so a loader
registered before or after ``init_app`` serves every app of that extension.
The loader runs lazily, when a view first asks for the user, and at most once
per request: its answer is kept on ``g`` with the identity it was given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from flask import Flask, current_app, g, request
from werkzeug.local import LocalProxy

from ._app_state import NOT_SET_UP, USERS_KEY
from ._errors import AccessError, NoAccessContextError, Reason, refusal
from ._identity import AccessIdentity
from ._reporting import report_refusal
from ._request import get_identity
from ._signals import user_loaded

logger = logging.getLogger("flask_cf_access")

#: Where a request keeps ``(identity, user)`` once the loader has answered.
_LOADED_KEY = "_cf_access_user"

#: Set on ``g`` by an optional check (``@require_access(optional=True)``):
#: "nobody" is an answer there, both for no token and for no account.
OPTIONAL_KEY = "_cf_access_optional"

_NO_CONTEXT = "No verified Cloudflare Access identity: this is not a protected request."

U = TypeVar("U")


@dataclass(frozen=True)
class NewUser(Generic[U]):
    """What a user loader returns for an account it has just created.

    The request gets ``user`` as its user, like a plain return, and
    :data:`~flask_cf_access._signals.user_loaded` is sent with ``created=True``::

        @cf_access.user_loader
        def load_user(identity):
            user = User.query.filter_by(sub=identity.sub).one_or_none()
            if user is None:
                user = create_user(identity)
                return NewUser(user)
            return user
    """

    user: U


#: ``fn(identity) -> user | NewUser(user) | None``; ``None``: no account here.
UserLoader = Callable[[AccessIdentity], Any]


class UserLoading:
    """The user loader of one extension object, shared by every app it set up."""

    __slots__ = ("loader",)

    def __init__(self) -> None:
        self.loader: UserLoader | None = None


def get_user() -> Any:
    """The app's user for the current request, from the app's user loader.

    The loader runs the first time this is asked in a request, with the
    verified identity; later calls in the same request get the same answer.
    A loader's exception is not caught.

    On a route with ``@require_access(optional=True)``, ``None`` means
    nobody: no token was sent, or the identity has no account here.

    :raises NoAccessContextError: outside a request that passed a check.
    :raises AccessForbidden: 403 (``Reason.NO_ACCOUNT``), the loader gave ``None``.
    :raises RuntimeError: no user loader was registered.
    """
    try:
        # The real g, once: every attribute read through the proxy costs a lookup.
        context_globals = g._get_current_object()
    except RuntimeError as exc:  # outside an app context
        raise NoAccessContextError(_NO_CONTEXT) from exc
    identity = get_identity(default=None)
    optional = bool(context_globals.get(OPTIONAL_KEY))
    if identity is None:
        if optional:
            return None
        raise NoAccessContextError(_NO_CONTEXT)
    loaded = context_globals.get(_LOADED_KEY)
    if loaded is not None and loaded[0] is identity:
        user = loaded[1]
        if user is None and not optional:
            raise refusal(Reason.NO_ACCOUNT)
        return user
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    user = _run_loader(app, identity)
    setattr(context_globals, _LOADED_KEY, (identity, user))
    if user is None and not optional:
        raise _refuse_without_account(app, identity)
    return user


def _run_loader(app: Flask, identity: AccessIdentity) -> Any:
    users = app.extensions.get(USERS_KEY)
    if not isinstance(users, UserLoading):
        raise RuntimeError(NOT_SET_UP)
    if users.loader is None:
        raise RuntimeError(
            "No user loader: register one with @cf_access.user_loader before asking for the user."
        )
    answer = users.loader(identity)
    created = isinstance(answer, NewUser)
    user = answer.user if created else answer
    if user is not None and user_loaded.receivers:
        user_loaded.send(app, user=user, identity=identity, created=created)
    return user


def _refuse_without_account(app: Flask, identity: AccessIdentity) -> AccessError:
    """The 403 for an identity without an account, logged and signalled like any refusal."""
    error = refusal(Reason.NO_ACCOUNT)
    report_refusal(app, error, method=request.method, path=request.path, identity=identity)
    return error


#: The app's user for the current request, as a proxy (see :func:`get_user`).
current_user = cast(Any, LocalProxy(get_user))
