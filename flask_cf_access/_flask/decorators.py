"""The decorators: each is the primitive plus ``ensure_sync``.

:func:`require_access` is :func:`~flask_cf_access.verify_access_in_request`
(``check_view_guard``, with the same requirement, ``optional`` and ``account``)
run before the view through ``ensure_sync``; every other decorator is
``require_access(require(...), account=account)`` with the
:func:`~flask_cf_access.require` of its own arguments, and checks nothing of
its own beyond them.

Stacked on one view, in any order, they are merged into one wrapper with one
guard (every part must hold), so the request is verified and reported once,
and what the view admits does not depend on the order they were written in.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast, overload

from .._core.requirements import (
    IdentityCheck,
    Match,
    Requirement,
    require,
)
from .guards import (
    WRAPPED_ATTRIBUTE,
    Guard,
    make_guard,
    register_wrapper,
    stacked,
    view_guard,
    wrapped_view,
    wrappers,
)
from .request import check_view_guard

P = ParamSpec("P")
R = TypeVar("R")


def _guarded(view: Callable[P, R], guard: Guard) -> Callable[P, R]:
    """``view`` behind ``guard``: the primitive, then the view through ``ensure_sync``.

    On a view that is already one of these wrappers, the two guards become
    one (:func:`~flask_cf_access._request.stacked`, which refuses an
    ``optional`` that would waive the other's requirement).
    """
    inner = wrapped_view(view)
    if inner is not None:
        guard = stacked(guard, view_guard(view) or guard)
        view = inner
    # A wrapper inside this one (a decorator of the app's own, maybe around
    # more of these) may still refuse after this check: the grant is then its.
    defer_grant = next(wrappers(view), None) is not None
    # The last app whose ensure_sync() gave back the view itself (a plain
    # function): its next calls need not ask again. Async views always ask.
    # Asking on every call (inspect.iscoroutinefunction) costs about 0.45 µs
    # a request, which a role-protected view cannot spare: 1.10-1.11x the
    # bare view without this, 1.09x with it (benchmarks/bench_verify.py).
    sync_app: object = None

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal sync_app
        app = check_view_guard(guard, defer_grant)
        if sync_app is app:
            return view(*args, **kwargs)
        callable_view = app.ensure_sync(view)
        if callable_view is view:
            sync_app = app
        return cast(R, callable_view(*args, **kwargs))

    # What the route audit and the deny-by-default hook read: the guard on
    # the wrapper, and, on the function wrapped, that it was (if the
    # function itself gets registered, the decorator sat above @app.route).
    wrapper.__dict__.pop(WRAPPED_ATTRIBUTE, None)
    register_wrapper(wrapper, view, guard)
    with contextlib.suppress(AttributeError):  # a callable without attributes: nothing to flag
        setattr(view, WRAPPED_ATTRIBUTE, guard.requirement)
    return wrapper


def is_guarded(view: object) -> bool:
    """Whether ``view`` is a wrapper made by one of these decorators (not a copy of
    its attributes by another decorator's ``functools.wraps``)."""
    return wrapped_view(view) is not None


def _decorator(guard: Guard) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The decorator that guards a view with ``guard``."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        return _guarded(view, guard)

    return decorator


@overload
def require_access(
    requirement: Requirement | None = None,
    /,
    *,
    allow_service_tokens: bool = True,
    optional: bool = False,
    account: bool | None = None,
    application: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


@overload
def require_access(view: Callable[P, R], /) -> Callable[P, R]: ...


def require_access(
    view: Callable[P, R] | Requirement | None = None,
    /,
    *,
    allow_service_tokens: bool = True,
    optional: bool = False,
    account: bool | None = None,
    application: str | None = None,
) -> Any:
    """Let only requests with a verified Cloudflare Access token reach the view.

    Use it bare, ``@require_access``, or called,
    ``@require_access(allow_service_tokens=False)`` to refuse (403) machines
    holding a service token. Works on ``async def`` views too.

    Given a :class:`~flask_cf_access.Requirement`,
    ``@require_access(require(groups=["Ops"]) & require(check=on_call))``, it
    is :func:`~flask_cf_access.verify_access_in_request` with the same
    arguments, run before the view; ``@require_group``, ``@require_role``,
    ``@require_check``, ``@require_service_token`` and ``@require_context``
    are this with the :func:`~flask_cf_access.require` of their arguments.

    ``@require_access(optional=True)`` is for pages Access lets everyone see
    that greet a signed-in user: a request without a token reaches the view
    as nobody (``get_identity(default=None)`` and ``current_user`` give
    ``None``, and so does ``current_user`` for an identity without an
    account), while a token that is sent but does not verify is still a 401.
    ``optional`` is for a view where nothing else needs an identity: stacked
    with ``@require_group``, ``@require_role``, ``@require_check`` or
    ``@require_service_token``, in either order, it raises
    :class:`~flask_cf_access.ConfigurationError` (nobody could meet them);
    under a blueprint's guard, the guard's requirement applies to a request
    without a token (401).

    ``account=False``: the identity needs no account here (see
    :func:`~flask_cf_access.get_user`); by default, when a user loader is
    registered, an identity without one is refused (403, ``no_account``)
    before the view runs. Every decorator takes it.

    ``@require_access(application="admin")`` names the Access application of
    ``CF_ACCESS_APPLICATIONS`` the view belongs to (see :func:`require`).

    :raises ConfigurationError: at decoration time, ``optional`` with a
        requirement, or stacked with a decorator, that needs an identity.
    :raises TypeError: at decoration time, a first argument that is neither a
        view nor a :class:`~flask_cf_access.Requirement`.
    """
    requirement = view if isinstance(view, Requirement) else None
    if view is not None and requirement is None and not callable(view):
        raise TypeError(
            "require_access() takes the view (@require_access) or a Requirement made by"
            " require() (@require_access(require(...)))."
        )
    if not allow_service_tokens or application is not None:
        asked = require(allow_service_tokens=allow_service_tokens, application=application)
        requirement = asked if requirement is None else requirement & asked
    guard = make_guard(requirement, optional=optional, account=account)
    if view is not None and not isinstance(view, Requirement):
        return _guarded(view, guard)

    return _decorator(guard)


def require_group(
    *groups: str,
    match: Match = "any",
    allow_service_tokens: bool = True,
    account: bool | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through only identities in any of ``groups`` (all of them with
    ``match="all"``), by group name or id.

    A verified identity outside them gets 403 (``not_in_group``, or
    ``not_in_all_groups``). A service token has the groups
    ``CF_ACCESS_SERVICE_TOKENS`` gives it, none otherwise. A user's groups
    come from the token when it carries them, otherwise from the team's
    identity endpoint (503 if that fails).

    :raises TypeError: at decoration time, with no group or a non-string one.
    """
    if not groups:
        raise TypeError("require_group() needs one or more group names or ids, as strings.")
    requirement = require(groups=groups, match=match, allow_service_tokens=allow_service_tokens)
    return require_access(requirement, account=account)


def require_role(
    *roles: str,
    match: Match = "any",
    allow_service_tokens: bool = True,
    account: bool | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through only identities with any of ``roles`` (all of them with ``match="all"``).

    Roles come from ``CF_ACCESS_ROLES`` (role to groups) and, for a known
    service token, from ``CF_ACCESS_SERVICE_TOKENS``. Without one of them:
    403 (``no_role``, or ``not_all_roles``); groups that cannot be had: 503.

    :raises TypeError: at decoration time, with no role or a non-string one.
    """
    if not roles:
        raise TypeError("require_role() needs one or more role names, as strings.")
    requirement = require(roles=roles, match=match, allow_service_tokens=allow_service_tokens)
    return require_access(requirement, account=account)


def require_check(
    check: IdentityCheck, *, allow_service_tokens: bool = True, account: bool | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through only identities for which the predicate ``check(identity)`` returns ``True``.

    For what groups and roles do not say: a claim, a SAML attribute, the
    country. Anything but ``True`` answers 403 (``check_failed``); an
    exception raised by ``check`` is not caught. Stacks with the other
    decorators: every requirement must hold. The same as
    ``@require_access(require(check=check))``.

    :raises TypeError: at decoration time, when ``check`` is not callable.
    """
    requirement = require(check=check, allow_service_tokens=allow_service_tokens)
    return require_access(requirement, account=account)


def require_identity(
    check: IdentityCheck, *, allow_service_tokens: bool = True, account: bool | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Deprecated: the old name of :func:`require_check`, removed in the next release."""
    warnings.warn(
        "require_identity() is deprecated: use require_check(), the same decorator.",
        DeprecationWarning,
        stacklevel=2,
    )
    return require_check(check, allow_service_tokens=allow_service_tokens, account=account)


def require_service_token(
    *client_ids: str, account: bool | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through only service tokens: those ``client_ids`` (``<id>.access``), or any.

    A user gets 403 (``service_token_required``), another service token 403
    (``service_token_not_admitted``).

    :raises TypeError: at decoration time, with a client id that is not a string.
    """
    return require_access(require(service_tokens=client_ids), account=account)


def require_context(
    *,
    mfa: bool = False,
    amr: Iterable[str] = (),
    idp: Iterable[str] = (),
    posture: Iterable[str] = (),
    warp: bool = False,
    gateway: bool = False,
    country: Iterable[str] = (),
    max_login_age: int | None = None,
    client_certificate: bool = False,
    account: bool | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through only users whose Access profile meets every rule given::

        @app.get("/admin/keys")
        @require_role("admin")
        @require_context(posture=[DISK_ENCRYPTION], amr=["hwk"], max_login_age=3600)
        def keys(): ...

    The keywords are those of :func:`~flask_cf_access.require` (see
    :doc:`context-rules`); each refusal is a 403 with its own reason, and a
    service token, which has no profile, is refused. Stacks with the other
    decorators into one decision made before the view: every requirement
    must hold. These rules need an identity: stacked with
    ``@require_access(optional=True)`` it raises
    :class:`~flask_cf_access.ConfigurationError`.

    :raises TypeError: at decoration time, a rule of the wrong type.
    """
    requirement = require(
        mfa=mfa,
        amr=amr,
        idp=idp,
        posture=posture,
        warp=warp,
        gateway=gateway,
        country=country,
        max_login_age=max_login_age,
        client_certificate=client_certificate,
    )
    return require_access(requirement, account=account)
