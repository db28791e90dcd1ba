"""Deny by default, and the route audit: which endpoint requires what.

:func:`install_deny_by_default` is what ``CF_ACCESS_PROTECT_ALL`` turns on;
:func:`audit_routes` is what ``flask cf-access routes`` prints and
:func:`flask_cf_access.testing.assert_routes_protected` asserts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from flask import Flask, current_app, request
from werkzeug.routing import Rule

from .._core.applications import ApplicationMap, ApplicationSettings
from .._core.errors import AccessBadRequest, ConfigurationError
from .._core.requirements import ANY_TOKEN, Requirement, require
from .app_state import RoutePolicy, state_of
from .decorators import is_guarded
from .guards import (
    ANY_GUARD,
    GUARD_ATTRIBUTE,
    PUBLIC_ATTRIBUTE,
    WRAPPED_ATTRIBUTE,
    Guard,
    hooks_guard,
    make_guard,
    own_hooks,
    wrappers,
)
from .request import check_guard

#: What the route audit finds a route to be (:attr:`RouteAudit.status`).
RouteStatus = Literal["public", "protected", "unprotected", "not applied"]


def route_policy(app: Flask) -> RoutePolicy:
    """The app's :class:`~flask_cf_access._app_state.RoutePolicy`; the defaults
    when ``init_app`` was not called."""
    state = state_of(app)
    return state.routes if state is not None else RoutePolicy()


def is_public(app: Flask, endpoint: str, view: object) -> bool:
    """Whether ``endpoint`` is marked public: ``@cf_access.public`` or listed."""
    return endpoint in route_policy(app).public_endpoints or bool(
        getattr(view, PUBLIC_ATTRIBUTE, False)
    )


def install_deny_by_default(app: Flask) -> None:
    """Make every endpoint of ``app`` need a verified token, unless marked public.

    The hook runs before the app's other ``before_request`` functions. It
    lets through what Flask answers without a view (404, 405, a redirect,
    an automatic ``OPTIONS``), public endpoints, and endpoints whose own
    decorator or ``access_guard`` will verify the request (so that it is
    verified, logged and signalled once).
    """
    # Per endpoint: whether the hook verifies. Routes and hooks are fixed
    # once the app serves its first request: computed once.
    decided: dict[str, bool] = {}

    def deny_by_default() -> None:
        endpoint = request.endpoint
        if endpoint is None:  # no route matched: Flask answers 404 or 405
            return
        verify = decided.get(endpoint)
        if verify is None:
            verify = decided[endpoint] = _hook_verifies(app, endpoint)
        if not verify:
            return
        if request.method == "OPTIONS" and getattr(
            request.url_rule, "provide_automatic_options", False
        ):
            return  # Flask's own answer, no view code runs
        # Folded: a guard of yours after it asking no more is not checked again;
        # one that may check more has the grant to report (apart=0).
        check_guard(app, ANY_GUARD, fold=True, declared=True, apart=0)

    app.before_request_funcs.setdefault(None, []).insert(0, deny_by_default)


def unaudited_guards(app: Flask, endpoint: str) -> list[str]:
    """What of the app's own runs for ``endpoint`` before or around its view and may
    check access there (a guard written on the primitive), which no audit can read:
    its ``before_request`` functions, by name, and decorators around the view that
    are not this package's."""
    found = [getattr(hook, "__qualname__", repr(hook)) for hook in own_hooks(app, endpoint)]
    view = app.view_functions.get(endpoint)
    outermost = next(wrappers(view), None)
    if outermost is not None and not outermost[1]:
        found.append(f"a decorator around {getattr(view, '__name__', endpoint)}")
    return found


def _hook_verifies(app: Flask, endpoint: str) -> bool:
    view = app.view_functions.get(endpoint)
    if is_public(app, endpoint, view):
        return False
    # Only a wrapper of ours is sure to verify: another decorator's copy of
    # its attributes (functools.wraps) might answer without calling it.
    return not is_guarded(view) and hooks_guard(app, endpoint) is None


