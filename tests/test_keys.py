"""The team's keys: fetched once, refreshed on rotation, kept through outages."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Any

import pytest
import requests
import responses
from flask import Flask

from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer, encode_token

from .conftest import AppFactory
from .support import FrozenClock, bearer, count_calls, outcome, sent_kwargs


def fetches(mock: responses.RequestsMock, issuer: AccessIssuer) -> int:
    return count_calls(mock, issuer.certs_url)


def test_one_fetch_for_many_requests(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """200 requests cost one certs fetch (made by init_app)."""
    assert fetches(mocked_team, issuer) == 1
    tokens = [issuer.user_token(f"user{index}@example.com") for index in range(20)]
    outcomes = {outcome(app, tokens[index % 20]) for index in range(200)}
    assert outcomes == {(200, None)}
    assert fetches(mocked_team, issuer) == 1


def test_cold_start_under_threads_fetches_once(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """8 threads x 50 requests on a cold start share a single fetch."""
    app = make_app(CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    assert fetches(mocked_team, issuer) == 0
    token = issuer.user_token("ada@example.com")
    start = threading.Barrier(8)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        client = app.test_client()
        start.wait()
        for _ in range(50):
            code = client.get("/", headers=bearer(token)).status_code
            with lock:
                results.append(code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 400
    assert fetches(mocked_team, issuer) == 1


def test_flood_of_unknown_kids_fetches_at_most_once(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """200 tokens naming random kids within the interval cause at most one refetch."""
    claims = {"iss": issuer.issuer, "aud": [issuer.audience], "exp": issuer.clock() + 60}
    for _ in range(200):
        header = {"alg": "RS256", "kid": secrets.token_hex(32)}
        assert outcome(app, encode_token(header, claims, issuer.signing_key)) == (
            401,
            Reason.UNKNOWN_KID,
        )
    assert fetches(mocked_team, issuer) <= 2  # the initial load, plus at most one refresh


def made_up_kid_token(issuer: AccessIssuer, kid: str = "unknown") -> str:
    claims = {"iss": issuer.issuer, "aud": [issuer.audience], "exp": issuer.clock() + 600}
    return encode_token({"alg": "RS256", "kid": kid}, claims, issuer.signing_key)


def test_flood_resumes_refreshing_after_the_interval(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """An unknown kid forces one fetch, then none until the least interval has passed."""
    unknown = made_up_kid_token(issuer)
    assert outcome(app, unknown) == (401, Reason.UNKNOWN_KID)
    assert fetches(mocked_team, issuer) == 2  # the load in init_app does not count
    clock.advance(59)
    assert [outcome(app, unknown) for _ in range(3)] == [(401, Reason.UNKNOWN_KID)] * 3
    assert fetches(mocked_team, issuer) == 2
    clock.advance(1)
    assert [outcome(app, unknown) for _ in range(3)] == [(401, Reason.UNKNOWN_KID)] * 3
    assert fetches(mocked_team, issuer) == 3
    clock.advance(60)
    assert outcome(app, unknown) == (401, Reason.UNKNOWN_KID)
    assert fetches(mocked_team, issuer) == 4


def test_rotation_picked_up_with_one_fetch(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """A token signed by a new key triggers one refresh, then passes."""
    old_token = issuer.user_token("ada@example.com")
    assert outcome(app, old_token) == (200, None)
    clock.advance(61)
    issuer.rotate()
    new_token = issuer.user_token("ada@example.com")
    for _ in range(20):
        assert outcome(app, new_token) == (200, None)
        assert outcome(app, old_token) == (200, None)
    assert fetches(mocked_team, issuer) == 2


def test_rotation_right_after_start_up_is_accepted(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A new key published just after init_app's load is taken up at once, with one fetch."""
    issuer.rotate()
    new_token = issuer.user_token("ada@example.com")
    assert [outcome(app, new_token) for _ in range(20)] == [(200, None)] * 20
    assert fetches(mocked_team, issuer) == 2


