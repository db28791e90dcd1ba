"""The verification primitive for Flask requests, what a request keeps, and its accessors.

Every Flask guard (the decorators, :func:`~flask_cf_access.access_guard`,
deny by default, your own ``before_request`` functions, the Flask-Login
bridge) comes through :func:`check_guard` (a decorator through
:func:`check_view_guard`, which takes the checker's one-step path when it
is alone on its view and first to check). What it learns about a request
(the identity, whether "nobody" is an answer, the app's user) lives in one
:class:`RequestAccess` on ``g``, put there by :func:`_keep` and removed by
:func:`reset_request_access`, the only two functions that touch those names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast, overload

from flask import Flask, after_this_request, current_app, g, request
from flask.globals import app_ctx
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Request, Response

from .._core.caching import CHECKED_ENVIRON_KEY
from .._core.checker import AccessChecker
from .._core.csrf import SAFE_METHODS
from .._core.errors import NoAccessContextError, Reason, refusal
from .._core.identity import AccessIdentity
from .._core.requirements import Requirement, require
from .._core.signals import access_granted
from .._core.tokens import TOKEN_ENVIRON_KEY, sent_token
from .app_state import EXTENSION_KEY, AccessState, access_state
from .guards import Guard, endpoint_guard, is_csrf_exempt, make_guard, view_guard
from .users import UserLoader, load_user


class RequestAccess:
    """Everything the package keeps for one request, in one object on ``g``.

    Made by each check (and by an optional check that found no token),
    dropped when its request context is torn down and when a check fails.
    """

    __slots__ = (
        "covered",
        "decided",
        "identity",
        "loaded",
        "login_user_set",
        "names",
        "optional",
        "pending_grant",
        "request",
        "sent",
        "user",
    )

    #: Where :func:`_keep` wrote its names on ``g``, as a mapping, for
    #: :func:`reset_request_access` to remove them from (set once kept).
    names: Any

    def __init__(
        self,
        identity: AccessIdentity | None = None,
        optional: bool = False,
        covered: Guard | None = None,
        decided: Guard | None = None,
        request: Request | None = None,
        sent: tuple[str | None, str | None] | None = None,
    ) -> None:
        #: The admitted identity; ``None`` for nobody.
        self.identity = identity
        #: Whether "nobody" is an answer here: no token, or no account.
        self.optional = optional
        #: The view's own guard, when this check already judged it (a
        #: ``before_request`` guard judges the view's decorators with its own).
        self.covered = covered
        #: Everything the endpoint's guards ask, when this check judged it all.
        self.decided = decided
        #: Whether the user loader answered (its answer is :attr:`user`).
        self.loaded = False
        self.user: Any = None
        #: Whether the Flask-Login bridge put its user on ``g`` (``_login_user``).
        self.login_user_set = False
        #: Whether the grant is still to be reported (deny by default in front
        #: of ``before_request`` guards of yours: theirs is the decision).
        self.pending_grant = False
        #: The request this was made for: a check of another request (one app
        #: context pushed around several request contexts) starts afresh.
        self.request = request
        #: The token header and cookie it was judged on: a later check of the
        #: request reuses its decision and identity only for the same token.
        self.sent = sent


#: Where on ``g`` the request's :class:`RequestAccess` lives.
_ACCESS_NAME = "_cf_access"
#: The documented names of the identity and claims on ``g``, kept beside it.
_IDENTITY_NAME = "cf_access_identity"
_CLAIMS_NAME = "cf_access_claims"
#: Where Flask-Login keeps the request's user; the bridge sets it.
_LOGIN_USER_NAME = "_login_user"


#: Flask's own ``g`` class, whose attributes are its ``__dict__``.
_FLASK_GLOBALS = Flask.app_ctx_globals_class


class _SetThroughClass:
    """An app's own ``g`` class (``app_ctx_globals_class``), written as a mapping
    through its own ``setattr`` and ``pop``, which it may have made its own."""

    __slots__ = ("_globals",)

    def __init__(self, context_globals: Any) -> None:
        self._globals = context_globals

    def __setitem__(self, name: str, value: object) -> None:
        setattr(self._globals, name, value)

    def pop(self, name: str, default: object = None) -> Any:
        return self._globals.pop(name, default)


def _keep(context_globals: Any, access: RequestAccess, previous: RequestAccess | None) -> None:
    """Make ``access`` the request's state, after ``previous`` (what ``g`` held):
    the one place its names are set on ``g``."""
    if previous is not None and previous.login_user_set:
        access.login_user_set = True
    checked_request = access.request
    if checked_request is not None:  # its answer is private (PrivateWhenChecked)
        checked_request.environ[CHECKED_ENVIRON_KEY] = True
    # Flask's own g keeps its attributes in its __dict__ (its __setattr__ and
    # pop do no more): written there directly, a Python call fewer per name.
    names = access.names = (
        context_globals.__dict__
        if type(context_globals) is _FLASK_GLOBALS
        else _SetThroughClass(context_globals)
    )
    names[_ACCESS_NAME] = access
    identity = access.identity
    if identity is None:
        names.pop(_IDENTITY_NAME, None)
        names.pop(_CLAIMS_NAME, None)
    else:
        names[_IDENTITY_NAME] = identity
        names[_CLAIMS_NAME] = identity.claims


def reset_request_access(*_: object, **__: object) -> None:
    """Remove everything a check put on ``g``: the one place its names are removed.

    Runs at the end of every request (``request_tearing_down``, whose
    arguments it ignores), protected or not, and when a check fails: an app
    context pushed around several requests (tests, CLI commands, task
    runners) keeps its ``g`` between them.
    """
    access = g._get_current_object().__dict__.get(_ACCESS_NAME)
    if access is None:
        return  # nothing was kept: no check ran in this request
    names = access.names
    names.pop(_ACCESS_NAME, None)
    if access.login_user_set:
        names.pop(_LOGIN_USER_NAME, None)
    names.pop(_IDENTITY_NAME, None)
    names.pop(_CLAIMS_NAME, None)


def request_access() -> RequestAccess | None:
    """The current request's :class:`RequestAccess`; ``None`` before any check of
    it (what another request left on a shared ``g`` is not its), or outside a
    request."""
    try:
        access = g._get_current_object().__dict__.get(_ACCESS_NAME)
        if not isinstance(access, RequestAccess):
            return None
        this_request = request._get_current_object()  # type: ignore[attr-defined]
    except RuntimeError:  # no app context, or no request context
        return None
    return access if access.request is this_request else None


def note_login_user() -> None:
    """Record that the Flask-Login bridge set Flask-Login's user on ``g`` for this request."""
    context_globals = g._get_current_object()
    access = context_globals.__dict__.get(_ACCESS_NAME)
    this_request = request._get_current_object()  # type: ignore[attr-defined]
    if access is None or access.request is not this_request:
        access = RequestAccess(request=this_request)
        _keep(context_globals, access, None)
    access.login_user_set = True


