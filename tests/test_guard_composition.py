"""What a view needs does not depend on how its guards are written.

Random stacks of the ``require_*`` decorators (in random order, ``optional``
included), an ``access_guard`` on the view's blueprint, an app-wide
``before_request`` guard on :func:`verify_access_in_request` and deny by
default are compared, caller by caller, status and reason, with one view
checking the one combined requirement; a stack whose ``optional`` would waive
another decorator's requirement must be refused when it is written. Guards of
the app's own on the primitive (a ``before_request`` function, a decorator)
run before, between and after the package's, with and without deny by
default: each request sends exactly one access signal, the one matching what
the client got. The middleware's ``rules`` are compared with the same
combined requirement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from unittest import mock

import pytest
from flask import Blueprint, Flask
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    Match,
    Reason,
    Requirement,
    access_guard,
    require,
    require_access,
    require_check,
    require_context,
    require_group,
    require_role,
    require_service_token,
    verify_access_in_request,
)
from flask_cf_access._core.verifier import TokenVerifier
from flask_cf_access._flask.routes import audit_routes
from flask_cf_access.testing import AccessIssuer, capture_access, identity_profile, run_inline

from .support import FrozenClock, Outcome, bearer, outcome

ROLES = {"admin": ["Admins"], "staff": ["Staff"]}
KNOWN_SERVICE_TOKENS = {"ci.access": {"name": "ci", "roles": ["admin"]}, "ops.access": {}}
PATH = "/area/page"
OK = Outcome(200, None)


def from_example(identity: AccessIdentity) -> bool:
    """A predicate some callers meet and others do not."""
    return (identity.email or "").endswith("@example.com")


def is_ada(identity: AccessIdentity) -> bool:
    """A predicate only ada meets."""
    return identity.email == "ada@example.com"


View = Callable[[], str]
Decorator = Callable[[View], View]


@dataclass(frozen=True)
class Part:
    """One decorator, and what it asks as a requirement and optional mark."""

    name: str
    decorator: Decorator
    requirement: Requirement
    optional: bool = False

    def __repr__(self) -> str:
        return self.name


allow = st.booleans()
names_of: Callable[[list[str]], Any] = lambda pool: st.lists(  # noqa: E731
    st.sampled_from(pool), min_size=1, max_size=2, unique=True
)
match: st.SearchStrategy[Match] = st.sampled_from(["any", "all"])


@st.composite
def access_parts(draw: st.DrawFn) -> Part:
    allowed, optional = draw(allow), draw(st.booleans())
    return Part(
        f"@require_access(allow_service_tokens={allowed}, optional={optional})",
        require_access(allow_service_tokens=allowed, optional=optional),
        require(allow_service_tokens=allowed),
        optional,
    )


@st.composite
def group_parts(draw: st.DrawFn) -> Part:
    groups, how, allowed = draw(names_of(["Admins", "Staff"])), draw(match), draw(allow)
    return Part(
        f"@require_group(*{groups}, match={how}, allow_service_tokens={allowed})",
        require_group(*groups, match=how, allow_service_tokens=allowed),
        require(groups=groups, match=how, allow_service_tokens=allowed),
    )


@st.composite
def role_parts(draw: st.DrawFn) -> Part:
    roles, how, allowed = draw(names_of(["admin", "staff"])), draw(match), draw(allow)
    return Part(
        f"@require_role(*{roles}, match={how}, allow_service_tokens={allowed})",
        require_role(*roles, match=how, allow_service_tokens=allowed),
        require(roles=roles, match=how, allow_service_tokens=allowed),
    )


@st.composite
def check_parts(draw: st.DrawFn) -> Part:
    check, allowed = draw(st.sampled_from([from_example, is_ada])), draw(allow)
    return Part(
        f"@require_check({check.__name__}, allow_service_tokens={allowed})",
        require_check(check, allow_service_tokens=allowed),
        require(check=check, allow_service_tokens=allowed),
    )


@st.composite
def service_parts(draw: st.DrawFn) -> Part:
    ids = draw(st.sampled_from([(), ("ci.access",), ("ci.access", "ops.access")]))
    return Part(
        f"@require_service_token(*{ids})",
        require_service_token(*ids),
        require(service_tokens=ids),
    )


#: Rules on the profile, as ``require_context`` and ``require`` take them.
CONTEXT_RULES: tuple[dict[str, Any], ...] = (
    {"mfa": True},
    {"amr": ["hwk"]},
    {"posture": ["disk"]},
    {"max_login_age": 3600},
    {"idp": ["okta"]},
    {"mfa": True, "posture": ["disk"]},
)


@st.composite
def context_parts(draw: st.DrawFn) -> Part:
    rules = draw(st.sampled_from(CONTEXT_RULES))
    return Part(f"@require_context(**{rules})", require_context(**rules), require(**rules))


@st.composite
def requirement_parts(draw: st.DrawFn) -> Part:
    """One ``@require_access(requirement)`` asking what a drawn decorator (or two) asks."""
    drawn = draw(
        st.lists(
            st.one_of(group_parts(), role_parts(), check_parts(), context_parts()),
            min_size=1,
            max_size=2,
        )
    )
    try:
        requirement = combine(part.requirement for part in drawn)
    except ValueError:  # admitting nobody: refused by require() itself, not a stack
        assume(False)
    return Part(
        f"@require_access({' & '.join(part.name for part in drawn)})",
        require_access(requirement),
        requirement,
    )


parts = st.one_of(
    access_parts(),
    group_parts(),
    role_parts(),
    check_parts(),
    service_parts(),
    context_parts(),
    requirement_parts(),
)


def requirements() -> st.SearchStrategy[Requirement]:
    """A requirement as require() writes one, for a guard or a middleware rule."""
    return st.builds(
        lambda part: part.requirement,
        st.one_of(
            group_parts(),
            role_parts(),
            check_parts(),
            service_parts(),
            access_parts(),
            context_parts(),
        ),
    )


@dataclass(frozen=True)
class Caller:
    """Who sends the request: a token, or none."""

    name: str
    token: Callable[[AccessIssuer], str | None]


CALLERS = (
    Caller("nobody", lambda issuer: None),
    Caller("bad token", lambda issuer: "not-a-token"),
    # ada: hardware-key MFA, disk encrypted, signed in now, through Okta.
    Caller(
        "ada, Admins and Staff",
        lambda i: i.user_token(
            "ada@example.com",
            ["Admins", "Staff"],
            profile=identity_profile(
                amr=["pwd", "hwk"],
                posture={"disk": True},
                login_at=i.clock(),
                idp=("okta-1", "okta"),
            ),
        ),
    ),
    # bob: one-time-code MFA, disk not encrypted, signed in 2 h ago.
    Caller(
        "bob, Staff",
        lambda i: i.user_token(
            "bob@example.com",
            ["Staff"],
            profile=identity_profile(
                amr=["pwd", "otp"], posture={"disk": False}, login_at=i.clock() - 7200
            ),
        ),
    ),
    Caller("eve, no group", lambda i: i.user_token("eve@elsewhere.org")),
    Caller("known service token", lambda i: i.service_token("ci.access")),
    Caller("other known service token", lambda i: i.service_token("ops.access")),
    Caller("unknown service token", lambda i: i.service_token("stranger.access")),
)


def combine(requirements: Iterable[Requirement]) -> Requirement:
    """Every requirement at once (raises ValueError when they admit nobody together)."""
    combined = require()
    for requirement in requirements:
        combined = combined & requirement
    return combined


class Team:
    """One stand-in team, its tokens minted once, shared by every example."""

    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.issuer = AccessIssuer(clock=self.clock)
        self.session = self.issuer.session()
        self.tokens = [(caller.name, caller.token(self.issuer)) for caller in CALLERS]
        self.config = self.issuer.settings(
            CF_ACCESS_ROLES=ROLES,
            CF_ACCESS_SERVICE_TOKENS=KNOWN_SERVICE_TOKENS,
            CF_ACCESS_LOAD_KEYS_ON_INIT=False,
        )

    def app(self, name: str, **config: Any) -> Flask:
        app = Flask(name)
        app.config.update(self.config, **config)
        CloudflareAccess(app, clock=self.clock, session=self.session, background=run_inline)
        return app

    def outcomes(self, application: Any) -> dict[str, Outcome]:
        return {name: outcome(application, token, PATH) for name, token in self.tokens}

    def decisions(self, application: Any) -> dict[str, tuple[list[Outcome], int]]:
        """The access signals each caller's request sent, as the outcome each one
        says the client got, and how many times its token was verified (none
        when it sent none)."""
        counts = {}
        verify_entry = TokenVerifier.verify_entry
        for name, token in self.tokens:
            with (
                capture_access() as captured,
                mock.patch.object(
                    TokenVerifier, "verify_entry", autospec=True, side_effect=verify_entry
                ) as verified,
            ):
                Client(application).get(PATH, headers=bearer(token) if token else {})
            said = [
                OK if record.granted else Outcome(record.status or 0, record.reason)
                for record in captured
            ]
            counts[name] = (said, verified.call_count)
        return counts


@pytest.fixture(scope="module")
def team() -> Team:
    """The team every example shares."""
    return Team()


def reference_app(team: Team, requirement: Requirement, optional: bool) -> Flask:
    """One view checking the combined requirement, with nothing else around it."""
    app = team.app("reference")

    @app.get(PATH)
    def page() -> str:
        verify_access_in_request(requirement, optional=optional)
        return "page"

    return app


@dataclass(frozen=True)
class Hooks:
    """What the example puts around the view."""

    blueprint_guard: Requirement | None
    app_guard: tuple[Requirement, bool] | None
    protect_all: bool
    #: A ``before_request`` guard of the app's own on the blueprint, and whether
    #: it is registered before the blueprint's ``access_guard`` (else after it).
    blueprint_own: tuple[Requirement, bool] | None = None
    #: An ``access_guard`` on the app, registered before ``app_guard``.
    app_access_guard: Requirement | None = None
    #: A decorator of the app's own on the primitive, and where in the stack it
    #: goes (0: outermost; the stack's length: innermost).
    view_own: tuple[Requirement, int] | None = None

    @property
    def own_requirements(self) -> list[Requirement]:
        """What the guards beyond the app's hook and the blueprint's ``access_guard`` ask."""
        return [guard[0] for guard in (self.blueprint_own, self.view_own) if guard is not None] + (
            [self.app_access_guard] if self.app_access_guard is not None else []
        )


@st.composite
def hooks(draw: st.DrawFn) -> Hooks:
    blueprint_guard = draw(st.none() | requirements())
    app_guard = draw(st.none() | st.tuples(requirements(), st.booleans()))
    if app_guard is not None and app_guard[1] and app_guard[0].needs_identity:
        app_guard = (app_guard[0], False)  # optional with such a requirement: refused at the call
    return Hooks(
        blueprint_guard,
        app_guard,
        draw(st.booleans()),
        blueprint_own=draw(st.none() | st.tuples(requirements(), st.booleans())),
        app_access_guard=draw(st.none() | requirements()),
        view_own=draw(st.none() | st.tuples(requirements(), st.integers(0, 3))),
    )


def own_decorator(requirement: Requirement) -> Decorator:
    """A decorator of the app's own, on the primitive, as a user writes one."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper() -> str:
            verify_access_in_request(requirement)
            return view()

        return wrapper

    return decorator


