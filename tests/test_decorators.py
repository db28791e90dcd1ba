"""The decorators, the primitive, and the accessors of their result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask, g
from flask.ctx import _AppCtxGlobals

from flask_cf_access import (
    AccessForbidden,
    AccessIdentity,
    AccessUnauthorized,
    CloudflareAccess,
    NoAccessContextError,
    Reason,
    current_identity,
    get_claims,
    get_identity,
    require,
    require_access,
    require_group,
    verify_access_in_request,
)
from flask_cf_access.testing import AccessIssuer, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer, outcome


def test_bare_and_called_forms(app: Flask, issuer: AccessIssuer) -> None:
    """@require_access works bare and called; both protect."""
    client = app.test_client()
    token = issuer.user_token("ada@example.com")
    assert client.get("/", headers=bearer(token)).status_code == 200
    assert client.get("/humans", headers=bearer(token)).status_code == 200
    assert outcome(app, None, "/") == (401, Reason.MISSING_TOKEN)
    assert outcome(app, None, "/humans") == (401, Reason.MISSING_TOKEN)


def test_view_metadata_kept(make_app: AppFactory) -> None:
    """functools.wraps keeps the view's name and docstring (endpoints stay distinct)."""
    app = make_app()
    assert app.view_functions["home"].__name__ == "home"
    assert {"home", "humans", "admin", "claims"} <= set(app.view_functions)


def test_service_tokens_pass_require_access(app: Flask, issuer: AccessIssuer) -> None:
    """A service token passes @require_access; its name is the client id."""
    response = app.test_client().get("/", headers=bearer(issuer.service_token("ci.access")))
    assert response.status_code == 200
    assert response.json == {"email": None, "name": "ci.access"}


def test_route_can_refuse_service_tokens(app: Flask, issuer: AccessIssuer) -> None:
    """@require_access(allow_service_tokens=False) answers 403 to service tokens."""
    client = app.test_client()
    assert outcome(app, issuer.service_token(), "/humans") == (403, Reason.SERVICE_TOKEN_REFUSED)
    user = issuer.user_token("ada@example.com")
    assert client.get("/humans", headers=bearer(user)).status_code == 200


def test_async_views_under_both_decorators(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """async def views work under @require_access and @require_group."""
    app = make_app()

    @app.get("/async")
    @require_access
    async def async_view() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"email": current_identity.email}

    @app.get("/async-admin")
    @require_group("Admins")
    async def async_admin() -> str:
        await asyncio.sleep(0)
        return "admin"

    client = app.test_client()
    admin = issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True)
    staff = issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True)
    assert client.get("/async", headers=bearer(admin)).json == {"email": "ada@example.com"}
    assert outcome(app, None, "/async") == (401, Reason.MISSING_TOKEN)
    assert client.get("/async-admin", headers=bearer(admin)).status_code == 200
    assert outcome(app, staff, "/async-admin") == (403, Reason.NOT_IN_GROUP)


def test_view_not_called_when_refused(make_app: AppFactory) -> None:
    """A refused request never runs the view's body."""
    app = make_app()
    calls: list[str] = []

    @app.get("/counted")
    @require_access
    def counted() -> str:
        calls.append("ran")
        return "ran"

    assert outcome(app, "x.y.z", "/counted") == (401, Reason.MALFORMED_TOKEN)
    assert calls == []