def request_has_token() -> bool:
    """Whether the current request sends a token to check, as the checker chooses it.

    The header is authoritative: when present, its value is the token (an
    empty one is none); only without it is the ``CF_Authorization`` cookie read.
    """
    header, cookie = sent_token(request._get_current_object())  # type: ignore[attr-defined]
    return bool(header or cookie)


#: Marks a deprecated keyword that was not given.
_UNSET: Any = object()


@overload
def verify_access_in_request(
    requirement: Requirement | None = None,
    *,
    optional: Literal[False] = False,
    account: bool | None = None,
    groups: Iterable[str] = ...,
    allow_service_tokens: bool = ...,
) -> AccessIdentity: ...


@overload
def verify_access_in_request(
    requirement: Requirement | None = None,
    *,
    optional: bool,
    account: bool | None = None,
    groups: Iterable[str] = ...,
    allow_service_tokens: bool = ...,
) -> AccessIdentity | None: ...


def verify_access_in_request(
    requirement: Requirement | None = None,
    *,
    optional: bool = False,
    account: bool | None = None,
    groups: Iterable[str] = _UNSET,
    allow_service_tokens: bool = _UNSET,
) -> AccessIdentity | None:
    """Verify the current request's token and admit or refuse its identity.

    The primitive every guard is made of: call it from your own guards, e.g.
    a blueprint's ``before_request``::

        @admin.before_request
        def only_admins():
            verify_access_in_request(require(roles=["admin"]))

    Called before the view, it judges the view's own decorators (and any
    :func:`~flask_cf_access.access_guard` over it) together with
    ``requirement``, once; what a view needs does not depend on how its
    guards are written.

    On success the identity is on ``g.cf_access_identity`` and the verified
    claims on ``g.cf_access_claims`` (a read-only mapping); on failure
    nothing is left on ``g`` (what an earlier check put there is removed),
    one line is logged and the refusal is raised. Either way a signal is
    sent, with the app as sender: :data:`~flask_cf_access.access_granted` or
    :data:`~flask_cf_access.access_denied`. When a user loader is registered,
    it runs before this returns and an identity without an account is
    refused (403, ``no_account``), unless ``account=False`` or ``optional``.

    :param requirement: a :func:`~flask_cf_access.require` requirement (groups,
        roles, predicates, service tokens); by default any verified token.
    :param optional: ``True``: a request without a token is not refused; it
        passes as nobody and this returns ``None``. Only where nothing else
        needs an identity: with a requirement that does (groups, roles,
        predicates, service tokens), :class:`~flask_cf_access.ConfigurationError`;
        and where it meets such a requirement at request time (a blueprint
        guard over an optional view), the requirement wins and a request
        without a token gets 401 (``missing_token``).
    :param account: ``False``: the identity needs no account; the user is
        loaded when first asked for, ``None`` for no account. ``None``
        (default): an account is needed when a user loader is registered,
        except on an optional check.
    :param groups: deprecated, use ``require(groups=…)``.
    :param allow_service_tokens: deprecated, use ``require(allow_service_tokens=False)``.
    :raises ConfigurationError: ``optional`` with a requirement that needs an identity.
    :raises AccessUnauthorized: 401, no token (unless optional) or one that does not verify.
    :raises AccessForbidden: 403, refused by an app-wide rule or the requirement,
        or no account.
    :raises AccessUnavailable: 503, keys or identity could not be had.
    """
    if groups is not _UNSET or allow_service_tokens is not _UNSET:
        warnings.warn(
            "verify_access_in_request(groups=..., allow_service_tokens=...) is deprecated:"
            " pass require(groups=..., allow_service_tokens=...) as its requirement.",
            DeprecationWarning,
            stacklevel=2,
        )
        names = group_names(() if groups is _UNSET else groups)
        allowed = True if allow_service_tokens is _UNSET else bool(allow_service_tokens)
        if names or not allowed:
            asked = require(groups=names, allow_service_tokens=allowed)
            requirement = asked if requirement is None else requirement & asked
    guard = make_guard(requirement, optional=optional, account=account)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Itself one of the endpoint's checks apart (a guard of the app's own).
    return check_guard(app, guard, fold=True, apart=1)