@dataclass(frozen=True)
class RouteAudit:
    """One URL rule, and what a request to it needs."""

    rule: str
    endpoint: str
    methods: tuple[str, ...]
    #: ``public``, ``protected``, ``unprotected`` (nothing checks it), or
    #: ``not applied`` (a requirement declared on the function but not on the
    #: registered view: the decorator is above ``@app.route``).
    status: RouteStatus
    #: What is required, in words.
    requires: str
    #: What the endpoint's decorators and guards require; ``None`` for none.
    requirement: Requirement | None = None
    #: The ``CF_ACCESS_APPLICATIONS`` its URLs fall under, by the path map (several
    #: when a variable part may reach another application's paths); ``()``
    #: without ``CF_ACCESS_APPLICATIONS``.
    applications: tuple[str, ...] = ()
    #: What is wrong with its application, if anything: it requires a token and
    #: falls under none, or a decorator or guard names another.
    application_problem: str | None = None
    #: Code of the app's own that runs before or around the view and may check
    #: access there, which no audit can read: its ``before_request`` functions
    #: by name, and decorators around the view.
    unaudited: tuple[str, ...] = ()

    @property
    def is_problem(self) -> bool:
        """Whether ``--strict`` fails on it: unprotected, a requirement not
        applied, or an application problem."""
        return self.status in ("unprotected", "not applied") or self.application_problem is not None