def guarded_app(team: Team, stack: list[Part], around: Hooks) -> Flask:
    """The view under the drawn stack, inside the drawn hooks."""
    app = team.app("guarded", CF_ACCESS_PROTECT_ALL=around.protect_all)
    if around.app_access_guard is not None:
        app.before_request(access_guard(around.app_access_guard))
    if around.app_guard is not None:
        requirement, optional = around.app_guard

        @app.before_request
        def app_guard() -> None:
            verify_access_in_request(requirement, optional=optional)

    area = Blueprint("area", __name__, url_prefix="/area")
    own: Callable[[], None] | None = None
    if around.blueprint_own is not None:
        own_requirement = around.blueprint_own[0]

        def blueprint_own() -> None:
            verify_access_in_request(own_requirement)

        own = blueprint_own
    if own is not None and around.blueprint_own is not None and around.blueprint_own[1]:
        area.before_request(own)
    if around.blueprint_guard is not None:
        area.before_request(access_guard(around.blueprint_guard))
    if own is not None and around.blueprint_own is not None and not around.blueprint_own[1]:
        area.before_request(own)

    def page() -> str:
        return "page"

    decorators = [part.decorator for part in stack]
    if around.view_own is not None:
        view_requirement, at = around.view_own
        decorators.insert(min(at, len(decorators)), own_decorator(view_requirement))
    view = page
    for decorator in reversed(decorators):
        view = decorator(view)
    area.add_url_rule("/page", "page", view)
    app.register_blueprint(area)
    return app


