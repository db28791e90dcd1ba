"""One door: a guard written on the primitive counts as ``access_guard`` does.

Wherever it sits (on the app, on the view's blueprint, on a parent blueprint,
around the view) and whether it is the package's own (``access_guard``,
``@require_access(requirement)``) or written by hand on
:func:`verify_access_in_request`, with or without deny by default: every
caller gets what the one requirement gives, the request is decided once (one
signal) and its token verified once, and the route audit says what it can
prove.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask

from flask_cf_access import (
    CloudflareAccess,
    Reason,
    access_guard,
    require,
    require_access,
    verify_access_in_request,
)
from flask_cf_access._core.verifier import TokenVerifier
from flask_cf_access._flask.routes import audit_routes
from flask_cf_access.cli import cli
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .support import FrozenClock, Outcome, outcome

PATH = "/outer/inner/page"
ADMINS = require(groups=["Admins"])
PLACEMENTS = ("app", "blueprint", "nested blueprint", "view")
KINDS = ("access_guard", "hand-written")


def admins_only(view: Callable[[], str]) -> Callable[[], str]:
    """A view decorator of the app's own, on the primitive (flask-jwt-extended style)."""

    @functools.wraps(view)
    def wrapper() -> str:
        verify_access_in_request(ADMINS)
        return view()

    return wrapper


def hand_guard() -> None:
    """A before_request guard of the app's own, on the primitive."""
    verify_access_in_request(ADMINS)


