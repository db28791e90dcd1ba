"""Roles, all-of, predicates and known service tokens: decorators, guards and middleware alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypedDict

import pytest
import responses
from flask import Blueprint, Flask
from werkzeug.test import Client

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    Reason,
    Requirement,
    access_guard,
    current_identity,
    require,
    require_access,
    require_check,
    require_group,
    require_role,
    require_service_token,
    verify_access_in_request,
)
from flask_cf_access._core.requirements import ANY_TOKEN
from flask_cf_access._flask.guards import GUARD_ATTRIBUTE
from flask_cf_access.testing import AccessCapture, AccessIssuer, capture_access, run_inline

from .front_ends import FRONT_ENDS, decorators_for
from .support import FrozenClock, bearer, identity_endpoint_down

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def starts_with_a(identity: AccessIdentity) -> bool:
    """A predicate: the e-mail starts with 'a'."""
    return (identity.email or "").startswith("a")


#: Each case: its path, the decorators of the view, and the same as one require().
CASES: dict[str, tuple[list[Callable[[Any], Any]], Requirement]] = {
    "role-admin": ([require_role("admin")], require(roles=["admin"])),
    "role-support": ([require_role("support")], require(roles=["support"])),
    "role-ops": ([require_role("ops")], require(roles=["ops"])),
    "roles-all": (
        [require_role("admin", "ops", match="all")],
        require(roles=["admin", "ops"], match="all"),
    ),
    "groups-all": (
        [require_group("Admins", "Ops", match="all")],
        require(groups=["Admins", "Ops"], match="all"),
    ),
    "check": ([require_check(starts_with_a)], require(check=starts_with_a)),
    "service": ([require_service_token("ci.access")], require(service_tokens=["ci.access"])),
    "any-service": ([require_service_token()], require(service_tokens=[])),
    "combined": (
        [require_group("Ops"), require_role("admin"), require_check(starts_with_a)],
        require(groups=["Ops"]) & require(roles=["admin"]) & require(check=starts_with_a),
    ),
    "humans-admin": (
        [require_role("admin", allow_service_tokens=False)],
        require(roles=["admin"], allow_service_tokens=False),
    ),
}

#: Who calls: a user's groups, or a service token's client id.
CALLERS: dict[str, tuple[str, list[str]] | str] = {
    "ada": ("ada@example.com", ["Admins", "Ops"]),
    "zed": ("zed@example.com", ["Admins", "Ops"]),
    "bob": ("bob@example.com", ["Staff"]),
    "carol": ("carol@example.com", ["Support"]),
    "ci": "ci.access",
    "monitor": "monitor.access",
    "stranger": "stranger.access",
}

OK = 200
R = Reason
#: The expected outcome of each case for each caller: 200 or the refusal's reason.
EXPECTED: dict[str, dict[str, int | Reason]] = {
    "role-admin": {
        "ada": OK, "zed": OK, "bob": R.NO_ROLE, "carol": R.NO_ROLE,
        "ci": R.NO_ROLE, "monitor": OK,
    },
    "role-support": {
        "ada": R.NO_ROLE, "zed": R.NO_ROLE, "bob": R.NO_ROLE, "carol": OK,
        "ci": R.NO_ROLE, "monitor": R.NO_ROLE,
    },
    "role-ops": {
        "ada": OK, "zed": OK, "bob": R.NO_ROLE, "carol": R.NO_ROLE, "ci": OK, "monitor": R.NO_ROLE,
    },
    "roles-all": {
        "ada": OK, "zed": OK, "bob": R.NOT_ALL_ROLES, "carol": R.NOT_ALL_ROLES,
        "ci": R.NOT_ALL_ROLES, "monitor": R.NOT_ALL_ROLES,
    },
    "groups-all": {
        "ada": OK, "zed": OK, "bob": R.NOT_IN_ALL_GROUPS, "carol": R.NOT_IN_ALL_GROUPS,
        "ci": R.NOT_IN_ALL_GROUPS, "monitor": R.NOT_IN_ALL_GROUPS,
    },
    "check": {
        "ada": OK, "zed": R.CHECK_FAILED, "bob": R.CHECK_FAILED, "carol": R.CHECK_FAILED,
        "ci": R.CHECK_FAILED, "monitor": R.CHECK_FAILED,
    },
    "service": {
        "ada": R.SERVICE_TOKEN_REQUIRED, "zed": R.SERVICE_TOKEN_REQUIRED,
        "bob": R.SERVICE_TOKEN_REQUIRED, "carol": R.SERVICE_TOKEN_REQUIRED,
        "ci": OK, "monitor": R.SERVICE_TOKEN_NOT_ADMITTED,
    },
    "any-service": {
        "ada": R.SERVICE_TOKEN_REQUIRED, "zed": R.SERVICE_TOKEN_REQUIRED,
        "bob": R.SERVICE_TOKEN_REQUIRED, "carol": R.SERVICE_TOKEN_REQUIRED,
        "ci": OK, "monitor": OK,
    },
    "combined": {
        "ada": OK, "zed": R.CHECK_FAILED, "bob": R.NOT_IN_GROUP, "carol": R.NOT_IN_GROUP,
        "ci": R.NOT_IN_GROUP, "monitor": R.NOT_IN_GROUP,
    },
    "humans-admin": {
        "ada": OK, "zed": OK, "bob": R.NO_ROLE, "carol": R.NO_ROLE,
        "ci": R.SERVICE_TOKEN_REFUSED, "monitor": R.SERVICE_TOKEN_REFUSED,
    },
}  # fmt: skip
for outcomes in EXPECTED.values():
    # Not in CF_ACCESS_SERVICE_TOKENS: refused everywhere, whatever the view asks.
    outcomes["stranger"] = R.UNKNOWN_SERVICE_TOKEN


def settings(issuer: AccessIssuer) -> dict[str, Any]:
    """Roles (one by group id) and two known service tokens."""
    return issuer.settings(
        CF_ACCESS_ROLES={
            "admin": ["Admins"],
            "support": ["Support", "id:" + issuer.group_id("Helpdesk")],
            "ops": "Ops",
        },
        CF_ACCESS_SERVICE_TOKENS={
            "ci.access": {"name": "ci-deployer", "groups": ["Deployers"], "roles": ["ops"]},
            "monitor.access": {"groups": ["Admins"]},
        },
    )


def decorated_app(issuer: AccessIssuer, clock: FrozenClock) -> Flask:
    """A route per case, protected by the case's decorators."""
    app = Flask("decorated")
    app.config.update(settings(issuer))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    for name, (decorators, _) in CASES.items():

        def view() -> str:
            return current_identity.name

        for decorator in reversed(decorators):
            view = decorator(view)
        app.add_url_rule(f"/{name}", name, view)
    return app