@pytest.mark.slow
@settings(max_examples=80)
@given(stack=st.lists(parts, min_size=0, max_size=3), around=hooks())
def test_any_guards_admit_what_the_combined_requirement_admits(
    team: Team, stack: list[Part], around: Hooks
) -> None:
    """Stacks in any order, blueprint and app guards, deny by default: the combined answer.

    A view's decorators are optional if one of them says so, and refused when
    written if another needs an identity; guards meeting at request time
    (hooks and the view) are optional only when every one is.
    """
    if around.view_own is not None:
        # Split by a decorator of the app's own, the package's decorators are
        # two stacks: only an optional that no other guard meets is compared.
        assume(not any(part.optional for part in stack))
    try:
        decorated = combine(part.requirement for part in stack)
    except ValueError:  # admit nobody together: refused when written
        assume(around.view_own is None)  # unless split by a decorator of the app's own
        with pytest.raises(ValueError, match=r"admit no|both need|optional=True"):
            guarded_app(team, stack, around)
        return
    if any(part.optional for part in stack) and decorated.needs_identity:
        with pytest.raises(ConfigurationError, match="optional"):
            guarded_app(team, stack, around)
        return
    # In the order Flask runs them: the app's hook, the blueprint's, the view's decorators.
    around_requirements = [
        around.app_guard and around.app_guard[0],
        around.blueprint_guard,
        *around.own_requirements,
    ]
    try:
        combined = combine(r for r in around_requirements if r is not None) & decorated
    except ValueError:
        assume(False)  # guards and view admitting nobody together: not this test's subject
    # The view's decorators are optional if one says so (and none needs an identity).
    marks = [any(part.optional for part in stack)] if stack else []
    if around.blueprint_guard is not None:
        marks.append(False)
    if around.app_guard is not None:
        marks.append(around.app_guard[1])
    marks.extend(False for _ in around.own_requirements)
    if around.protect_all and not stack and around.blueprint_guard is None:
        marks.append(False)  # deny by default asks for a token where nothing else guards
    if not marks:
        return  # an open view: nothing to compare
    optional = all(marks)  # optional only when every guard is
    expected = team.outcomes(reference_app(team, combined, optional))
    guarded = guarded_app(team, stack, around)
    got = team.outcomes(guarded)
    if around.own_requirements:
        # Guards of the app's own check apart from the package's, one after
        # another: the first to refuse gives the reason, the status is the same.
        assert {name: answer.status for name, answer in got.items()} == {
            name: answer.status for name, answer in expected.items()
        }
    else:
        assert got == expected
    # Decided once: one signal per request, saying what the client got (none
    # for nobody on an optional view), and the token verified once however
    # many guards judged it.
    nobody_passes = expected["nobody"] == OK
    assert team.decisions(guarded) == {
        name: ([], 0)
        if name == "nobody" and nobody_passes
        else ([got[name]], int(name != "nobody"))
        for name, _ in team.tokens
    }


