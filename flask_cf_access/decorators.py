"""``@require_access`` and ``@require_group``: thin wrappers on the primitive."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast, overload

from flask import current_app

from ._optional import verify_optionally_for_app
from .guard import verify_for_app

P = ParamSpec("P")
R = TypeVar("R")


def _guarded(
    view: Callable[P, R],
    *,
    groups: tuple[str, ...],
    allow_service_tokens: bool,
    optional: bool = False,
) -> Callable[P, R]:
    check = verify_optionally_for_app if optional else verify_for_app
    # The last app whose ensure_sync() gave back the view itself (a plain
    # function): its next calls need not ask again. Async views always ask.
    sync_app: object = None

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal sync_app
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        check(app, groups=groups, allow_service_tokens=allow_service_tokens)
        if sync_app is app:
            return view(*args, **kwargs)
        callable_view = app.ensure_sync(view)
        if callable_view is view:
            sync_app = app
        return cast(R, callable_view(*args, **kwargs))

    return wrapper


@overload
def require_access(view: Callable[P, R]) -> Callable[P, R]: ...


@overload
def require_access(
    *, allow_service_tokens: bool = True, optional: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def require_access(
    view: Callable[P, R] | None = None, *, allow_service_tokens: bool = True, optional: bool = False
) -> Any:
    """Let only requests with a verified Cloudflare Access token reach the view.

    Use it bare, ``@require_access``, or called,
    ``@require_access(allow_service_tokens=False)`` to refuse (403) machines
    holding a service token. Works on ``async def`` views too.

    ``@require_access(optional=True)`` is for pages Access lets everyone see
    that greet a signed-in user: a request without a token reaches the view
    as nobody (``get_identity(default=None)`` and ``current_user`` give
    ``None``, and so does ``current_user`` for an identity without an
    account), while a token that is sent but does not verify is still a 401.
    """
    if view is not None:
        return _guarded(
            view, groups=(), allow_service_tokens=allow_service_tokens, optional=optional
        )

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        return _guarded(
            view, groups=(), allow_service_tokens=allow_service_tokens, optional=optional
        )

    return decorator


def require_group(
    *groups: str, allow_service_tokens: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through only identities in any of ``groups``, by group name or id.

    A verified identity outside them gets 403; a service token has no groups,
    so it gets 403 too. The groups come from the token when it carries them,
    otherwise from the team's identity endpoint (503 if that fails).

    :raises TypeError: at decoration time, with no group or a non-string one.
    """
    if not groups or not all(isinstance(group, str) and group for group in groups):
        raise TypeError("require_group() needs one or more group names or ids, as strings.")

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        return _guarded(view, groups=groups, allow_service_tokens=allow_service_tokens)

    return decorator