def middleware_app(issuer: AccessIssuer, clock: FrozenClock) -> CloudflareAccessMiddleware:
    """The middleware, a rule per case, passing REMOTE_USER on as the body."""

    def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["REMOTE_USER"].encode()]

    config = settings(issuer)
    return CloudflareAccessMiddleware(
        downstream,
        team_domain=config["CF_ACCESS_TEAM_DOMAIN"],
        audience=config["CF_ACCESS_AUDIENCE"],
        roles=config["CF_ACCESS_ROLES"],
        service_tokens=config["CF_ACCESS_SERVICE_TOKENS"],
        session=issuer.session(),
        clock=clock,
        rules={f"/{name}": requirement for name, (_, requirement) in CASES.items()},
        background=run_inline,
    )


def token_of(issuer: AccessIssuer, caller: str, groups_in_token: bool) -> str:
    """The token of ``caller``; a user's groups in the token, or left to get-identity."""
    who = CALLERS[caller]
    if isinstance(who, str):
        return issuer.service_token(who)
    email, groups = who
    return issuer.user_token(email, groups, groups_in_token=groups_in_token)


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
@pytest.mark.parametrize("groups_in_token", [True, False], ids=["token groups", "get-identity"])
@pytest.mark.parametrize("case", list(CASES))
def test_requirement_outcomes(
    front_end: str,
    groups_in_token: bool,
    case: str,
    issuer: AccessIssuer,
    clock: FrozenClock,
    captured: AccessCapture,
) -> None:
    """Every requirement, alone and combined, admits and refuses the same callers everywhere."""
    rules = {f"/{name}": requirement for name, (_, requirement) in CASES.items()}
    app = FRONT_ENDS[front_end](settings(issuer), rules, issuer.session(), clock)
    client = Client(app)
    for caller, expected in EXPECTED[case].items():
        captured.clear()
        response = client.get(f"/{case}", headers=bearer(token_of(issuer, caller, groups_in_token)))
        if expected == OK:
            assert response.status_code == 200, (caller, captured.reasons)
            assert captured.reasons == []
        else:
            assert (response.status_code, captured.reasons) == (403, [expected]), caller
            assert str(expected) not in response.get_data(as_text=True)