@pytest.mark.parametrize(
    "stack",
    [
        [require_access(optional=True), require_role("admin")],
        [require_role("admin"), require_access(optional=True)],
        [require_access(optional=True), require_group("Admins")],
        [require_group("Admins"), require_access(optional=True)],
        [require_access(optional=True), require_check(is_ada)],
        [require_check(is_ada), require_access(optional=True)],
        [require_access(optional=True), require_service_token()],
        [require_service_token("ci.access"), require_access(optional=True)],
        [require_access(optional=True), require_context(mfa=True)],
        [require_context(posture=["disk"]), require_access(optional=True)],
        [require_context(max_login_age=60), require_access(optional=True)],
    ],
)
def test_optional_stacked_with_a_requirement_is_refused(stack: list[Decorator]) -> None:
    """The reported stacks, in both orders, fail when written, saying why."""

    def admin() -> str:
        return "admin data"

    outer, inner = stack
    inner_view = inner(admin)
    with pytest.raises(ConfigurationError, match=r"optional=True.*nobody"):
        outer(inner_view)


def test_optional_primitive_with_a_requirement_is_refused(team: Team) -> None:
    """One call asking for both is refused too, before anything is checked."""
    with team.app("one call").test_request_context(PATH):
        with pytest.raises(ConfigurationError, match="optional"):
            verify_access_in_request(require(roles=["admin"]), optional=True)
        with pytest.raises(ConfigurationError, match="optional"):
            access_guard(require(groups=["Admins"]), optional=True)


@pytest.mark.parametrize("protect_all", [True, False])
@pytest.mark.parametrize(
    ("guard", "bob"), [(require(roles=["admin"]), Outcome(403, Reason.NO_ROLE)), (require(), OK)]
)
def test_optional_view_under_a_blueprint_guard_needs_a_token(
    team: Team, guard: Requirement, bob: Outcome, protect_all: bool
) -> None:
    """The reported case at request time: the blueprint's rule applies to nobody (401)."""
    guarded = guarded_app(
        team,
        [Part("optional", require_access(optional=True), require(), optional=True)],
        Hooks(guard, None, protect_all=protect_all),
    )
    answers = team.outcomes(guarded)
    assert answers["nobody"] == Outcome(401, Reason.MISSING_TOKEN)
    assert answers["bob, Staff"] == bob
    assert answers["ada, Admins and Staff"] == OK


