"""Optional identity: no token lets a request through as nobody; a bad one does not."""

from __future__ import annotations

from flask import Flask, g, request

from ._identity import AccessIdentity
from ._request import verify_for_app
from ._requirements import ANY_TOKEN, Requirement
from ._tokens import sent_token
from ._users import OPTIONAL_KEY


def request_has_token() -> bool:
    """Whether the current request sends a token to check, as the checker chooses it.

    The header is authoritative: when present, its value is the token (an
    empty one is none); only without it is the ``CF_Authorization`` cookie read.
    """
    header, cookie = sent_token(request._get_current_object())  # type: ignore[attr-defined]
    return bool(header or cookie)


def verify_optionally_for_app(
    app: Flask, requirement: Requirement = ANY_TOKEN
) -> AccessIdentity | None:
    """Check the current request of ``app`` if it sends a token; ``None`` if it sends none.

    A token that is sent is checked exactly as on a required route: a bad one
    is still a 401, so breaking a token never downgrades a request to
    anonymous. A request without one is not refused, logged or signalled.
    Either way the request is marked optional, so the user accessors answer
    ``None`` ("nobody") instead of raising.
    """
    identity = verify_for_app(app, requirement) if request_has_token() else None
    setattr(g, OPTIONAL_KEY, True)
    return identity