def test_rotation_right_after_a_routine_refresh_is_accepted(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """A new key published just after a max-age refresh is taken up at once, with one fetch."""
    token = issuer.mint(lifetime=7200)
    clock.advance(900)
    assert outcome(app, token) == (200, None)
    assert fetches(mocked_team, issuer) == 2  # the routine refresh
    issuer.rotate()
    new_token = issuer.mint(lifetime=7200)
    assert [outcome(app, new_token) for _ in range(20)] == [(200, None)] * 20
    assert fetches(mocked_team, issuer) == 3


def test_rotation_after_a_forced_fetch_waits_for_the_interval(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """The flood bound holds: after a made-up kid's fetch, a new key waits out the interval."""
    assert outcome(app, made_up_kid_token(issuer)) == (401, Reason.UNKNOWN_KID)
    issuer.rotate()
    new_token = issuer.mint(lifetime=7200)
    assert outcome(app, new_token) == (401, Reason.UNKNOWN_KID)
    assert fetches(mocked_team, issuer) == 2
    clock.advance(60)
    assert outcome(app, new_token) == (200, None)
    assert fetches(mocked_team, issuer) == 3


def test_removed_key_stops_being_accepted(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """A key dropped from the published set is refused once a refresh has seen it gone."""
    old_token = issuer.mint(lifetime=7200)
    assert outcome(app, old_token) == (200, None)
    issuer.rotate()
    issuer.drop_previous()
    clock.advance(900)  # the key set's lifetime
    # after one fetch forced by its now unknown kid
    assert outcome(app, old_token) == (401, Reason.UNKNOWN_KID)
    assert outcome(app, issuer.mint()) == (200, None)
    assert fetches(mocked_team, issuer) == 3


def test_keys_refetched_after_max_age(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """The set is fetched again once it is older than CF_ACCESS_KEYS_MAX_AGE."""
    token = issuer.mint(lifetime=7200)
    clock.advance(899)
    assert outcome(app, token) == (200, None)
    assert fetches(mocked_team, issuer) == 1
    clock.advance(1)
    assert outcome(app, token) == (200, None)
    assert fetches(mocked_team, issuer) == 2


def outage(mock: responses.RequestsMock, url: str, **answer: Any) -> None:
    mock.replace(responses.GET, url, **answer)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": {"err": "down"}},
        {"body": "<html>maintenance</html>"},
        {"json": {"keys": []}},
        {"json": {"keys": [{"kty": "EC", "kid": "x"}]}},
        {"json": ["not", "an", "object"]},
        {"body": requests.ConnectionError("refused")},
        {"body": requests.Timeout("slow")},
    ],
    ids=["500", "html", "no-keys", "no-rsa", "list", "refused", "timeout"],
)
def test_cached_keys_serve_through_an_outage(
    app: Flask,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    clock: FrozenClock,
    answer: dict[str, Any],
) -> None:
    """A failed or garbage refresh keeps the last good set: requests still pass."""
    token = issuer.mint(lifetime=7200)
    outage(mocked_team, issuer.certs_url, **answer)
    clock.advance(900)  # the set is stale; the refresh fails
    for _ in range(20):
        assert outcome(app, token) == (200, None)
    assert fetches(mocked_team, issuer) == 2  # one failed try per interval, not per request


def test_unknown_kid_during_outage_is_401_and_keeps_keys(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock, clock: FrozenClock
) -> None:
    """An unknown kid while the certs endpoint is down is refused, the old set kept."""
    token = issuer.mint(lifetime=7200)
    outage(mocked_team, issuer.certs_url, status=503)
    clock.advance(61)
    other = encode_token(
        {"alg": "RS256", "kid": "rotated"},
        {"iss": issuer.issuer, "aud": [issuer.audience], "exp": clock() + 60},
        issuer.signing_key,
    )
    assert outcome(app, other) == (401, Reason.UNKNOWN_KID)
    assert outcome(app, token) == (200, None)


def test_no_keys_means_503_then_recovers(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no keys to be had the app starts, answers 503, and recovers by itself."""
    outage(mocked_team, issuer.certs_url, status=502)
    with caplog.at_level(logging.ERROR, logger="flask_cf_access"):
        app = make_app()
    assert "could not be refreshed" in caplog.text
    token = issuer.user_token("ada@example.com")
    assert [outcome(app, token) for _ in range(10)] == [(503, Reason.KEYS_UNAVAILABLE)] * 10
    # Bad input is still bad input.
    assert outcome(app, "garbage") == (401, Reason.MALFORMED_TOKEN)
    assert fetches(mocked_team, issuer) == 1  # retried once per interval, not per request
    clock.advance(60)
    assert outcome(app, token) == (503, Reason.KEYS_UNAVAILABLE)
    assert fetches(mocked_team, issuer) == 2
    outage(mocked_team, issuer.certs_url, json=issuer.certs())
    clock.advance(60)
    assert outcome(app, token) == (200, None)
    assert fetches(mocked_team, issuer) == 3


def test_redirects_not_followed(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A redirect from the certs URL is a failure, and its target is never fetched."""
    elsewhere = "https://attacker.example/certs"
    outage(mocked_team, issuer.certs_url, status=302, headers={"Location": elsewhere}, body="")
    mocked_team.get(elsewhere, json=issuer.certs())
    app = make_app()
    assert outcome(app, issuer.user_token("ada@example.com")) == (503, Reason.KEYS_UNAVAILABLE)
    assert count_calls(mocked_team, elsewhere) == 0


def test_fetch_has_a_timeout(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """Every certs fetch is bounded by CF_ACCESS_HTTP_TIMEOUT."""
    make_app(CF_ACCESS_HTTP_TIMEOUT=2.5)
    sent = [call for call in mocked_team.calls if call.request.url == issuer.certs_url]
    assert sent
    assert all(sent_kwargs(call)["timeout"].total == 2.5 for call in sent)


def test_oversized_certs_document_refused(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A certs answer beyond the size cap is not parsed; no keys, 503."""
    huge = json.dumps({"keys": [], "pad": "x" * (2 * 1024 * 1024)})
    outage(mocked_team, issuer.certs_url, body=huge, content_type="application/json")
    app = make_app()
    assert outcome(app, issuer.user_token("ada@example.com")) == (503, Reason.KEYS_UNAVAILABLE)


def test_weak_and_private_members_ignored(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """Entries that are not RS256 signing keys are skipped; the good key still works."""
    certs = issuer.certs()
    certs["keys"] = [
        {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        {**certs["keys"][0], "kid": "encryption", "use": "enc"},
        {**certs["keys"][0], "kid": "other-alg", "alg": "RS512"},
        "not a key",
        *certs["keys"],
    ]
    outage(mocked_team, issuer.certs_url, json=certs)
    app = make_app()
    assert outcome(app, issuer.user_token("ada@example.com")) == (200, None)
    hs_like = encode_token(
        {"alg": "RS256", "kid": "encryption"},
        {"iss": issuer.issuer, "aud": [issuer.audience], "exp": issuer.clock() + 60},
        issuer.signing_key,
    )
    assert outcome(app, hs_like) == (401, Reason.UNKNOWN_KID)


def test_keys_not_loaded_on_init_when_disabled(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """CF_ACCESS_LOAD_KEYS_ON_INIT=False defers the fetch to the first request."""
    app = make_app(CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    assert fetches(mocked_team, issuer) == 0
    assert outcome(app, issuer.user_token("ada@example.com")) == (200, None)
    assert fetches(mocked_team, issuer) == 1


def certs_with_key_ops(issuer: AccessIssuer, key_ops: Any) -> dict[str, Any]:
    """The certs document, the previous key (still published) given ``key_ops``."""
    certs = issuer.certs()
    previous = issuer.previous_key
    assert previous is not None
    certs["keys"] = [
        {**jwk, "key_ops": key_ops} if jwk["kid"] == previous.kid else jwk for jwk in certs["keys"]
    ]
    return certs


@pytest.mark.parametrize(
    "key_ops",
    [["sign"], ["encrypt", "wrapKey"], [], "verify", None, {"verify": True}],
    ids=["sign", "encrypt", "empty", "a string", "null", "an object"],
)
def test_key_whose_key_ops_lack_verify_is_not_used(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    key_ops: Any,
) -> None:
    """A published key whose key_ops (present) is not a list holding "verify" verifies nothing."""
    previous = issuer.signing_key
    issuer.rotate()
    outage(mocked_team, issuer.certs_url, json=certs_with_key_ops(issuer, key_ops))
    app = make_app()
    assert outcome(app, issuer.mint({"email": "ada@example.com"}, key=previous)) == (
        401,
        Reason.UNKNOWN_KID,
    )
    assert outcome(app, issuer.user_token("ada@example.com")) == (200, None)


@pytest.mark.parametrize("key_ops", [["verify"], ["sign", "verify"]], ids=["verify", "both"])
def test_key_whose_key_ops_allow_verify_is_used(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    key_ops: list[str],
) -> None:
    """A key_ops that lists "verify" keeps the key in use."""
    previous = issuer.signing_key
    issuer.rotate()
    outage(mocked_team, issuer.certs_url, json=certs_with_key_ops(issuer, key_ops))
    app = make_app()
    assert outcome(app, issuer.mint({"email": "ada@example.com"}, key=previous)) == (200, None)


def test_certs_of_only_non_verifying_keys_hold_no_key(
    make_app: AppFactory, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """When every key's key_ops lacks "verify", there are no keys: 503."""
    certs = issuer.certs()
    certs["keys"] = [{**jwk, "key_ops": ["sign"]} for jwk in certs["keys"]]
    outage(mocked_team, issuer.certs_url, json=certs)
    app = make_app()
    assert outcome(app, issuer.user_token("ada@example.com")) == (503, Reason.KEYS_UNAVAILABLE)