def test_nobody_or_a_person_stays_optional(team: Team) -> None:
    """allow_service_tokens=False needs no identity: optional with it still admits nobody."""
    app = team.app("people")

    @app.get(PATH)
    @require_access(optional=True)
    @require_access(optional=True, allow_service_tokens=False)
    def page() -> str:
        return "page"

    answers = team.outcomes(app)
    assert answers["nobody"] == Outcome(200, None)
    assert answers["known service token"] == Outcome(403, Reason.SERVICE_TOKEN_REFUSED)


def downstream(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"page"]


@pytest.mark.slow
@settings(max_examples=60)
@given(rule=st.lists(requirements(), min_size=1, max_size=3))
def test_middleware_rules_admit_what_the_combined_requirement_admits(
    team: Team, rule: list[Requirement]
) -> None:
    """A middleware rule answers every caller as the view with the same requirement,
    and signals what it answered, once."""
    try:
        combined = combine(rule)
    except ValueError:
        assume(False)
    middleware = CloudflareAccessMiddleware.from_mapping(
        team.config,
        downstream,
        session=team.session,
        clock=team.clock,
        rules={"/area": combined},
        background=run_inline,
    )
    got = team.outcomes(middleware)
    assert got == team.outcomes(reference_app(team, combined, False))
    # One signal per request, saying what the client got; the token verified once.
    assert team.decisions(middleware) == {
        name: ([got[name]], int(name != "nobody")) for name, _ in team.tokens
    }


def test_route_audit_reports_what_the_view_admits(team: Team) -> None:
    """The audit shows what is enforced: an optional view under a role guard needs the role."""
    app = team.app("audited", CF_ACCESS_PROTECT_ALL=True)
    area = Blueprint("area", __name__, url_prefix="/area")
    area.before_request(access_guard(require(roles=["admin"])))

    @area.get("/landing")
    @require_access(optional=True)
    def guarded_landing() -> str:
        return "landing"

    app.register_blueprint(area)

    @app.get("/landing")
    @require_access(optional=True, allow_service_tokens=False)
    def landing() -> str:
        return "landing"

    @app.get("/profile")
    @require_access(account=False)
    def profile() -> str:
        return "profile"

    audits = {audit.rule: audit for audit in audit_routes(app)}
    assert audits["/area/landing"].requires == "token; roles: any of admin"
    assert audits["/area/landing"].status == "protected"
    assert audits["/landing"].requires == "token (optional); no service tokens"
    assert audits["/profile"].requires == "token; no account needed"


def test_route_audit_names_a_hand_written_guard(team: Team) -> None:
    """A before_request guard of the app's own is named where it applies, as unaudited."""
    app = team.app("hand-written")
    area = Blueprint("area", __name__, url_prefix="/area")

    @area.before_request
    def only_admins() -> None:
        verify_access_in_request(require(roles=["admin"]))

    area.add_url_rule("/page", "page", lambda: "page")
    app.register_blueprint(area)
    app.add_url_rule("/open", "open", lambda: "open")
    audits = {audit.rule: audit for audit in audit_routes(app)}
    assert audits["/area/page"].status == "unprotected"
    assert "only_admins" in audits["/area/page"].requires
    assert "access_guard()" in audits["/area/page"].requires
    assert audits["/open"].requires == "nothing"


@pytest.mark.slow
@settings(max_examples=40)
@given(rule=requirements(), view=requirements())
def test_middleware_in_front_of_guarded_views_decides_once(
    team: Team, rule: Requirement, view: Requirement
) -> None:
    """The middleware's rule in front of a Flask view's own guard: the view admits what
    both admit, and each request sends one signal, saying what the client got (the
    app's decision where it checks; the middleware's refusal where it refuses)."""
    try:
        combined = combine([rule, view])
    except ValueError:
        assume(False)
    app = team.app("behind")

    @app.get(PATH)
    @require_access(view)
    def page() -> str:
        return "page"

    app.wsgi_app = CloudflareAccessMiddleware.from_flask(  # type: ignore[method-assign]
        app, rules={"/area": rule}
    )
    got = team.outcomes(app)
    expected = team.outcomes(reference_app(team, combined, False))
    assert {name: answer.status for name, answer in got.items()} == {
        name: answer.status for name, answer in expected.items()
    }
    assert {name: said for name, (said, _) in team.decisions(app).items()} == {
        name: [got[name]] for name, _ in team.tokens
    }
