"""A real Redis shared by several apps (as by several workers), and what happens when it dies."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import responses

from flask_cf_access import require_context
from flask_cf_access.testing import AccessIssuer, identity_profile

from .conftest import AppFactory
from .redis_server import RedisServer, redis_server_binary, running_redis_server
from .support import FrozenClock, bearer, count_calls

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of its own for each test, on a free port of 127.0.0.1."""
    with running_redis_server() as server:
        yield server


def failing_warnings(caplog: pytest.LogCaptureFixture) -> int:
    """How many times the extension logged that its cache is failing."""
    return sum("is failing" in record.getMessage() for record in caplog.records)


def test_redis_stopping_mid_test_degrades_to_fetching(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis gone, requests still pass (fetching instead), the failure logged once."""
    caplog.set_level(logging.INFO, logger="flask_cf_access")
    app = make_app(CF_ACCESS_CACHE=redis_server.url)
    ada = issuer.user_token("ada@example.com", groups=["Admins"])
    grace = issuer.user_token("grace@example.com", groups=["Admins"])
    client = app.test_client()
    assert client.get("/admin", headers=bearer(ada)).status_code == 200
    assert failing_warnings(caplog) == 0

    redis_server.stop()
    statuses = [
        client.get(path, headers=bearer(token)).status_code
        for _ in range(3)
        for token in (ada, grace)
        for path in ("/", "/admin")
    ]
    assert statuses == [200] * len(statuses)
    assert failing_warnings(caplog) == 1
    # No shared cache: the groups are remembered with each verified token in this
    # process only, so Grace's were asked for once, and Ada's not again.
    assert count_calls(mocked_team, issuer.identity_url) == 1 + 1

    late = make_app(CF_ACCESS_CACHE=redis_server.url)  # a worker started during the outage
    assert late.test_client().get("/admin", headers=bearer(grace)).status_code == 200
    assert count_calls(mocked_team, issuer.certs_url) == 2


def test_redis_coming_back_is_used_again(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    clock: FrozenClock,
) -> None:
    """After an outage and the back-off, the first good call logs the recovery and
    sharing resumes."""
    caplog.set_level(logging.INFO, logger="flask_cf_access")
    app = make_app(CF_ACCESS_CACHE=redis_server.url)
    ada = issuer.user_token("ada@example.com", groups=["Admins"])
    redis_server.stop()
    assert app.test_client().get("/admin", headers=bearer(ada)).status_code == 200
    assert failing_warnings(caplog) == 1

    restarted = RedisServer(redis_server_binary(), redis_server.port)
    try:
        restarted.wait_until_ready()
        clock.advance(5)  # the back-off after a failure
        grace = issuer.user_token("grace@example.com", groups=["Admins"])
        assert app.test_client().get("/admin", headers=bearer(grace)).status_code == 200
        assert any("works again" in record.getMessage() for record in caplog.records)
        fetched = count_calls(mocked_team, issuer.identity_url)
        other = make_app(CF_ACCESS_CACHE=restarted.url)
        assert other.test_client().get("/admin", headers=bearer(grace)).status_code == 200
        assert count_calls(mocked_team, issuer.identity_url) == fetched
    finally:
        restarted.stop()


def commands(server: RedisServer) -> dict[str, int]:
    """Data commands run since the last reset, by name (connection handshakes aside)."""
    stats = server.client().info("commandstats")
    counts = {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}
    return {
        name: calls
        for name, calls in counts.items()
        if name.split("|")[0] not in ("hello", "config", "info", "client")
    }


def test_new_identity_costs_two_atomic_commands(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    redis_server: RedisServer,
) -> None:
    """A new identity costs two Redis commands (the claim, SET NX EX, and the answer); the
    same identity in another worker costs two (the failed claim, the read); no SETNX,
    no EXPIRE: a claim can never outlive its expiry."""
    app = make_app(CF_ACCESS_CACHE=redis_server.url)
    other = make_app(CF_ACCESS_CACHE=redis_server.url)
    ada = issuer.user_token("ada@example.com", groups=["Admins"])
    redis_server.client().config_resetstat()
    assert app.test_client().get("/admin", headers=bearer(ada)).status_code == 200
    assert commands(redis_server) == {"set": 2}
    redis_server.client().config_resetstat()
    assert other.test_client().get("/admin", headers=bearer(ada)).status_code == 200
    assert commands(redis_server) == {"set": 1, "get": 1}
    assert count_calls(mocked_team, issuer.identity_url) == 1


def test_posture_route_costs_no_more_commands(
    make_app: AppFactory,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
    redis_server: RedisServer,
) -> None:
    """A new identity on a posture route costs two Redis commands too (a look for a refusal,
    the answer), and its repeats within CF_ACCESS_PROFILE_MAX_AGE none and no fetch; past
    it, one fetch and the same two commands. The answer stored holds no time; a group route for the
    same identity in another worker is served from it."""
    app = make_app(CF_ACCESS_CACHE=redis_server.url)
    other = make_app(CF_ACCESS_CACHE=redis_server.url)
    app.get("/posture")(require_context(posture=["disk"])(lambda: "ok"))
    ada = issuer.user_token(
        "ada@example.com", ["Admins"], profile=identity_profile(posture={"disk": True})
    )
    redis_server.client().config_resetstat()
    assert app.test_client().get("/posture", headers=bearer(ada)).status_code == 200
    assert commands(redis_server) == {"get": 1, "set": 1}
    redis_server.client().config_resetstat()
    clock.advance(300)
    assert app.test_client().get("/posture", headers=bearer(ada)).status_code == 200
    assert commands(redis_server) == {}
    assert count_calls(mocked_team, issuer.identity_url) == 1
    stored = [redis_server.client().get(key) for key in redis_server.client().keys("*identity*")]
    assert len(stored) == 1
    assert b"fetched_at" not in (stored[0] or b"")
    assert other.test_client().get("/admin", headers=bearer(ada)).status_code == 200
    assert count_calls(mocked_team, issuer.identity_url) == 1
    clock.advance(1)
    redis_server.client().config_resetstat()
    assert app.test_client().get("/posture", headers=bearer(ada)).status_code == 200
    assert count_calls(mocked_team, issuer.identity_url) == 2
    assert commands(redis_server) == {"get": 1, "set": 1}


@pytest.mark.parametrize("pickled", [False, True], ids=["json", "cachelib-pickle"])
def test_claims_expire_with_one_command(redis_server: RedisServer, pickled: bool) -> None:
    """SharedCache.add is one SET NX EX on any cachelib RedisCache, ours or the user's own."""
    from cachelib import RedisCache

    from flask_cf_access._core.cache_config import cache_from_url
    from flask_cf_access._core.shared_cache import SharedCache

    backend = RedisCache(redis_server.client()) if pickled else cache_from_url(redis_server.url)
    assert backend is not None
    cache = SharedCache(backend)
    redis_server.client().config_resetstat()
    assert cache.add("claim", "fetching", timeout=6) is True
    assert cache.add("claim", "fetching", timeout=6) is False
    assert commands(redis_server) == {"set": 2}
    assert 0 < redis_server.client().ttl("flask_cf_access:claim") <= 6
    assert cache.get("claim") == "fetching"