def check_view_guard(guard: Guard, defer_grant: bool) -> Flask:
    """What a decorator runs before its view: :func:`check_guard` of the current
    app with its ``guard`` (``view=True``); returns the app.

    A decorator alone on its view, first to check its request (nearly every
    protected request), is checked in one step when the checker can
    (:meth:`~flask_cf_access._core.checker.AccessChecker.check_header_token`,
    which says what that saves): the same steps as :func:`check_guard`'s,
    with nothing before it to fold in.
    """
    context = app_ctx._get_current_object()  # type: ignore[attr-defined]
    app: Flask = context.app
    if not (defer_grant or guard.optional or guard.account is True):
        context_globals = context.g
        this_request = request._get_current_object()  # type: ignore[attr-defined]
        token = this_request.environ.get(TOKEN_ENVIRON_KEY)
        if token and _ACCESS_NAME not in context_globals.__dict__:
            state = app.extensions.get(EXTENSION_KEY)
            if type(state) is AccessState and (
                guard.account is False or state.users.loader is None
            ):
                identity = state.checker.check_header_token(
                    app, this_request, token, guard.requirement
                )
                if identity is not None:
                    access = RequestAccess(identity, False, None, None, this_request, (token, None))
                    _keep(context_globals, access, None)
                    return app
    check_guard(app, guard, view=True, defer_grant=defer_grant)
    return app


