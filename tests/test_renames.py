"""Names that say what they take, and one door: each decorator is require_access(require(...))."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

import flask_cf_access
from flask_cf_access import (
    AccessIdentity,
    ConfigurationError,
    Reason,
    Requirement,
    require,
    require_access,
    require_check,
    require_context,
    require_group,
    require_identity,
    require_role,
    require_service_token,
)
from flask_cf_access._flask.guards import view_guard
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .support import FrozenClock, bearer


def from_example(identity: AccessIdentity) -> bool:
    """A predicate: the e-mail is at example.com."""
    return (identity.email or "").endswith("@example.com")


#: Requirements of every kind, as require() makes them.
REQUIREMENTS = {
    "any token": require(),
    "groups": require(groups=["Admins"]),
    "roles": require(roles=["admin"], match="all"),
    "check": require(check=from_example),
    "service tokens": require(service_tokens=["ci.access"]),
    "context": require(mfa=True),
    "combined": require(groups=["Admins"]) & require(check=from_example),
}


def test_require_identity_warns_and_names_require_check() -> None:
    """The old name still works, for one release, and says which name replaces it."""
    with pytest.warns(DeprecationWarning, match=r"require_check\(\)"):
        old = require_identity(from_example, allow_service_tokens=False)

    def view() -> str:
        return ""

    new = require_check(from_example, allow_service_tokens=False)
    assert view_guard(old(view)) == view_guard(new(view))
    assert "require_identity" in flask_cf_access.__all__
    assert "require_check" in flask_cf_access.__all__


@pytest.mark.parametrize("requirement", REQUIREMENTS.values(), ids=list(REQUIREMENTS))
def test_requirement_used_as_a_decorator_fails_when_written(requirement: Requirement) -> None:
    """``@require(...)`` on a view is a TypeError at decoration, naming the right spelling."""
    with pytest.raises(TypeError, match=r"not a decorator.*@require_access\(require\(\.\.\.\)\)"):

        @requirement  # type: ignore[operator]
        def view() -> str:
            return "unguarded"


@pytest.mark.parametrize("requirement", REQUIREMENTS.values(), ids=list(REQUIREMENTS))
def test_a_requirement_is_no_check(requirement: Requirement) -> None:
    """A Requirement passed where a predicate goes is refused, not called at request time."""
    with pytest.raises(TypeError, match="callable"):
        require(check=requirement)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        require_check(requirement)  # type: ignore[arg-type]


@pytest.mark.parametrize("argument", ["Admins", ["Admins"], 3])
def test_require_access_takes_a_view_or_a_requirement(argument: Any) -> None:
    """Anything else as its first argument is a TypeError at decoration."""
    with pytest.raises(TypeError, match=r"require_access\(require"):
        require_access(argument)


@pytest.mark.parametrize(
    "requirement",
    [r for r in REQUIREMENTS.values() if r.needs_identity],
    ids=[name for name, r in REQUIREMENTS.items() if r.needs_identity],
)
def test_require_access_optional_with_a_requirement_is_refused(requirement: Requirement) -> None:
    """As in the primitive: optional with a requirement needing an identity is refused."""
    with pytest.raises(ConfigurationError, match="optional=True"):
        require_access(requirement, optional=True)


def test_require_access_with_a_requirement_is_the_primitive(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """``@require_access(requirement)`` admits and refuses, with the reason, as the primitive."""
    app = Flask("one door")
    app.config.update(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    flask_cf_access.CloudflareAccess(
        app, clock=clock, session=issuer.session(), background=run_inline
    )
    requirement = REQUIREMENTS["combined"]

    @app.get("/decorated")
    @require_access(requirement, allow_service_tokens=False)
    def decorated() -> str:
        return "page"

    @app.get("/primitive")
    def primitive() -> str:
        flask_cf_access.verify_access_in_request(requirement & require(allow_service_tokens=False))
        return "page"

    tokens = {
        "nobody": None,
        "ada": issuer.user_token("ada@example.com", ["Admins"]),
        "bob": issuer.user_token("bob@example.com", ["Staff"]),
        "eve": issuer.user_token("eve@elsewhere.org", ["Admins"]),
        "ci": issuer.service_token("ci.access"),
    }
    client = app.test_client()
    answers: dict[str, list[tuple[int, list[Reason]]]] = {}
    for path in ("/decorated", "/primitive"):
        for name, token in tokens.items():
            with capture_access(app) as captured:
                status = client.get(path, headers=bearer(token) if token else {}).status_code
            answers.setdefault(name, []).append((status, captured.reasons))
    assert answers == {
        "nobody": [(401, [Reason.MISSING_TOKEN])] * 2,
        "ada": [(200, [])] * 2,
        "bob": [(403, [Reason.NOT_IN_GROUP])] * 2,
        "eve": [(403, [Reason.CHECK_FAILED])] * 2,
        "ci": [(403, [Reason.SERVICE_TOKEN_REFUSED])] * 2,
    }


#: Each decorator, and the require() of its arguments.
SHORTHANDS: dict[str, tuple[Callable[..., Any], dict[str, Any], Requirement]] = {
    "require_group": (
        require_group("Admins", "Ops", match="all"),
        {},
        require(groups=["Admins", "Ops"], match="all"),
    ),
    "require_role": (
        require_role("admin", allow_service_tokens=False, account=False),
        {"account": False},
        require(roles=["admin"], allow_service_tokens=False),
    ),
    "require_check": (
        require_check(from_example, account=True),
        {"account": True},
        require(check=from_example),
    ),
    "require_service_token": (
        require_service_token("ci.access"),
        {},
        require(service_tokens=["ci.access"]),
    ),
    "require_context": (
        require_context(mfa=True, max_login_age=60),
        {},
        require(mfa=True, max_login_age=60),
    ),
}


@pytest.mark.parametrize("name", list(SHORTHANDS))
def test_every_decorator_is_require_access_of_its_requirement(name: str) -> None:
    """A decorator guards its view exactly as @require_access(require(...)) does."""
    decorator, keywords, requirement = SHORTHANDS[name]

    def view() -> str:
        return ""

    assert view_guard(decorator(view)) == view_guard(require_access(requirement, **keywords)(view))
