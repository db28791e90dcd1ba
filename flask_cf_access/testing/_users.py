"""What the app's user loader did during a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._signals import user_loaded

if TYPE_CHECKING:
    from flask import Flask

    from .._identity import AccessIdentity


@dataclass(frozen=True)
class UserLoad:
    """One answer of the app's user loader: the user, for which identity, and whether new."""

    user: Any
    identity: AccessIdentity
    created: bool


@contextmanager
def capture_user_loads(app: Flask) -> Iterator[list[UserLoad]]:
    """Collect every user the app's loader gives while the block runs (from any thread)::

        with capture_user_loads(app) as loads:
            client.get("/", as_user="new@example.com")
        assert [load.created for load in loads] == [True]  # a first visit

    A loader's ``None`` (no account) is not a load: it is an ``access_denied``.
    """
    loads: list[UserLoad] = []

    def record(_sender: Flask, *, user: Any, identity: AccessIdentity, created: bool) -> None:
        loads.append(UserLoad(user, identity, created))

    with user_loaded.connected_to(record, app):
        yield loads