def check_guard(
    app: Flask,
    guard: Guard,
    *,
    fold: bool = False,
    declared: bool = False,
    view: bool = False,
    defer_grant: bool = False,
    apart: int | None = None,
) -> AccessIdentity | None:
    """Check the current request of ``app``, the current app, against ``guard``.

    With ``fold``, the guards declared on the endpoint (the ``access_guard``
    hooks of the app and its blueprints, then its view's decorators) are
    judged after ``guard`` (unless ``declared``: ``guard`` is one of those
    hooks), failing closed (:meth:`Guard.__and__`), and the view's
    decorators then know they were: a request is decided once, and its
    reason is the first the guards give in the order Flask runs them. With
    ``view``, ``guard`` is the view's own, checked by its decorator, unless
    a ``before_request`` guard judged it already. With ``defer_grant``, a
    grant is reported by the next check of the request, or when the response
    is made (:func:`_report_pending_grant`): one decision per request, the one
    the client gets. ``apart``: how many of the endpoint's
    :func:`~flask_cf_access._flask.guards.checks_apart` this check is; with
    more, one may still refuse after it, and the grant is deferred.

    An optional check of a request without a token keeps "nobody" and
    returns ``None``, without a log line or a signal. A token that is sent is
    checked exactly as on a required route: breaking a token never
    downgrades a request to anonymous.
    """
    context_globals = g._get_current_object()
    this_request = request._get_current_object()  # type: ignore[attr-defined]
    previous = context_globals.__dict__.get(_ACCESS_NAME)
    if previous is not None and previous.request is not this_request:
        # Another request's (one still pushed under this one, in the same app
        # context, so not yet torn down): nothing of it is this request's.
        reset_request_access()
        previous = None
    header, cookie = sent = sent_token(this_request)
    # What an earlier check of this request judged, on this same token.
    judged_before = previous if previous is not None and previous.sent == sent else None
    if view and judged_before is not None and judged_before.covered is guard:
        return cast(AccessIdentity | None, judged_before.identity)
    covered: Guard | None = None
    decided: Guard | None = None
    if fold and this_request.endpoint is not None:
        covered = view_guard(app.view_functions.get(this_request.endpoint))
        declared_guards = endpoint_guard(app, this_request.endpoint)
        if declared_guards is not None:
            guard = declared_guards if declared else guard & declared_guards
        decided = guard
        judged = None if judged_before is None else judged_before.decided
        # A guard before this one judged all of it already (and maybe more).
        if judged is not None and (judged == decided or judged & decided == judged):
            return cast(AccessIdentity | None, previous.identity)  # judged_before is previous
    if guard.optional and not (header or cookie):
        access = RequestAccess(None, True, covered, decided, this_request, sent)
        _keep(context_globals, access, previous)
        return None
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AccessState):
        state = access_state(app)  # which says to call init_app
    if defer_grant or apart is not None:  # never for a decorator alone on its view
        if not access_granted.receivers:
            defer_grant = False  # nobody listens: no grant to report, now or later
        elif apart is not None and not defer_grant and this_request.endpoint is not None:
            defer_grant = state.checks_apart(app, this_request.endpoint) > apart
    checker = state.checker
    access = RequestAccess(None, guard.optional, covered, decided, this_request, sent)
    loader: UserLoader | None = None
    if guard.account is not False and not guard.optional:
        loader = state.users.loader
        if loader is None and guard.account is True:
            raise RuntimeError(
                "account=True needs a user loader: register one with @cf_access.user_loader."
            )
    try:
        identity = checker.check_request(
            app,
            this_request,
            header,
            cookie,
            guard.requirement,
            csrf_exempt=this_request.method not in SAFE_METHODS
            and is_csrf_exempt(app, this_request.endpoint),
            admit=None if loader is None else _account_loader(app, loader, access, previous),
            report_granted=not defer_grant,
            # A check before this one in the request verified its token already
            # (deny by default in front of a guard of yours): not verified twice.
            verified=None if judged_before is None else judged_before.identity,
        )
    except BaseException:
        reset_request_access()
        raise
    access.identity = identity
    if defer_grant:
        access.pending_grant = True
        if judged_before is None or not judged_before.pending_grant:
            after_this_request(_report_pending_grant)
    _keep(context_globals, access, previous)
    return identity


