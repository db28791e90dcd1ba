"""The verification primitive for Flask requests, and the accessors of its result.

The one module that puts an identity on ``g``, reads it back and removes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast, overload

from flask import Flask, current_app, g, request
from werkzeug.local import LocalProxy

from ._app_state import EXTENSION_KEY, get_checker
from ._checker import AccessChecker
from ._csrf import EXEMPT_ATTRIBUTE, SAFE_METHODS
from ._errors import NoAccessContextError
from ._identity import AccessIdentity
from ._requirements import ANY_TOKEN, Requirement, require
from ._tokens import sent_token

#: Where on ``g`` an admitted request keeps its identity.
IDENTITY_KEY = "cf_access_identity"
#: Where on ``g`` an admitted request keeps its identity and its claims.
_IDENTITY_NAMES = (IDENTITY_KEY, "cf_access_claims")


def verify_access_in_request(
    *,
    groups: Iterable[str] = (),
    allow_service_tokens: bool = True,
    requirement: Requirement | None = None,
) -> AccessIdentity:
    """Verify the current request's token and admit or refuse its identity.

    On success the verified claims are put on ``g.cf_access_claims`` (a
    read-only mapping) and the identity on ``g.cf_access_identity``; on
    failure nothing is left on ``g`` (what an earlier check put there is
    removed), one line is logged and the refusal is raised. Either
    way a signal is sent, with the app as sender:
    :data:`~flask_cf_access.access_granted` or
    :data:`~flask_cf_access.access_denied`. Call it from your own
    guards, e.g. a blueprint's ``before_request``.

    :param groups: if given, the identity must belong to one of them (by name
        or id); a single string is one group.
    :param allow_service_tokens: ``False`` refuses machines holding a service token.
    :param requirement: a :func:`~flask_cf_access.require` requirement (roles,
        all-of, predicates, service tokens), judged with ``groups`` and
        ``allow_service_tokens`` when those are given too.
    :raises TypeError: a group that is not a non-empty string.
    :raises AccessUnauthorized: 401, no token or one that does not verify.
    :raises AccessForbidden: 403, refused by an app-wide rule or the requirement.
    :raises AccessUnavailable: 503, keys or identity could not be had.
    """
    names = group_names(groups)
    if names or not allow_service_tokens:
        asked = require(groups=names, allow_service_tokens=allow_service_tokens)
        requirement = asked if requirement is None else requirement & asked
    return verify_for_app(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        ANY_TOKEN if requirement is None else requirement,
    )


def verify_for_app(app: Flask, requirement: Requirement = ANY_TOKEN) -> AccessIdentity:
    """:func:`verify_access_in_request` for the current request of ``app``, the current app.

    On failure, what an earlier check left on ``g`` is removed: an app
    context outlives its requests when one was pushed around them (tests,
    CLI commands, task runners), and an identity belongs to one request only.
    """
    this_request = request._get_current_object()  # type: ignore[attr-defined]
    checker = app.extensions.get(EXTENSION_KEY)
    if not isinstance(checker, AccessChecker):
        checker = get_checker(app)  # which says to call init_app
    header, cookie = sent_token(this_request)
    try:
        identity = checker.check_request(
            app,
            this_request,
            header,
            cookie,
            requirement,
            csrf_exempt=this_request.method not in SAFE_METHODS
            and _view_is_csrf_exempt(app, this_request.endpoint),
        )
    except BaseException:
        forget_identity()
        raise
    context_globals = g._get_current_object()
    context_globals.cf_access_identity = identity
    context_globals.cf_access_claims = identity.claims
    return identity


def forget_identity() -> None:
    """Remove the identity and claims a check put on ``g``.

    Runs at the start of every request (``request_started``), protected or
    not: ``g.pop`` costs a tenth of ``hasattr``, which raises inside ``g``'s
    ``__getattr__`` for every name it does not hold.
    """
    context_globals = g._get_current_object()
    for name in _IDENTITY_NAMES:
        context_globals.pop(name, None)


def group_names(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` as a tuple of names or ids; a single string is one group.

    :raises TypeError: a group that is not a non-empty string.
    """
    names = (groups,) if isinstance(groups, str) else tuple(groups)
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError("groups must be group names or ids, as non-empty strings.")
    return names


def _view_is_csrf_exempt(app: Flask, endpoint: str | None) -> bool:
    """Whether the view of ``endpoint`` was marked with :func:`csrf_exempt`."""
    view = app.view_functions.get(endpoint) if endpoint is not None else None
    return getattr(view, EXEMPT_ATTRIBUTE, False) is True


D = TypeVar("D")

#: Marks "no default given" for :func:`get_identity`.
_RAISE: Any = object()


@overload
def get_identity() -> AccessIdentity: ...


@overload
def get_identity(default: D) -> AccessIdentity | D: ...


def get_identity(default: Any = _RAISE) -> Any:
    """The identity admitted for the current request.

    :param default: returned instead of raising when there is none, e.g.
        ``get_identity(default=None)`` on a ``@require_access(optional=True)`` route.
    :raises NoAccessContextError: outside a request that passed a check, without ``default``.
    """
    identity = g.get("cf_access_identity") if g else None
    if not isinstance(identity, AccessIdentity):
        if default is not _RAISE:
            return default
        raise NoAccessContextError(
            "No verified Cloudflare Access identity: this is not a protected request."
        )
    return identity


def get_claims() -> Mapping[str, Any]:
    """The verified claims of the current request (read-only).

    :raises NoAccessContextError: outside a request that passed a check.
    """
    return get_identity().claims


#: The identity of the current request, as a proxy; raises outside a protected one.
current_identity = cast(AccessIdentity, LocalProxy(get_identity))