def test_claims_on_g_are_read_only(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """g.cf_access_claims is a read-only mapping, the same as get_claims()."""
    app = make_app()

    @app.get("/mutate")
    @require_access
    def mutate() -> str:
        with pytest.raises(TypeError):
            g.cf_access_claims["email"] = "root@example.com"
        return str(get_claims()["email"])

    client = app.test_client()
    response = client.get("/mutate", headers=bearer(issuer.user_token("ada@example.com")))
    assert response.get_data(as_text=True) == "ada@example.com"
    response = client.get("/claims", headers=bearer(issuer.user_token("ada@example.com")))
    assert response.json is not None
    assert response.json["same"] is True


def test_accessors_raise_outside_a_protected_request(make_app: AppFactory) -> None:
    """get_claims, get_identity and current_identity raise outside a protected view."""
    app = make_app()
    with pytest.raises(NoAccessContextError):
        get_claims()
    with app.test_request_context("/"):
        with pytest.raises(NoAccessContextError):
            get_claims()
        with pytest.raises(NoAccessContextError):
            get_identity()
        with pytest.raises(NoAccessContextError):
            _ = current_identity.email


def test_nothing_on_g_after_a_refusal(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """Claims reach g only when every check passed (not after a 403)."""
    app = make_app()
    token = issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True)
    with app.test_request_context("/", headers=bearer(token)):
        with pytest.raises(AccessForbidden) as refused:
            verify_access_in_request(require(groups=["Admins"]))
        assert refused.value.reason is Reason.NOT_IN_GROUP
        assert "cf_access_claims" not in g
        assert "cf_access_identity" not in g


def test_primitive_in_a_blueprint_guard(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """verify_access_in_request() guards a whole blueprint from before_request."""
    app = make_app()
    admin = Blueprint("area", __name__, url_prefix="/area")

    @admin.before_request
    def only_admins() -> None:
        verify_access_in_request(require(groups=["Admins"]))

    @admin.get("/")
    def index() -> str:
        return f"hello {current_identity.email}"

    app.register_blueprint(admin)
    client = app.test_client()
    good = issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True)
    assert client.get("/area/", headers=bearer(good)).get_data(as_text=True) == (
        "hello ada@example.com"
    )
    assert outcome(app, None, "/area/") == (401, Reason.MISSING_TOKEN)
    staff = issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True)
    assert outcome(app, staff, "/area/") == (403, Reason.NOT_IN_GROUP)


def test_errors_customised_with_errorhandler(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """Plain @app.errorhandler(401/403) customise refusals and see the reason."""
    app = make_app()

    @app.errorhandler(401)
    def unauthorized(error: AccessUnauthorized) -> tuple[dict[str, str], int]:
        return {"login": "please"}, 401

    @app.errorhandler(AccessForbidden)
    def forbidden(error: AccessForbidden) -> tuple[str, int]:
        return f"custom {error.reason}", 403

    client = app.test_client()
    assert client.get("/").json == {"login": "please"}
    staff = issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True)
    response = client.get("/admin", headers=bearer(staff))
    assert (response.status_code, response.get_data(as_text=True)) == (403, "custom not_in_group")


def test_refusals_are_werkzeug_exceptions() -> None:
    """The refusals subclass werkzeug's Unauthorized, Forbidden, ServiceUnavailable."""
    from werkzeug.exceptions import Forbidden, ServiceUnavailable, Unauthorized

    from flask_cf_access import AccessUnavailable

    assert isinstance(AccessUnauthorized(Reason.EXPIRED), Unauthorized)
    assert isinstance(AccessForbidden(Reason.NOT_IN_GROUP), Forbidden)
    assert isinstance(AccessUnavailable(Reason.KEYS_UNAVAILABLE), ServiceUnavailable)
    assert "expired" not in AccessUnauthorized(Reason.EXPIRED).get_description()


def test_require_group_needs_groups() -> None:
    """require_group() with no group, or a non-string one, fails at decoration time."""
    with pytest.raises(TypeError):
        require_group()
    with pytest.raises(TypeError):
        require_group("")
    with pytest.raises(TypeError):
        require_group(5)  # type: ignore[arg-type]


