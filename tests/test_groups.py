"""Groups: from the token when it carries them, else from get-identity, once per token."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, TypedDict

import pytest
import requests
import responses
from cachelib import SimpleCache
from flask import Flask

from flask_cf_access import Reason, require_group
from flask_cf_access.testing import AccessIssuer

from .conftest import AppFactory
from .support import FrozenClock, count_calls, outcome, sent_kwargs


def identity_calls(mock: responses.RequestsMock, issuer: AccessIssuer) -> int:
    return count_calls(mock, issuer.identity_url)


def test_groups_in_token_used_without_fetching(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """Groups carried in the token decide; get-identity is not asked."""
    admin = issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True)
    other = issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True)
    assert outcome(app, admin, "/admin") == (200, None)
    assert outcome(app, other, "/admin") == (403, Reason.NOT_IN_GROUP)
    assert identity_calls(mocked_team, issuer) == 0


def test_custom_groups_from_saml(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """custom.groups (SAML/OIDC attributes) count as the token's groups."""
    token = issuer.mint({"email": "ada@example.com", "sub": "1", "custom": {"groups": ["Admins"]}})
    assert outcome(app, token, "/admin") == (200, None)
    assert identity_calls(mocked_team, issuer) == 0


def test_group_objects_matched_by_name_or_id(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """Groups given as objects match by name, and by id written ``id:<id>``; an id
    matches only ids and a name only names."""
    app = make_app()

    @app.get("/by-id")
    @require_group("id:f0e1")
    def by_id() -> str:
        return "ok"

    @app.get("/bare-id")
    @require_group("f0e1")
    def bare_id() -> str:
        return "ok"

    group = {"id": "f0e1", "name": "Admins", "email": "admins@example.com"}
    by_object = issuer.mint({"email": "a@example.com", "sub": "1", "groups": [group]})
    assert outcome(app, by_object, "/admin") == (200, None)
    assert outcome(app, by_object, "/by-id") == (200, None)
    assert outcome(app, by_object, "/bare-id") == (403, Reason.NOT_IN_GROUP)
    assert outcome(app, issuer.mint({"groups": ["Admins"], "sub": "1"}), "/by-id") == (
        403,
        Reason.NOT_IN_GROUP,
    )
    # A group whose name is another group's id is not that group.
    impostor = {"id": "e9d8", "name": "f0e1"}
    named_as_id = issuer.mint({"email": "e@example.com", "sub": "2", "groups": [impostor]})
    assert outcome(app, named_as_id, "/by-id") == (403, Reason.NOT_IN_GROUP)
    assert outcome(app, issuer.mint({"groups": ["f0e1"], "sub": "2"}), "/by-id") == (
        403,
        Reason.NOT_IN_GROUP,
    )


def test_groups_fetched_lazily_once_per_token(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """Without groups in the token, get-identity is asked once per token, only when needed."""
    token = issuer.user_token("ada@example.com", ["Admins"])
    for _ in range(5):
        assert outcome(app, token, "/") == (200, None)
    assert identity_calls(mocked_team, issuer) == 0
    for _ in range(10):
        assert outcome(app, token, "/admin") == (200, None)
    assert identity_calls(mocked_team, issuer) == 1
    other = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, other, "/admin") == (200, None)
    assert identity_calls(mocked_team, issuer) == 2


def test_identity_call_sends_the_token_as_cookie(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """get-identity is called with CF_Authorization=<token> and a timeout."""
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, token, "/admin") == (200, None)
    (call,) = [c for c in mocked_team.calls if c.request.url == issuer.identity_url]
    assert call.request.headers["Cookie"] == f"CF_Authorization={token}"
    assert sent_kwargs(call)["timeout"].total == 5.0


class RecordingCache(SimpleCache):
    """A SimpleCache that remembers the timeout of every set."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: dict[str, int | timedelta | None] = {}

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        self.timeouts[key] = timeout
        return bool(super().set(key, value, timeout))


def test_identity_cached_until_the_token_expires(
    make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """The identity is remembered for the token's remaining lifetime, keyed by a digest."""
    cache = RecordingCache()
    app = make_app(CF_ACCESS_CACHE=cache)
    token = issuer.user_token("ada@example.com", ["Admins"])
    clock.advance(1000)
    assert outcome(app, token, "/admin") == (200, None)
    (key,) = [key for key in cache.timeouts if "identity" in key]
    assert cache.timeouts[key] == issuer.token_lifetime - 1000
    assert token not in key
    assert token.split(".")[2] not in key


def test_user_outside_the_group_is_403(app: Flask, issuer: AccessIssuer) -> None:
    """A verified user without the group gets 403, not 401."""
    assert outcome(app, issuer.user_token("bob@example.com", ["Staff"]), "/admin") == (
        403,
        Reason.NOT_IN_GROUP,
    )


def test_service_token_has_no_groups(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A service token on a group-gated route is 403, without asking get-identity."""
    assert outcome(app, issuer.service_token(), "/admin") == (403, Reason.NOT_IN_GROUP)
    assert identity_calls(mocked_team, issuer) == 0


class IdentityAnswer(TypedDict, total=False):
    """How the mocked get-identity answers: the keywords of responses' replace()."""

    status: int
    json: object
    body: str | Exception
    headers: dict[str, str]


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": {"err": "boom"}},
        {"status": 429, "json": {"err": "slow down"}},
        {"json": {"err": "no identity"}},
        {"body": "not json"},
        {"json": {"groups": "Admins"}},
        {"json": {"groups": [{"name": 5}]}},
        {"json": []},
        {"body": requests.ConnectionError("down")},
        {"status": 302, "headers": {"Location": "https://elsewhere.example/"}, "body": ""},
    ],
    ids=["500", "429", "err", "html", "str-groups", "bad-group", "list", "down", "redirect"],
)
def test_identity_unavailable_is_503_on_group_routes_only(
    app: Flask,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    answer: IdentityAnswer,
) -> None:
    """When get-identity fails, group routes answer 503; plain protected routes still 200."""
    mocked_team.replace(responses.GET, issuer.identity_url, **answer)
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, token, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert outcome(app, token, "/") == (200, None)