def new_app(issuer: AccessIssuer, clock: FrozenClock, name: str, protect_all: bool) -> Flask:
    """An app trusting the stand-in, with or without deny by default."""
    app = Flask(name)
    app.config.update(
        issuer.settings(CF_ACCESS_PROTECT_ALL=protect_all, CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    )
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    return app


def placed_app(
    issuer: AccessIssuer, clock: FrozenClock, placement: str, kind: str, protect_all: bool
) -> Flask:
    """The view in ``inner``, nested in ``outer``, the guard where ``placement`` says."""
    app = new_app(issuer, clock, f"{placement} {kind}", protect_all)
    outer = Blueprint("outer", __name__, url_prefix="/outer")
    inner = Blueprint("inner", __name__, url_prefix="/inner")
    hook = access_guard(ADMINS) if kind == "access_guard" else hand_guard
    scope = {"app": app, "blueprint": inner, "nested blueprint": outer}.get(placement)
    if scope is not None:
        scope.before_request(hook)

    def page() -> str:
        return "page"

    if placement == "view":
        view = require_access(ADMINS)(page) if kind == "access_guard" else admins_only(page)
    else:
        view = page
    inner.add_url_rule("/page", "page", view)
    outer.register_blueprint(inner)
    app.register_blueprint(outer)
    return app


def reference_app(issuer: AccessIssuer, clock: FrozenClock) -> Flask:
    """The one requirement, checked in the view and nowhere else."""
    app = Flask("reference")
    app.config.update(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.get(PATH)
    def page() -> str:
        verify_access_in_request(ADMINS)
        return "page"

    return app


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The token of each verification made while the test runs."""
    seen: list[str | None] = []
    verify_entry = TokenVerifier.verify_entry

    def counted(self: TokenVerifier, token: str) -> Any:
        seen.append(token)
        return verify_entry(self, token)

    monkeypatch.setattr(TokenVerifier, "verify_entry", counted)
    return seen


def callers(issuer: AccessIssuer) -> dict[str, str | None]:
    """Nobody, a bad token, an admin, and someone else."""
    return {
        "nobody": None,
        "bad token": "not-a-token",
        "ada, Admins": issuer.user_token("ada@example.com", ["Admins"]),
        "bob, Staff": issuer.user_token("bob@example.com", ["Staff"]),
    }


@pytest.mark.parametrize("protect_all", [False, True], ids=["open by default", "deny by default"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_one_decision_one_verification_wherever_the_guard_is(
    issuer: AccessIssuer,
    clock: FrozenClock,
    verifications: list[str | None],
    placement: str,
    kind: str,
    protect_all: bool,
) -> None:
    """Each caller gets the requirement's answer and reason, decided and verified once."""
    app = placed_app(issuer, clock, placement, kind, protect_all)
    reference = reference_app(issuer, clock)
    for name, token in callers(issuer).items():
        expected = outcome(reference, token, PATH)
        verifications.clear()
        with capture_access(app) as captured:
            assert outcome(app, token, PATH) == expected, name
        assert len(captured) == 1, (name, captured)
        assert verifications == ([token] if token else []), name
    assert expected == Outcome(403, Reason.NOT_IN_GROUP)  # bob, last: the rule was applied


#: A guard of the package's that admits anyone with a token, then one of the app's
#: own that runs after it and refuses whoever is not in Admins.
AFTER_A_PACKAGE_GUARD = (
    "access_guard, then a before_request of yours",
    "access_guard, then a decorator of yours",
    "@require_access around a decorator of yours",
)


def guarded_twice(issuer: AccessIssuer, clock: FrozenClock, how: str, protect_all: bool) -> Flask:
    """The view at :data:`PATH` behind the package's guard and then one of the app's own."""
    app = new_app(issuer, clock, "twice", protect_all)
    outer = Blueprint("outer", __name__, url_prefix="/outer")
    inner = Blueprint("inner", __name__, url_prefix="/inner")

    def page() -> str:
        return "page"

    view: Callable[[], str] = admins_only(page)
    if how.startswith("access_guard"):
        inner.before_request(access_guard())
        if how.endswith("before_request of yours"):
            inner.before_request(hand_guard)
            view = page
    else:
        view = require_access(view)
    inner.add_url_rule("/page", "page", view)
    outer.register_blueprint(inner)
    app.register_blueprint(outer)
    return app


@pytest.mark.parametrize("protect_all", [False, True], ids=["open by default", "deny by default"])
@pytest.mark.parametrize("how", AFTER_A_PACKAGE_GUARD)
def test_refused_after_a_package_guard_admitted_is_one_refusal(
    issuer: AccessIssuer, clock: FrozenClock, how: str, protect_all: bool
) -> None:
    """A request the package's guard admits and a guard of the app's own then refuses
    sends access_denied alone (not access_granted first); one both admit sends
    access_granted once."""
    app = guarded_twice(issuer, clock, how, protect_all)
    bob = issuer.user_token("bob@example.com", ["Staff"])
    with capture_access(app) as captured:
        assert outcome(app, bob, PATH) == Outcome(403, Reason.NOT_IN_GROUP)
    assert [(record.granted, record.status) for record in captured] == [(False, 403)]
    ada = issuer.user_token("ada@example.com", ["Admins"])
    with capture_access(app) as captured:
        assert outcome(app, ada, PATH) == Outcome(200, None)
    assert [record.granted for record in captured] == [True]


@pytest.mark.parametrize("protect_all", [False, True], ids=["open by default", "deny by default"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_audit_reads_the_packages_guards(
    issuer: AccessIssuer, clock: FrozenClock, placement: str, protect_all: bool
) -> None:
    """access_guard and @require_access(requirement) are audited with their requirement."""
    app = placed_app(issuer, clock, placement, "access_guard", protect_all)
    (audit,) = (audit for audit in audit_routes(app) if audit.rule == PATH)
    assert (audit.status, audit.requirement, audit.requires, audit.unaudited) == (
        "protected",
        ADMINS,
        "token; groups: any of Admins",
        (),
    )


@pytest.mark.parametrize(
    ("protect_all", "status", "proven"),
    [(False, "unprotected", "nothing"), (True, "protected", "token (deny by default)")],
)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_audit_names_a_hand_written_guard_it_cannot_read(
    issuer: AccessIssuer,
    clock: FrozenClock,
    placement: str,
    protect_all: bool,
    status: str,
    proven: str,
) -> None:
    """A guard on the primitive is named where it runs, as unaudited; the status is what
    the audit can prove (a token under deny by default, nothing otherwise)."""
    app = placed_app(issuer, clock, placement, "hand-written", protect_all)
    (audit,) = (audit for audit in audit_routes(app) if audit.rule == PATH)
    named = "a decorator around page" if placement == "view" else "hand_guard"
    assert (audit.status, audit.requirement, audit.unaudited) == (status, None, (named,))
    assert audit.is_problem is (status == "unprotected")  # routes --strict fails on it
    assert audit.requires.startswith(f"{proven}; unaudited: {named} may check more")
    assert "access_guard()" in audit.requires


def test_hand_written_guard_with_deny_by_default_still_fails_closed(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """A guard of the app's own that does not check, or checks optionally, leaves deny
    by default's refusal standing: 401 without a token, one grant with one."""
    app = new_app(issuer, clock, "fail closed", protect_all=True)
    skips = Blueprint("skips", __name__, url_prefix="/skips")
    optional = Blueprint("optional", __name__, url_prefix="/optional")

    @skips.before_request
    def checks_nothing() -> None:
        return None

    @optional.before_request
    def checks_optionally() -> None:
        verify_access_in_request(optional=True)

    def maybe_checks(view: Callable[[], str]) -> Callable[[], str]:
        @functools.wraps(view)
        def wrapper() -> str:
            return view()

        return wrapper

    skips.add_url_rule("/page", "page", lambda: "page")
    optional.add_url_rule("/page", "page", lambda: "page")
    app.add_url_rule("/wrapped", "wrapped", maybe_checks(lambda: "page"))
    app.register_blueprint(skips)
    app.register_blueprint(optional)
    ada = issuer.user_token("ada@example.com")
    for path in ("/skips/page", "/optional/page", "/wrapped"):
        assert outcome(app, None, path) == Outcome(401, Reason.MISSING_TOKEN), path
        with capture_access(app) as captured:
            assert outcome(app, ada, path) == Outcome(200, None), path
        assert [record.granted for record in captured] == [True], path


def test_routes_strict_names_the_unaudited_guard(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """``flask cf-access routes --strict`` fails on a route only a hand-written guard
    protects, and names that guard."""
    app = placed_app(issuer, clock, "blueprint", "hand-written", protect_all=False)
    result = app.test_cli_runner().invoke(cli, ["routes", "--strict"])
    assert result.exit_code == 1
    assert f"UNPROTECTED: {PATH} (outer.inner.page) (unaudited: hand_guard)" in result.output
