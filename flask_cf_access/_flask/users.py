"""From a verified identity to the app's own user: the user loader and its answer.

The app registers one loader on the extension object
(``@cf_access.user_loader``); ``init_app`` puts the extension's
:class:`UserLoading` in the app's state beside the checker, so a loader
registered before or after ``init_app`` serves every app of that extension.
When the loader runs, and what a request keeps of its answer, is the request
primitive's business (:mod:`flask_cf_access._request`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import Flask

from .._core.identity import AccessIdentity
from .._core.signals import user_loaded

U = TypeVar("U")


@dataclass(frozen=True)
class NewUser(Generic[U]):
    """What a user loader returns for an account it has just created.

    The request gets ``user`` as its user, like a plain return, and
    :data:`~flask_cf_access.user_loaded` is sent with ``created=True``::

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


def load_user(app: Flask, loader: UserLoader, identity: AccessIdentity) -> Any:
    """The user ``loader`` gives for ``identity`` (``None``: no account), signalled.

    :data:`~flask_cf_access.user_loaded` is sent for a user, not for ``None``.
    A loader's exception is not caught.
    """
    answer = loader(identity)
    created = isinstance(answer, NewUser)
    user = answer.user if created else answer
    if user is not None and user_loaded.receivers:
        user_loaded.send(app, user=user, identity=identity, created=created)
    return user