def test_failed_identity_not_cached(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """After get-identity recovers (and its 1 s back-off ends), the same token gets its groups."""
    token = issuer.user_token("ada@example.com", ["Admins"])
    mocked_team.replace(responses.GET, issuer.identity_url, status=500)
    assert outcome(app, token, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)
    mocked_team.replace(
        responses.GET,
        issuer.identity_url,
        json=issuer.identity_for(token),
    )
    clock.advance(1)
    # Its token probes the endpoint (in the background in production, at once
    # here), and the probe's answer is read.
    assert outcome(app, token, "/admin") == (200, None)


def test_string_groups_from_identity(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """get-identity may answer groups as plain strings."""
    token = issuer.user_token("ada@example.com")
    answer = {"email": "ada@example.com", "groups": ["Admins"]}
    mocked_team.replace(responses.GET, issuer.identity_url, body=json.dumps(answer))
    assert outcome(app, token, "/admin") == (200, None)


def test_malformed_groups_claim_refused(app: Flask, issuer: AccessIssuer) -> None:
    """A groups claim that is not a list of groups is refused (401), never a 500."""
    token = issuer.mint({"email": "a@example.com", "sub": "1", "groups": "Admins"})
    assert outcome(app, token, "/admin") == (401, Reason.MALFORMED_CLAIMS)
    assert outcome(app, token, "/") == (200, None)


class CountingCache(SimpleCache):
    """A SimpleCache that counts reads of identity entries."""

    def __init__(self) -> None:
        super().__init__()
        self.identity_reads = 0

    def get(self, key: str) -> Any:
        self.identity_reads += "identity" in key
        return super().get(key)


def test_groups_remembered_with_the_verified_token(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """Repeat requests of a token reuse its groups without reading the shared cache."""
    cache = CountingCache()
    app = make_app(CF_ACCESS_CACHE=cache)
    token = issuer.user_token("ada@example.com", ["Admins"])
    assert outcome(app, token, "/admin") == (200, None)
    first_miss = cache.identity_reads  # before the fetch, and again once claimed
    for _ in range(9):
        assert outcome(app, token, "/admin") == (200, None)
    assert cache.identity_reads == first_miss
    assert identity_calls(mocked_team, issuer) == 1
    assert outcome(app, issuer.user_token("bob@example.com", ["Staff"]), "/admin") == (
        403,
        Reason.NOT_IN_GROUP,
    )
    assert cache.identity_reads == 2 * first_miss
