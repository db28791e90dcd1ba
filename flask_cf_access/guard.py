"""The verification primitive for Flask requests, and the accessors of its result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from flask import Flask, current_app, g, request
from werkzeug.local import LocalProxy

from .errors import NoAccessContext
from .extension import EXTENSION_KEY, forget_identity, get_gate
from .gate import AccessGate
from .identity import AccessIdentity
from .tokens import TOKEN_COOKIE, TOKEN_ENVIRON_KEY

#: The class of ``g`` in an app that does not set its own ``app_ctx_globals_class``.
_FLASK_GLOBALS = Flask.app_ctx_globals_class


def verify_access_in_request(
    *, groups: Iterable[str] = (), allow_service_tokens: bool = True
) -> AccessIdentity:
    """Verify the current request's token and admit or refuse its identity.

    On success the verified claims are put on ``g.cf_access_claims`` (a
    read-only mapping) and the identity on ``g.cf_access_identity``; on
    failure nothing is put on ``g`` (what an earlier check put there is
    removed first), one line is logged and the refusal is raised. Either
    way a signal is sent, with the app as sender:
    :data:`~flask_cf_access.signals.access_granted` or
    :data:`~flask_cf_access.signals.access_denied`. Call it from your own
    guards, e.g. a blueprint's ``before_request``.

    :param groups: if given, the identity must belong to one of them (by name
        or id); a single string is one group.
    :param allow_service_tokens: ``False`` refuses machines holding a service token.
    :raises TypeError: a group that is not a non-empty string.
    :raises AccessUnauthorized: 401, no token or one that does not verify.
    :raises AccessForbidden: 403, a refused service token, or not in the groups.
    :raises AccessUnavailable: 503, keys or identity could not be had.
    """
    return verify_for_app(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        groups=group_names(groups),
        allow_service_tokens=allow_service_tokens,
    )


def verify_for_app(
    app: Flask, *, groups: tuple[str, ...] = (), allow_service_tokens: bool = True
) -> AccessIdentity:
    """:func:`verify_access_in_request` for the current request of ``app``, the current app.

    What an earlier check left on ``g`` is removed first: an app context
    outlives its requests when one was pushed around them (tests, CLI
    commands, task runners), and an identity belongs to one request only.
    """
    context_globals = g._get_current_object()
    forget_identity(context_globals)
    this_request = request._get_current_object()  # type: ignore[attr-defined]
    header = this_request.environ.get(TOKEN_ENVIRON_KEY)
    gate = app.extensions.get(EXTENSION_KEY)
    if not isinstance(gate, AccessGate):
        gate = get_gate(app)  # which says to call init_app
    identity = gate.check_request(
        app,
        this_request.method,
        this_request.path,
        header,
        # The header is authoritative: the cookie is only read without it.
        this_request.cookies.get(TOKEN_COOKIE) if header is None else None,
        groups=groups,
        allow_service_tokens=allow_service_tokens,
    )
    if type(context_globals) is _FLASK_GLOBALS:
        # All that Flask's own g does on setattr, without a Python call per attribute.
        namespace = context_globals.__dict__
        namespace["cf_access_identity"] = identity
        namespace["cf_access_claims"] = identity.claims
    else:  # an app's own g class decides what setting an attribute means
        context_globals.cf_access_identity = identity
        context_globals.cf_access_claims = identity.claims
    return identity


def group_names(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` as a tuple of names or ids; a single string is one group.

    :raises TypeError: a group that is not a non-empty string.
    """
    names = (groups,) if isinstance(groups, str) else tuple(groups)
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError("groups must be group names or ids, as non-empty strings.")
    return names


def get_identity() -> AccessIdentity:
    """The identity admitted for the current request.

    :raises NoAccessContext: outside a request that passed a check.
    """
    identity = g.get("cf_access_identity") if g else None
    if not isinstance(identity, AccessIdentity):
        raise NoAccessContext(
            "No verified Cloudflare Access identity: this is not a protected request."
        )
    return identity


def get_claims() -> Mapping[str, Any]:
    """The verified claims of the current request (read-only).

    :raises NoAccessContext: outside a request that passed a check.
    """
    return get_identity().claims


#: The identity of the current request, as a proxy; raises outside a protected one.
current_identity = cast(AccessIdentity, LocalProxy(get_identity))
