"""The front ends every contract test runs on: one registry, the same routes on each.

A front end puts Cloudflare Access in front of views: the decorators (one
``require_access(requirement)``, or one per part of the requirement), a
blueprint's ``before_request`` with :func:`~flask_cf_access.access_guard` or
with :func:`~flask_cf_access.verify_access_in_request`, or the WSGI
middleware. Each is built by :func:`build` from the same ``CF_ACCESS_*``
settings and the same rules (a :class:`~flask_cf_access.Requirement` per
path), and answers :data:`BODY` on every path it lets through, for ``GET`` and
``POST``. Suites parametrize over :data:`FRONT_ENDS`, so a new front end is
added here once and every contract runs on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from flask import Blueprint, Flask

from flask_cf_access import (
    Clock,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    Requirement,
    access_guard,
    require_access,
    require_check,
    require_context,
    require_group,
    require_role,
    require_service_token,
    verify_access_in_request,
)
from flask_cf_access.testing import run_inline

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from flask_cf_access import ContextRule

#: What a protected view answers, on every front end.
BODY = "protected"
#: The methods every protected path takes.
METHODS = ("GET", "POST")

Rules = Mapping[str, Requirement]
Builder = Callable[[Mapping[str, Any], Rules, requests.Session, Clock], "WSGIApplication"]


def protected_view() -> str:
    return BODY


def decorators_for(requirement: Requirement) -> list[Callable[[Any], Any]]:
    """The public decorators that, stacked on a view, ask exactly ``requirement``."""
    (application,) = requirement.applications or {None}
    decorators: list[Callable[[Any], Any]] = [
        require_access(
            allow_service_tokens=requirement.allow_service_tokens, application=application
        )
    ]
    decorators += [require_group(*names, match=match) for match, names in requirement.groups]
    decorators += [require_role(*names, match=match) for match, names in requirement.roles]
    decorators += [require_check(check) for check in requirement.checks]
    if requirement.service_tokens is not None:
        decorators.append(require_service_token(*sorted(requirement.service_tokens)))
    if requirement.context:
        decorators.append(
            require_context(**{rule.kind: _context_keyword(rule) for rule in requirement.context})
        )
    return decorators


def _context_keyword(rule: ContextRule) -> Any:
    """What ``require_context`` takes for ``rule``."""
    if rule.kind == "max_login_age":
        return rule.seconds
    return list(rule.values) if rule.values else True


def _flask_app(
    name: str, config: Mapping[str, Any], session: requests.Session, clock: Clock
) -> Flask:
    app = Flask(name)
    app.config.update(config)
    CloudflareAccess(app, session=session, clock=clock, background=run_inline)
    return app


def decorated(
    config: Mapping[str, Any], rules: Rules, session: requests.Session, clock: Clock
) -> WSGIApplication:
    """A view per path, under the decorators of its requirement."""
    app = _flask_app("decorated", config, session, clock)
    for number, (path, requirement) in enumerate(rules.items()):
        view: Callable[[], str] = protected_view
        for decorator in reversed(decorators_for(requirement)):
            view = decorator(view)
        app.add_url_rule(path, f"view_{number}", view, methods=METHODS)
    return app


def one_decorator(
    config: Mapping[str, Any], rules: Rules, session: requests.Session, clock: Clock
) -> WSGIApplication:
    """A view per path, under one ``@require_access(requirement)``."""
    app = _flask_app("one decorator", config, session, clock)
    for number, (path, requirement) in enumerate(rules.items()):
        app.add_url_rule(
            path, f"view_{number}", require_access(requirement)(protected_view), methods=METHODS
        )
    return app


def _blueprints(
    name: str,
    config: Mapping[str, Any],
    rules: Rules,
    session: requests.Session,
    clock: Clock,
    guard_for: Callable[[Requirement], Callable[[], None]],
) -> WSGIApplication:
    """A blueprint per path, its ``before_request`` guarded by ``guard_for(requirement)``."""
    app = _flask_app(name, config, session, clock)
    for number, (path, requirement) in enumerate(rules.items()):
        blueprint = Blueprint(f"area_{number}", __name__, url_prefix=path)
        blueprint.before_request(guard_for(requirement))
        blueprint.add_url_rule("", "view", protected_view, methods=METHODS)
        app.register_blueprint(blueprint)
    return app


def guarded(
    config: Mapping[str, Any], rules: Rules, session: requests.Session, clock: Clock
) -> WSGIApplication:
    """A blueprint per path, guarded by ``access_guard(requirement)``."""
    return _blueprints("guarded", config, rules, session, clock, access_guard)


def primitive(
    config: Mapping[str, Any], rules: Rules, session: requests.Session, clock: Clock
) -> WSGIApplication:
    """A blueprint per path whose own ``before_request`` calls ``verify_access_in_request``."""

    def guard_for(requirement: Requirement) -> Callable[[], None]:
        def guard() -> None:
            verify_access_in_request(requirement)

        return guard

    return _blueprints("primitive", config, rules, session, clock, guard_for)


def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [BODY.encode()]


def middleware(
    config: Mapping[str, Any], rules: Rules, session: requests.Session, clock: Clock
) -> WSGIApplication:
    """``CloudflareAccessMiddleware`` around a plain WSGI application, a rule per path."""
    return CloudflareAccessMiddleware.from_mapping(
        config, downstream, session=session, clock=clock, rules=dict(rules), background=run_inline
    )


#: Every front end, by name.
FRONT_ENDS: dict[str, Builder] = {
    "decorators": decorated,
    "require_access(requirement)": one_decorator,
    "access_guard": guarded,
    "verify_access_in_request": primitive,
    "middleware": middleware,
}
