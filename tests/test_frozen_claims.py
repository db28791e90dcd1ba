"""Verified claims are read-only all the way down: no view can change a later request's verdict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import responses
from flask import Flask, g
from werkzeug.test import Client

from flask_cf_access import (
    CloudflareAccess,
    CloudflareAccessMiddleware,
    Reason,
    current_identity,
    get_claims,
    require_access,
    require_group,
)
from flask_cf_access.testing import AccessIssuer, run_inline

from .support import FrozenClock, bearer
from .verdicts import refusal_reasons, verdict

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Mutation = Callable[[Mapping[str, Any]], None]


def append_to_groups(claims: Mapping[str, Any]) -> None:
    claims["groups"].append("Admins")


def extend_groups(claims: Mapping[str, Any]) -> None:
    claims["groups"] += ["Admins"]  # type: ignore[index]


def append_to_custom_groups(claims: Mapping[str, Any]) -> None:
    claims["custom"]["groups"].append("Admins")


def replace_custom_groups(claims: Mapping[str, Any]) -> None:
    claims["custom"]["groups"] = ["Admins"]


def update_custom(claims: Mapping[str, Any]) -> None:
    claims["custom"].update(groups=["Admins"])


def rename_group_object(claims: Mapping[str, Any]) -> None:
    claims["groups"][0]["name"] = "Admins"


#: What each token carries, and a mutation a careless view might make of it.
CASES: dict[str, tuple[dict[str, Any], Mutation]] = {
    "append to groups": ({"groups": ["Eng"]}, append_to_groups),
    "extend groups": ({"groups": ["Eng"]}, extend_groups),
    "append to custom.groups": ({"custom": {"groups": ["Eng"]}}, append_to_custom_groups),
    "replace custom.groups": ({"custom": {"groups": ["Eng"]}}, replace_custom_groups),
    "update custom": ({"custom": {"groups": ["Eng"]}}, update_custom),
    "rename a group object": ({"groups": [{"id": "eng", "name": "Eng"}]}, rename_group_object),
}


@pytest.fixture
def mutating_app(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> Flask:
    """An app whose /mutate view tries the mutation named by the query string on the claims."""
    app = Flask("mutating")
    app.config.update(issuer.settings())
    CloudflareAccess(app, clock=clock, background=run_inline)

    @app.get("/mutate/<case>")
    @require_access
    def mutate(case: str) -> dict[str, Any]:
        mutation = CASES[case][1]
        refused = []
        for claims in (get_claims(), g.cf_access_claims, current_identity.claims):
            try:
                mutation(claims)
            except (AttributeError, TypeError):
                refused.append(True)
        return {"refused": refused}

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> str:
        return "admin"

    @app.get("/claims")
    @require_access
    def claims() -> dict[str, Any]:
        return dict(get_claims())

    return app


def user_token(issuer: AccessIssuer, carried: dict[str, Any]) -> str:
    return issuer.mint({"email": "ada@example.com", "sub": "ada", **carried})


@pytest.mark.parametrize("case", CASES)
def test_view_cannot_grant_a_group_to_later_requests(
    mutating_app: Flask, issuer: AccessIssuer, case: str
) -> None:
    """Whatever a view does to the claims it can reach, the token's next request is still 403."""
    token = user_token(issuer, CASES[case][0])
    client = mutating_app.test_client()
    response = client.get(f"/mutate/{case}", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"refused": [True, True, True]}
    assert verdict(mutating_app, token, "/admin") == (403, Reason.NOT_IN_GROUP)


def test_every_nested_value_is_read_only(mutating_app: Flask, issuer: AccessIssuer) -> None:
    """Arrays arrive as tuples and objects as read-only mappings, at every depth."""
    token = user_token(issuer, {"groups": [{"id": "eng"}], "custom": {"a": {"b": [[1], {}]}}})
    seen: list[object] = []

    @mutating_app.get("/walk")
    @require_access
    def walk() -> str:
        pending: list[object] = [get_claims()]
        while pending:
            value = pending.pop()
            seen.append(value)
            if isinstance(value, Mapping):
                pending.extend(value.values())
            elif isinstance(value, tuple):
                pending.extend(value)
        return "walked"

    assert mutating_app.test_client().get("/walk", headers=bearer(token)).status_code == 200
    assert not any(isinstance(value, list) for value in seen)
    for value in seen:
        if isinstance(value, Mapping):
            with pytest.raises(TypeError):
                value["x"] = 1  # type: ignore[index]


def test_claims_still_serialise_as_json(mutating_app: Flask, issuer: AccessIssuer) -> None:
    """A view returning the claims gets JSON arrays and objects, as in the token."""
    carried = {"groups": [{"id": "eng", "name": "Eng"}], "custom": {"roles": ["a", "b"]}}
    token = user_token(issuer, carried)
    response = mutating_app.test_client().get("/claims", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json()["groups"] == carried["groups"]
    assert response.get_json()["custom"] == carried["custom"]


def test_middleware_app_cannot_change_later_requests(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Behind the middleware, an app changing the environ's claims changes no later verdict."""
    refused: list[bool] = []

    def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        claims = environ["cf_access.claims"]
        for mutation in (append_to_groups, append_to_custom_groups):
            try:
                mutation(claims)
            except (AttributeError, TypeError):
                refused.append(True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_X_ROLES", "").encode()]

    middleware = CloudflareAccessMiddleware(
        downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        rules={"/admin": ["Admins"]},
        headers={"X-Roles": "custom.groups"},
        background=run_inline,
    )
    token = user_token(issuer, {"groups": ["Eng"], "custom": {"groups": ["Eng"]}})
    client = Client(middleware)
    assert client.get("/", headers=bearer(token)).get_data() == b"Eng"
    assert client.get("/", headers=bearer(token)).get_data() == b"Eng"
    assert refused == [True] * 4
    with refusal_reasons() as reasons:
        assert client.get("/admin", headers=bearer(token)).status_code == 403
    assert reasons == [Reason.NOT_IN_GROUP]
