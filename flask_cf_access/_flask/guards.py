"""What a guard asks of a request, and what the package writes on views and hooks.

A :class:`Guard` is one guard's requirement with its two ways of answering
nobody (``optional``, ``account``), and :func:`make_guard` and
:func:`stacked` the only ways to make or combine one. The view markers live
here too, written once and read back by the request check, deny by default,
the route audit and the CLI: the guard a decorator's wrapper or an
``access_guard`` hook carries, the view a wrapper wraps, ``@cf_access.public``
and ``@csrf_exempt``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask

from .._core.errors import ConfigurationError
from .._core.requirements import ANY_TOKEN, Requirement

#: Set on a guard (a decorator's wrapper, an ``access_guard`` hook): its :class:`Guard`.
GUARD_ATTRIBUTE = "__cf_access_guard__"


@dataclass(frozen=True)
class Guard:
    """What one guard asks of a request: a requirement, and two ways of answering nobody.

    Made with :func:`make_guard`, which refuses the combinations that admit
    nobody they mean to.
    """

    #: What the identity must be.
    requirement: Requirement = ANY_TOKEN
    #: ``True``: a request without a token passes as nobody.
    optional: bool = False
    #: Whether the identity must have an account (the user loader's user)
    #: before the view runs. ``None``: yes when a user loader is registered
    #: and the guard is not optional.
    account: bool | None = None

    def __and__(self, other: Guard) -> Guard:
        """Both guards on one request, failing closed: optional only if both are,
        no account only if neither needs one, every requirement applied.

        This is what guards meeting at request time add up to (a blueprint's
        guard and a view's decorators); decorators stacked on one view are
        combined by :func:`stacked`, which refuses an optional one that would
        waive another's requirement.
        """
        if other is self or (other == ANY_GUARD and _neutral_to(self)):
            return self
        if self == ANY_GUARD and _neutral_to(other):
            return other
        accounts = {self.account, other.account}
        return Guard(
            self.requirement & other.requirement,
            optional=self.optional and other.optional,
            # An account is waived only if every guard waives it.
            account=True if True in accounts else False if accounts == {False} else None,
        )

    def describe(self) -> str:
        """In words, for ``flask cf-access routes``: e.g. ``token (optional)``."""
        words = self.requirement.describe()
        if self.optional:
            words = words.replace("token", "token (optional)", 1)
        if self.account is False:
            words += "; no account needed"
        return words


#: A verified token, nothing more (and an account, when a user loader is registered).
ANY_GUARD = Guard()


def _neutral_to(guard: Guard) -> bool:
    """Whether ``ANY_GUARD & guard`` is ``guard``: it waives neither the token nor the account."""
    return not guard.optional and guard.account is not False


def make_guard(
    requirement: Requirement | None = None, *, optional: bool = False, account: bool | None = None
) -> Guard:
    """The :class:`Guard` for these options.

    :raises TypeError: ``requirement`` is not a :class:`Requirement`.
    :raises ConfigurationError: ``optional`` with a requirement that needs an
        identity, or with ``account=True``: nobody could meet it.
    """
    if requirement is None:
        requirement = ANY_TOKEN
    if not isinstance(requirement, Requirement):
        raise TypeError("requirement must be a Requirement made by require().")
    if optional and requirement.needs_identity:
        raise _waived(requirement)
    if optional and account is True:
        raise ConfigurationError(
            "optional=True lets a request without a token through as nobody, which has no"
            " account, but account=True asks for one: drop one of them."
        )
    if requirement is ANY_TOKEN and not optional and account is None:
        return ANY_GUARD
    return Guard(requirement, optional, account)


def stacked(first: Guard, second: Guard) -> Guard:
    """Two decorators on one view, as one guard: every requirement of both applies,
    and the view is optional if either says so (which only a view whose
    decorators need no identity may be).

    :raises ConfigurationError: one is optional and the other needs an
        identity, or they ask ``account=True`` and ``account=False``.
    :raises ValueError: the two requirements admit nobody together.
    """
    if {first.account, second.account} == {True, False}:
        raise ConfigurationError(
            "Decorators stacked on one view ask both account=True and account=False: keep one."
        )
    return make_guard(
        (first & second).requirement,
        optional=first.optional or second.optional,
        account=first.account if first.account is not None else second.account,
    )


def _waived(requirement: Requirement) -> ConfigurationError:
    return ConfigurationError(
        "optional=True lets a request without a token through as nobody, but this view"
        f" also requires {requirement.describe()!r}, which nobody meets. Remove"
        " optional=True (a request without a token then gets 401), or, for a page that"
        " greets everyone and shows more to some, keep optional=True alone and test the"
        " identity in the view (get_identity(default=None))."
    )


#: Set on the original function a decorator wrapped, so that a registered
#: original (the decorator placed above ``@app.route``) can be told apart.
WRAPPED_ATTRIBUTE = "__cf_access_wrapped_by__"
#: Set by ``@cf_access.public`` on a view that needs no token.
PUBLIC_ATTRIBUTE = "__cf_access_public__"
#: The view attribute :func:`csrf_exempt` sets.
EXEMPT_ATTRIBUTE = "_cf_access_csrf_exempt"

F = TypeVar("F", bound=Callable[..., object])


def csrf_exempt(view: F) -> F:
    """Let unsafe requests to ``view`` through whatever their origin.

    For endpoints meant to be posted to from elsewhere (a webhook behind a
    service token needs nothing: service tokens are never checked). Put it
    above or below ``@require_access``; it also exempts the view from a
    ``before_request`` guard calling ``verify_access_in_request()``.
    """
    setattr(view, EXEMPT_ATTRIBUTE, True)
    return view


#: Each wrapper a decorator made, to the view it wraps: a decorator stacked on
#: one of them wraps that view again, once, with both guards.
_WRAPPERS: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
    weakref.WeakKeyDictionary()
)


def register_wrapper(wrapper: Callable[..., Any], view: Callable[..., Any], guard: Guard) -> None:
    """Record ``wrapper`` as a decorator's guard of ``view``."""
    setattr(wrapper, GUARD_ATTRIBUTE, guard)
    _WRAPPERS[wrapper] = view


def wrapped_view(view: object) -> Callable[..., Any] | None:
    """The view a decorator's wrapper wraps; ``None`` for anything else."""
    if not callable(view):
        return None
    try:
        return _WRAPPERS.get(view)
    except TypeError:  # not hashable, so not one of ours
        return None


def view_guard(view: object) -> Guard | None:
    """The :class:`Guard` of a view made by the decorators; ``None`` for any other
    (a copy of its attributes by another decorator's ``functools.wraps`` included)."""
    if wrapped_view(view) is None:
        return None
    guard = getattr(view, GUARD_ATTRIBUTE, None)
    return guard if isinstance(guard, Guard) else None


def hooks_guard(app: Flask, endpoint: str) -> Guard | None:
    """What the ``access_guard`` hooks of the app and the endpoint's blueprints ask."""
    found: Guard | None = None
    for scope in scopes(endpoint):
        for hook in app.before_request_funcs.get(scope, ()):
            guard = getattr(hook, GUARD_ATTRIBUTE, None)
            if isinstance(guard, Guard):
                found = guard if found is None else found & guard
    return found


def endpoint_guard(app: Flask, endpoint: str) -> Guard | None:
    """Everything the guards declared on ``endpoint`` ask, hooks and decorators
    together; ``None`` when none is declared."""
    found = hooks_guard(app, endpoint)
    own = view_guard(app.view_functions.get(endpoint))
    if own is None or found is None:
        return own or found
    return found & own


def is_own_hook(hook: object) -> bool:
    """Whether ``hook`` is the app's, not this package's (deny by default, ``access_guard``)."""
    return not str(getattr(hook, "__module__", "")).startswith("flask_cf_access.")


def own_hooks(app: Flask, endpoint: str) -> list[Callable[..., Any]]:
    """The app's own ``before_request`` functions that run for ``endpoint``."""
    return [
        hook
        for scope in scopes(endpoint)
        for hook in app.before_request_funcs.get(scope, ())
        if is_own_hook(hook)
    ]


def wrappers(view: object) -> Iterator[tuple[object, bool]]:
    """Each wrapper ``view`` is made of, outermost first (``view`` itself if it is
    one), and whether it is one of the decorators' (``functools.wraps`` tells the
    others apart by their ``__wrapped__``)."""
    seen: set[int] = set()
    while view is not None and id(view) not in seen:
        seen.add(id(view))
        inner = wrapped_view(view)
        if inner is not None:
            yield view, True
        else:
            inner = getattr(view, "__wrapped__", None)
            if inner is None:
                return
            yield view, False
        view = inner


def checks_apart(app: Flask, endpoint: str) -> int:
    """How many guards may check a request to ``endpoint`` apart from one that judges
    the endpoint's declared guards together (the ``access_guard`` hooks and the
    decorators' wrapper registered as its view): the app's own ``before_request``
    functions, and the wrappers around the view below an outermost one of the
    decorators' (the app's own, and the decorators' under one of those)."""
    around = list(wrappers(app.view_functions.get(endpoint)))
    if around and around[0][1]:
        around = around[1:]  # judged with the hooks
    return len(own_hooks(app, endpoint)) + len(around)


def scopes(endpoint: str) -> Iterator[str | None]:
    """The app (``None``) and the blueprints, innermost last, an endpoint belongs to."""
    yield None
    names = endpoint.split(".")[:-1]
    for end in range(1, len(names) + 1):
        yield ".".join(names[:end])


def is_csrf_exempt(app: Flask, endpoint: str | None) -> bool:
    """Whether the view of ``endpoint`` was marked with :func:`csrf_exempt`."""
    view = app.view_functions.get(endpoint) if endpoint is not None else None
    return getattr(view, EXEMPT_ATTRIBUTE, False) is True