def audit_routes(app: Flask) -> list[RouteAudit]:
    """Every URL rule of ``app``, in URL order, with what it requires."""
    policy = route_policy(app)
    state = state_of(app)
    applications = state.checker.applications if state is not None else None
    audits = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint)):
        view = app.view_functions.get(rule.endpoint)
        methods = tuple(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        audit = RouteAudit(
            rule.rule,
            rule.endpoint,
            methods,
            *_judge(app, policy, rule.endpoint, view),
            unaudited=tuple(unaudited_guards(app, rule.endpoint)),
        )
        if applications is not None or (audit.requirement and audit.requirement.applications):
            audit = _with_applications(audit, applications, rule)
        audits.append(audit)
    return audits


def _with_applications(
    audit: RouteAudit, applications: ApplicationMap | None, rule: Rule
) -> RouteAudit:
    """``audit`` with the applications its rule falls under, and what is wrong with them."""
    named = audit.requirement.applications if audit.requirement is not None else frozenset()
    try:
        found = tuple(app.name for app in rule_applications(applications, rule))
    except AccessBadRequest:
        return replace(audit, application_problem="its path has several readings")
    problem = None
    if named and set(named) != set(found):
        problem = (
            f"it names {', '.join(sorted(named))} but its path falls under"
            f" {', '.join(found) or 'no application'}"
        )
    elif not found and audit.status == "protected":
        problem = "it needs a token but its path falls under no application"
    return replace(audit, applications=found, application_problem=problem)


def rule_applications(
    applications: ApplicationMap | None, rule: Rule
) -> tuple[ApplicationSettings, ...]:
    """The applications a URL rule's URLs may fall under, most specific last.

    A rule with a variable part (``/<path:p>``) is taken from its fixed start,
    up to the last ``/`` before the variable: every application with a path
    below that counts. A rule with a host (``host_matching``) is judged on it.

    :raises AccessBadRequest: the rule's path has several readings.
    """
    if applications is None:
        return ()
    host = rule.host if rule.map.host_matching and rule.host and "<" not in rule.host else None
    fixed, variable, _ = rule.rule.partition("<")
    if not variable:
        found = applications.application_for(host, fixed)
        return () if found is None else (found,)
    return applications.applications_under(host, fixed[: fixed.rfind("/") + 1] or "/")


def check_route_applications(app: Flask) -> None:
    """Refuse an app whose decorators or guards name another application than the
    path map puts their routes under (``require(application=...)``,
    ``access_guard(application=...)``).

    :raises ConfigurationError: naming each such route.
    """
    contradictions = [
        f"{audit.rule} ({audit.endpoint}): {audit.application_problem}"
        for audit in audit_routes(app)
        if audit.application_problem is not None
        and audit.requirement is not None
        and audit.requirement.applications
    ]
    if contradictions:
        raise ConfigurationError(
            "CF_ACCESS_APPLICATIONS and the applications named by views disagree:\n  "
            + "\n  ".join(contradictions)
        )


def install_application_check(app: Flask) -> None:
    """Check the applications views name (:func:`check_route_applications`) now,
    for the routes registered so far, and before the first request, for every
    route, when ``CF_ACCESS_APPLICATIONS`` is set.

    Until the check passes, every request raises the
    :class:`~flask_cf_access.ConfigurationError` (a 500): the app does not
    serve with views that contradict the path map.
    """
    check_route_applications(app)
    state = state_of(app)
    if state is None or state.checker.applications is None:
        return
    checked = False

    def check_applications_once() -> None:
        nonlocal checked
        if not checked:
            check_route_applications(app)
            checked = True

    app.before_request_funcs.setdefault(None, []).insert(0, check_applications_once)


def _judge(
    app: Flask, policy: RoutePolicy, endpoint: str, view: Any
) -> tuple[RouteStatus, str, Requirement | None]:
    own = getattr(view, GUARD_ATTRIBUTE, None)
    guard = own if isinstance(own, Guard) else None
    hooks = hooks_guard(app, endpoint)
    if hooks is not None:
        # As they meet at request time: the hooks' requirement applies to a
        # request without a token even where the view is optional.
        guard = hooks if guard is None else hooks & guard
    declared = getattr(view, WRAPPED_ATTRIBUTE, None)
    if guard is None and isinstance(declared, Requirement):
        applied = "token (deny by default)" if policy.protect_all else "nothing"
        return (
            "not applied",
            f"{applied}; declared but NOT APPLIED: {declared.describe()}"
            " (is the decorator above @app.route?)",
            None,
        )
    if guard is not None:
        return "protected", guard.describe(), guard.requirement
    if is_public(app, endpoint, view):
        return "public", "public", None
    hint = _unaudited_hint(app, endpoint)
    if policy.protect_all:
        return "protected", f"{ANY_TOKEN.describe()} (deny by default){hint}", None
    return "unprotected", f"nothing{hint}", None


def _unaudited_hint(app: Flask, endpoint: str) -> str:
    """The guards of the app's own :func:`unaudited_guards` finds, named."""
    names = unaudited_guards(app, endpoint)
    if not names:
        return ""
    return (
        f"; unaudited: {', '.join(names)} may check more at request time"
        " (use access_guard() or @require_access(require(...)) to have it listed)"
    )


def ungranted_roles(app: Flask, audits: list[RouteAudit]) -> list[str]:
    """Roles some endpoint requires that neither ``CF_ACCESS_ROLES`` nor a known
    service token grants: nobody can have them (a typo?)."""
    state = state_of(app)
    if state is None:
        return []
    settings = state.checker.settings
    granted = set(settings.roles)
    for profile in (settings.service_tokens or {}).values():
        granted.update(profile.roles)
    required = {
        role
        for audit in audits
        if audit.requirement is not None
        for _, names in audit.requirement.roles
        for role in names
    }
    return sorted(required - granted)


def unknown_public_endpoints(app: Flask) -> list[str]:
    """Names in ``CF_ACCESS_PUBLIC_ENDPOINTS`` that are no endpoint of ``app``."""
    return sorted(route_policy(app).public_endpoints - set(app.view_functions))


def access_guard(
    requirement: Requirement = ANY_TOKEN,
    *,
    optional: bool = False,
    account: bool | None = None,
    application: str | None = None,
) -> Callable[[], None]:
    """A ``before_request`` function verifying every request against ``requirement``::

        admin.before_request(access_guard(require(roles=["admin"])))

    It is :func:`~flask_cf_access.verify_access_in_request` with these
    arguments: it judges each view's own decorators with ``requirement``, once,
    and an optional view under it needs a token (401 without one). The route
    audit sees it on the blueprint's endpoints (or on every endpoint,
    registered on the app), and deny by default leaves the verification to it.
    ``application`` names the Access application of ``CF_ACCESS_APPLICATIONS``
    the endpoints belong to, as ``require(application=...)`` does.

    :param optional: a request without a token passes as nobody (only with a
        requirement that needs no identity).
    :param account: ``False``: the identity needs no account (see
        :func:`~flask_cf_access.get_user`).
    :raises TypeError: ``requirement`` is not a :class:`~flask_cf_access.Requirement`.
    :raises ConfigurationError: ``optional`` with a requirement that needs an identity.
    """
    if not isinstance(requirement, Requirement):
        raise TypeError("access_guard() takes a requirement made by require().")
    if application is not None:
        requirement = requirement & require(application=application)
    guard = make_guard(requirement, optional=optional, account=account)

    def access_guard_hook() -> None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        check_guard(app, guard, fold=True, declared=True, apart=0)

    setattr(access_guard_hook, GUARD_ATTRIBUTE, guard)
    return access_guard_hook