def test_any_of_several_groups(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """require_group passes when the identity is in any one of the groups."""
    app = make_app()

    @app.get("/ops")
    @require_group("Admins", "Ops")
    def ops() -> str:
        return "ops"

    client = app.test_client()
    ops_user = issuer.user_token("o@example.com", ["Ops"], groups_in_token=True)
    nobody = issuer.user_token("n@example.com", [], groups_in_token=True)
    assert client.get("/ops", headers=bearer(ops_user)).status_code == 200
    assert outcome(app, nobody, "/ops") == (403, Reason.NOT_IN_GROUP)


def test_identity_properties(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """current_identity exposes email, sub, common_name, is_service_token, groups."""
    app = make_app()
    seen: dict[str, Any] = {}

    @app.get("/who")
    @require_access
    def who() -> str:
        seen.update(
            email=current_identity.email,
            sub=current_identity.sub,
            common_name=current_identity.common_name,
            service=current_identity.is_service_token,
            groups=[group.name for group in current_identity.groups],
            text=repr(current_identity._get_current_object()),  # type: ignore[attr-defined]
        )
        return "ok"

    client = app.test_client()
    token = issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True)
    client.get("/who", headers=bearer(token))
    assert seen["email"] == "ada@example.com"
    assert seen["sub"]
    assert seen["common_name"] is None
    assert seen["service"] is False
    assert seen["groups"] == ["Admins"]
    assert token not in seen["text"]
    client.get("/who", headers=bearer(issuer.service_token("robot.access")))
    robot = dict(seen)  # a new name: mypy still holds seen[...] to the asserts above
    assert (robot["email"], robot["sub"], robot["common_name"], robot["service"]) == (
        None,
        None,
        "robot.access",
        True,
    )
    assert robot["groups"] == []


def test_repeat_token_shares_one_read_only_identity(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """Requests with one remembered token get the same identity, which takes no new attributes."""
    app = make_app()
    seen: list[AccessIdentity] = []

    @app.get("/who")
    @require_access
    def who() -> str:
        seen.append(get_identity())
        return "ok"

    client = app.test_client()
    token = issuer.user_token("ada@example.com")
    for _ in range(2):
        assert client.get("/who", headers=bearer(token)).status_code == 200
    assert seen[0] is seen[1]
    with pytest.raises(AttributeError):
        seen[0].note = "per-request data belongs on g"  # type: ignore[attr-defined]


class EnsureSyncCountingFlask(Flask):
    """A Flask app whose ensure_sync() notes the name of every function it is asked about."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ensured: list[str] = []

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self.ensured.append(func.__name__)
        return super().ensure_sync(func)


def test_each_app_is_asked_to_ensure_sync(
    make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """One protected view served by two apps is run through each app's own ensure_sync()."""

    @require_access
    def shared() -> str:
        return "ok"

    plain = make_app()
    counting = EnsureSyncCountingFlask("counting")
    counting.config.update(issuer.settings())
    CloudflareAccess(counting, clock=clock, background=run_inline)
    for app in (plain, counting):
        app.add_url_rule("/shared", view_func=shared)
    token = issuer.user_token("ada@example.com")
    for app in (plain, counting, plain, counting):
        assert app.test_client().get("/shared", headers=bearer(token)).status_code == 200
    # Flask asks once for the wrapper, the wrapper once for the view.
    assert counting.ensured.count("shared") == 4


class RecordingGlobals(_AppCtxGlobals):
    """An app's own g class, noting every attribute set on it."""

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__.setdefault("names_set", []).append(name)
        super().__setattr__(name, value)


def test_an_apps_own_g_class_sees_the_attributes_set(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """With an app's own app_ctx_globals_class, the results are set through its __setattr__."""
    app = make_app()
    app.app_ctx_globals_class = RecordingGlobals

    @app.get("/recorded")
    @require_access
    def recorded() -> dict[str, Any]:
        return {"names": g.names_set, "email": g.cf_access_claims["email"]}

    token = issuer.user_token("ada@example.com")
    answer = app.test_client().get("/recorded", headers=bearer(token)).json
    assert answer == {
        "names": ["_cf_access", "cf_access_identity", "cf_access_claims"],
        "email": "ada@example.com",
    }