def _report_pending_grant(response: Response) -> Response:
    """Report the grant a check left to be reported, if the request still holds one
    (no later check refused it): run when the request's response is made."""
    access = request_access()
    if access is not None and access.pending_grant and access.identity is not None:
        access.pending_grant = False
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        AccessChecker.granted(app, request._get_current_object(), access.identity)  # type: ignore[attr-defined]
    return response


def _account_loader(
    app: Flask, loader: UserLoader, access: RequestAccess, previous: RequestAccess | None
) -> Callable[[AccessIdentity], None]:
    """What the checker runs once every rule passed: the loader, refusing no account.

    An earlier check of the same request that loaded the user of the same
    identity has the answer: the loader runs once per request.
    """

    def load_account(identity: AccessIdentity) -> None:
        if previous is not None and previous.loaded and previous.identity is identity:
            user = previous.user
        else:
            user = load_user(app, loader, identity)
        if user is None:
            raise refusal(Reason.NO_ACCOUNT)
        access.user = user
        access.loaded = True

    return load_account


def group_names(groups: Iterable[str]) -> tuple[str, ...]:
    """``groups`` as a tuple of names or ids; a single string is one group.

    :raises TypeError: a group that is not a non-empty string.
    """
    names = (groups,) if isinstance(groups, str) else tuple(groups)
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError("groups must be group names or ids, as non-empty strings.")
    return names


D = TypeVar("D")

#: Marks "no default given" for :func:`get_identity`.
_RAISE: Any = object()

_NO_CONTEXT = "No verified Cloudflare Access identity: this is not a protected request."


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
    access = request_access()
    identity = access.identity if access is not None else None
    if identity is None:
        if default is not _RAISE:
            return default
        raise NoAccessContextError(_NO_CONTEXT)
    return identity


def get_claims() -> Mapping[str, Any]:
    """The verified claims of the current request (read-only).

    :raises NoAccessContextError: outside a request that passed a check.
    """
    return get_identity().claims


def get_user() -> Any:
    """The app's user for the current request, from the app's user loader.

    Never refuses: whether the request may pass was settled before the view
    ran. On a route that needs an account (the default when a user loader is
    registered) the loader already ran and this is its user. Where no account
    is needed (``account=False``, or an optional route) the loader runs the
    first time this is asked, and ``None`` means nobody: no token, or no
    account here. Later calls in the same request get the same answer. A
    loader's exception is not caught.

    :raises NoAccessContextError: outside a request that passed a check.
    :raises RuntimeError: no user loader was registered.
    """
    access = request_access()
    if access is None:
        raise NoAccessContextError(_NO_CONTEXT)
    if access.loaded:
        return access.user
    identity = access.identity
    if identity is None:
        if access.optional:
            return None
        raise NoAccessContextError(_NO_CONTEXT)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    loader = access_state(app).users.loader
    if loader is None:
        raise RuntimeError(
            "No user loader: register one with @cf_access.user_loader before asking for the user."
        )
    access.user = load_user(app, loader, identity)
    access.loaded = True
    return access.user


#: The identity of the current request, as a proxy; raises outside a protected one.
current_identity = cast(AccessIdentity, LocalProxy(get_identity))

#: The app's user for the current request, as a proxy (see :func:`get_user`).
current_user = cast(Any, LocalProxy(get_user))