@pytest.mark.parametrize("case", list(CASES))
def test_decorators_build_the_same_requirement(case: str) -> None:
    """A case's decorators, those the front ends' registry stacks for its require(), and that
    require() are one and the same requirement."""
    decorators, requirement = CASES[case]

    def view() -> str:
        return ""

    for stack in (decorators, decorators_for(requirement)):
        decorated = view
        for decorator in reversed(stack):
            decorated = decorator(decorated)
        assert getattr(decorated, GUARD_ATTRIBUTE).requirement == requirement


def test_no_token_is_401_before_any_requirement(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """Without a token every case answers 401 missing_token, not 403."""
    client = decorated_app(issuer, clock).test_client()
    for case in CASES:
        assert client.get(f"/{case}").status_code == 401
    assert set(captured.reasons) == {Reason.MISSING_TOKEN}


def test_known_service_token_name_and_groups(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A known service token goes by its configured name, groups and roles."""
    app = decorated_app(issuer, clock)

    @app.get("/me")
    @require_access
    def me() -> dict[str, Any]:
        return {
            "name": current_identity.name,
            "groups": [group.name for group in current_identity.groups],
            "roles": sorted(current_identity.roles),
        }

    client = app.test_client()
    ci = client.get("/me", headers=bearer(issuer.service_token("ci.access"))).json
    assert ci == {"name": "ci-deployer", "groups": ["Deployers"], "roles": ["ops"]}
    monitor = client.get("/me", headers=bearer(issuer.service_token("monitor.access"))).json
    assert monitor == {"name": "monitor.access", "groups": ["Admins"], "roles": ["admin"]}


def test_middleware_passes_the_configured_name(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """REMOTE_USER of a known service token is its configured name."""
    response = Client(middleware_app(issuer, clock)).get(
        "/service", headers=bearer(issuer.service_token("ci.access"))
    )
    assert response.get_data(as_text=True) == "ci-deployer"


def test_any_service_token_without_the_setting(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """Without CF_ACCESS_SERVICE_TOKENS any service token passes @require_access, with no role."""
    app = Flask("open")
    app.config.update(issuer.settings(CF_ACCESS_ROLES={"admin": ["Admins"]}))
    CloudflareAccess(app, clock=clock, background=run_inline)

    @app.get("/")
    @require_access
    def home() -> dict[str, Any]:
        return {"name": current_identity.name, "roles": sorted(current_identity.roles)}

    response = app.test_client().get("/", headers=bearer(issuer.service_token("any.access")))
    assert response.json == {"name": "any.access", "roles": []}


def identity_calls(app: Flask, issuer: AccessIssuer) -> int:
    """How often the app asked the stand-in's get-identity."""
    checker = app.extensions["cf_access"].checker
    adapter: Any = checker.identity_endpoint._session.get_adapter(issuer.identity_url)
    return int(adapter.calls.get("/cdn-cgi/access/get-identity", 0))


def test_roles_resolve_groups_once_per_token(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Roles ask get-identity once per token; the roles are one frozenset, shared."""
    app = decorated_app(issuer, clock)
    seen: list[frozenset[str]] = []

    @app.get("/roles")
    @require_role("admin")
    def roles() -> str:
        seen.append(current_identity.roles)
        return ""

    client = app.test_client()
    token = issuer.user_token("ada@example.com", ["Admins"])
    for _ in range(3):
        assert client.get("/roles", headers=bearer(token)).status_code == 200
    assert identity_calls(app, issuer) == 1
    assert seen[0] == frozenset({"admin"})
    assert isinstance(seen[0], frozenset)
    assert seen[0] is seen[1] is seen[2]


def test_role_by_group_id(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """A role mapped to ``id:<group id>`` is granted by get-identity's group objects with
    that id, not by a token's bare group names (which have no id), nor by a group named so."""
    client = decorated_app(issuer, clock).test_client()
    from_identity = issuer.user_token("carol@example.com", ["Helpdesk"])
    assert client.get("/role-support", headers=bearer(from_identity)).status_code == 200
    names_only = issuer.user_token("carol@example.com", ["Helpdesk"], groups_in_token=True)
    assert client.get("/role-support", headers=bearer(names_only)).status_code == 403
    assert captured.last.reason is Reason.NO_ROLE
    # A group *named* as the id is not that group: not from the token, not from get-identity.
    named_as_id = issuer.user_token("eve@example.com", [issuer.group_id("Helpdesk")])
    assert client.get("/role-support", headers=bearer(named_as_id)).status_code == 403
    assert captured.last.reason is Reason.NO_ROLE
    carried = issuer.user_token(
        "eve@example.com", [issuer.group_id("Helpdesk")], groups_in_token=True
    )
    assert client.get("/role-support", headers=bearer(carried)).status_code == 403
    assert captured.last.reason is Reason.NO_ROLE


def test_roles_from_the_token_ask_nothing(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Groups carried by the token give the roles without get-identity."""
    app = decorated_app(issuer, clock)
    token = issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True)
    assert app.test_client().get("/role-admin", headers=bearer(token)).status_code == 200
    assert identity_calls(app, issuer) == 0


def test_plain_views_ask_for_no_groups(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A view needing only a token does not resolve roles or groups."""
    app = decorated_app(issuer, clock)

    @app.get("/plain")
    @require_access
    def plain() -> str:
        return ""

    token = issuer.user_token("ada@example.com", ["Admins"])
    assert app.test_client().get("/plain", headers=bearer(token)).status_code == 200
    assert identity_calls(app, issuer) == 0


def test_roles_unavailable_is_503(
    issuer: AccessIssuer, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role view whose groups cannot be had answers 503 identity_unavailable."""
    app = decorated_app(issuer, clock)
    identity_endpoint_down(issuer, monkeypatch)
    token = issuer.mint({"email": "ada@example.com", "sub": "ada-id"})
    with capture_access(app) as captured:
        response = app.test_client().get("/role-admin", headers=bearer(token))
    assert response.status_code == 503
    assert [record.error.reason for record in captured.denied if record.error] == [
        Reason.IDENTITY_UNAVAILABLE
    ]


def test_stacked_decorators_verify_once(
    issuer: AccessIssuer,
    clock: FrozenClock,
    captured: AccessCapture,
) -> None:
    """Stacked decorators make one wrapper: one check, one signal per request."""
    app = decorated_app(issuer, clock)
    client = app.test_client()
    ada = issuer.user_token("ada@example.com", ["Admins", "Ops"])
    assert client.get("/combined", headers=bearer(ada)).status_code == 200
    assert len(captured.granted) == 1
    zed = issuer.user_token("zed@example.com", ["Admins", "Ops"])
    assert client.get("/combined", headers=bearer(zed)).status_code == 403
    assert captured.reasons == [Reason.CHECK_FAILED]
    assert len(captured) == 2  # one decision per request
    # functools.wraps keeps the wrapped view in the wrapper's __dict__.
    assert vars(app.view_functions["combined"])["__wrapped__"].__name__ == "view"


def test_foreign_decorator_between_is_kept(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """A decorator between two of ours is not skipped: both requirements still hold."""
    app = decorated_app(issuer, clock)
    calls: list[str] = []

    def counted(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append("counted")
            return view(*args, **kwargs)

        return wrapper

    @app.get("/layered")
    @require_check(starts_with_a)
    @counted
    @require_role("admin")
    def layered() -> str:
        return "ok"

    client = app.test_client()
    ada = issuer.user_token("ada@example.com", ["Admins"])
    assert client.get("/layered", headers=bearer(ada)).status_code == 200
    assert calls == ["counted"]
    bea = issuer.user_token("bea@example.com", ["Staff"])
    assert client.get("/layered", headers=bearer(bea)).status_code == 403
    assert captured.last.reason is Reason.CHECK_FAILED
    zed = issuer.user_token("zed@example.com", ["Admins"])
    assert client.get("/layered", headers=bearer(zed)).status_code == 403
    assert captured.last.reason is Reason.CHECK_FAILED


def test_async_views(issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture) -> None:
    """Role, all-of and predicate decorators protect async views too."""
    app = decorated_app(issuer, clock)

    @app.get("/async")
    @require_role("admin", "ops", match="all")
    @require_check(starts_with_a)
    async def async_view() -> str:
        await asyncio.sleep(0)
        return current_identity.name

    client = app.test_client()
    ada = issuer.user_token("ada@example.com", ["Admins", "Ops"])
    assert client.get("/async", headers=bearer(ada)).get_data(as_text=True) == "ada@example.com"
    bob = issuer.user_token("bob@example.com", ["Admins"])
    assert client.get("/async", headers=bearer(bob)).status_code == 403
    assert captured.reasons == [Reason.NOT_ALL_ROLES]


def test_check_must_return_true(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """A predicate returning a truthy value that is not True refuses (fail closed)."""
    app = decorated_app(issuer, clock)

    @app.get("/truthy")
    @require_check(lambda identity: "yes")  # type: ignore[arg-type,return-value]
    def truthy() -> str:
        return ""

    token = issuer.user_token("ada@example.com")
    assert app.test_client().get("/truthy", headers=bearer(token)).status_code == 403
    assert captured.last.reason is Reason.CHECK_FAILED


def test_check_sees_claims(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """A predicate can judge any claim, e.g. a SAML attribute in custom."""
    app = decorated_app(issuer, clock)

    @app.get("/rnd")
    @require_check(lambda identity: identity.claims.get("custom", {}).get("dept") == "R&D")
    def rnd() -> str:
        return ""

    client = app.test_client()
    inside = issuer.user_token("ada@example.com", custom={"dept": "R&D"})
    outside = issuer.user_token("bob@example.com", custom={"dept": "Sales"})
    assert client.get("/rnd", headers=bearer(inside)).status_code == 200
    assert client.get("/rnd", headers=bearer(outside)).status_code == 403
    assert captured.last.reason is Reason.CHECK_FAILED


def test_primitive_combines_groups_and_requirement(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """verify_access_in_request(requirement, groups=…), deprecated, still needs both."""
    app = decorated_app(issuer, clock)

    @app.get("/both")
    def both() -> str:
        verify_access_in_request(groups=["Ops"], requirement=require(roles=["admin"]))
        return ""

    client = app.test_client()
    with pytest.deprecated_call():
        refused = client.get("/both", headers=bearer(issuer.user_token("a@x.io", ["Admins"])))
    assert refused.status_code == 403
    assert captured.reasons == [Reason.NOT_IN_GROUP]
    ok = issuer.user_token("a@x.io", ["Admins", "Ops"])
    with pytest.deprecated_call():
        assert client.get("/both", headers=bearer(ok)).status_code == 200


def test_access_guard_on_the_app(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """access_guard registered on the app guards every endpoint."""
    app = Flask("whole")
    app.config.update(settings(issuer))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    app.before_request(access_guard(require(roles=["admin"])))
    app.add_url_rule("/", "home", lambda: "ok")
    client = app.test_client()
    assert (
        client.get("/", headers=bearer(issuer.user_token("b@x.io", ["Staff"]))).status_code == 403
    )
    assert captured.last.reason is Reason.NO_ROLE
    assert (
        client.get("/", headers=bearer(issuer.user_token("a@x.io", ["Admins"]))).status_code == 200
    )


# -- building requirements -------------------------------------------------------


def test_require_validates_its_arguments() -> None:
    """require() and the decorators refuse what cannot be a requirement, at once."""
    with pytest.raises(TypeError, match="match"):
        require(roles=["admin"], match="some")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="roles"):
        require(roles=[""])
    with pytest.raises(TypeError, match="check"):
        require(check="admin")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="role"):
        require_role()
    with pytest.raises(TypeError, match="role"):
        require_role("admin", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        require_check("admin")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="service_tokens"):
        require_service_token("")
    with pytest.raises(TypeError, match="require"):
        access_guard(["Admins"])  # type: ignore[arg-type]


def test_contradictions_are_refused() -> None:
    """Requirements that admit nobody together raise when combined."""
    with pytest.raises(ValueError, match="need and refuse"):
        require(service_tokens=["ci.access"], allow_service_tokens=False)
    with pytest.raises(ValueError, match="no service token"):
        require(service_tokens=["a.access"]) & require(service_tokens=["b.access"])
    with pytest.raises(ValueError, match="need and refuse"):
        require_service_token()(require_access(allow_service_tokens=False)(lambda: ""))


def test_combining() -> None:
    """& keeps every clause once; any service token narrowed by a list is the list."""
    admin = require(roles=["admin"])
    assert admin & admin == admin
    assert (admin & require()) is admin
    assert require(service_tokens=[]) & require(service_tokens=["a.access"]) == require(
        service_tokens=["a.access"]
    )
    both = require(groups=["A"]) & require(groups=["B"])
    assert both.groups == (("any", ("A",)), ("any", ("B",)))
    assert require(roles=["x"], match="all").roles == (("any", ("x",)),)


def test_describe() -> None:
    """A requirement in words, for the route audit."""
    requirement = (
        require(groups=["Admins", "Ops"], match="all")
        & require(roles=["admin"])
        & require(check=starts_with_a, allow_service_tokens=False)
    )
    assert requirement.describe() == (
        "token; groups: all of Admins, Ops; roles: any of admin; no service tokens;"
        " check: starts_with_a"
    )
    assert require(service_tokens=["b.access", "a.access"]).describe() == (
        "token; service tokens only: a.access, b.access"
    )


class MiddlewareSettings(TypedDict):
    """The settings every middleware in a test shares."""

    team_domain: str
    audience: str
    load_keys_on_init: bool


def test_middleware_rules_validated(issuer: AccessIssuer) -> None:
    """Rules take groups or a requirement; a rule needing service tokens that are refused fails."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        return []

    base = MiddlewareSettings(
        team_domain=issuer.team_domain, audience=issuer.audience, load_keys_on_init=False
    )
    with pytest.raises(ConfigurationError, match="require"):
        # 3 is deliberately not a group: the rule is refused at start-up.
        CloudflareAccessMiddleware(app, rules={"/x": [3]}, **base, background=run_inline)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="allow_service_tokens"):
        CloudflareAccessMiddleware(
            app,
            rules={"/ci": require(service_tokens=[])},
            allow_service_tokens=False,
            **base,
            background=run_inline,
        )
    middleware = CloudflareAccessMiddleware(
        app,
        rules={"/admin": ["Admins"], "/ops": require(roles=["ops"])},
        **base,
        background=run_inline,
    )
    assert middleware.groups_for("/admin/x") == ("Admins",)
    assert middleware.requirement_for("/ops/y") == require(roles=["ops"])
    assert middleware.requirement_for("/other") == require()


def test_check_that_raises_refuses_and_logs(
    issuer: AccessIssuer,
    clock: FrozenClock,
    captured: AccessCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A check raising on a claim it did not expect answers 403 check_failed, not 500, and logs."""
    app = decorated_app(issuer, clock)

    def department(identity: AccessIdentity) -> bool:
        return bool(identity.claims["custom"]["dept"] == "R&D")

    @app.get("/dept")
    @require_check(department)
    def dept() -> str:
        return ""

    token = issuer.user_token("ada@example.com")
    with caplog.at_level("ERROR", logger="flask_cf_access"):
        response = app.test_client().get("/dept", headers=bearer(token))
    assert response.status_code == 403
    assert captured.reasons == [Reason.CHECK_FAILED]
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "department raised" in record.getMessage()
    assert record.exc_info is not None
    assert token not in caplog.text


def test_check_may_raise_an_access_error(
    issuer: AccessIssuer,
    clock: FrozenClock,
    captured: AccessCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An AccessError raised by a check is answered as it is (here 503)."""
    app = decorated_app(issuer, clock)
    identity_endpoint_down(issuer, monkeypatch)

    def needs_groups(identity: AccessIdentity) -> bool:
        return bool(identity.groups)

    @app.get("/groups")
    @require_check(needs_groups)
    def groups() -> str:
        return ""

    token = issuer.mint({"email": "ada@example.com", "sub": "ada-id"})
    assert app.test_client().get("/groups", headers=bearer(token)).status_code == 503
    assert captured.reasons == [Reason.IDENTITY_UNAVAILABLE]


def test_async_check_refused_at_decoration() -> None:
    """An async check cannot be awaited by the guard: TypeError when decorating."""

    async def check(identity: AccessIdentity) -> bool:
        return True

    with pytest.raises(TypeError, match="async"):
        require_check(check)  # type: ignore[arg-type]


def test_access_guard_on_a_nested_blueprint(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """A parent blueprint's access_guard guards its nested blueprints' views."""
    app = Flask("nested")
    app.config.update(settings(issuer))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    parent = Blueprint("parent", __name__)
    parent.before_request(access_guard(require(roles=["admin"])))
    child = Blueprint("child", __name__)
    child.add_url_rule("/", "index", lambda: "child")
    parent.register_blueprint(child, url_prefix="/child")
    app.register_blueprint(parent, url_prefix="/parent")
    client = app.test_client()
    staff = issuer.user_token("b@x.io", ["Staff"])
    assert client.get("/parent/child/", headers=bearer(staff)).status_code == 403
    assert captured.last.reason is Reason.NO_ROLE
    admin = issuer.user_token("a@x.io", ["Admins"])
    assert client.get("/parent/child/", headers=bearer(admin)).status_code == 200


def test_middleware_without_rules_needs_only_a_token(issuer: AccessIssuer) -> None:
    """With no rule and service tokens allowed, a path needs the plain token requirement."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        return []

    middleware = CloudflareAccessMiddleware(
        app,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        load_keys_on_init=False,
        background=run_inline,
    )
    assert middleware.requirement_for("/anything") is ANY_TOKEN
