"""One contract, every shared-cache backend: in-process, filesystem, real Redis.

Each test runs on every backend of the ``backend`` fixture, as cachelib's
``tests/common.py`` runs one suite over all its caches: apps sharing a cache
fetch the team's keys once and each token's identity once between them, a
failing backend costs fetches and never a request, and what is stored is JSON.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from cachelib import BaseCache, SimpleCache

from flask_cf_access import require_context
from flask_cf_access._core.cache_config import JSONFileSystemCache, JSONRedisCache
from flask_cf_access._flask.app_state import EXTENSION_KEY
from flask_cf_access.testing import AccessIssuer, SigningKey, identity_profile

from .conftest import AppFactory
from .redis_server import RedisServer, running_redis_server
from .support import FrozenClock, Outcome, count_calls, outcome


class Backend:
    """A shared cache as the contract needs it: a setting, a way to break it, its entries."""

    #: The cachelib class the extension must end up using, or ``None`` to skip that check.
    cache_class: type[BaseCache] | None = None

    def setting(self) -> object:
        """The ``CF_ACCESS_CACHE`` value for every app sharing this cache."""
        raise NotImplementedError

    def break_down(self) -> None:
        """Make every call to the backend fail (or find nothing), as an outage does."""
        raise NotImplementedError

    def stored(self) -> list[Any]:
        """Every value stored, decoded from the bytes the backend holds."""
        raise NotImplementedError


class BreakableSimpleCache(SimpleCache):
    """An in-process cache whose every call raises once it is broken."""

    broken = False

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("down")

    def get(self, key: str) -> Any:
        self._check()
        return super().get(key)

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> Any:
        self._check()
        return super().set(key, value, timeout)

    def add(self, key: str, value: Any, timeout: int | timedelta | None = None) -> Any:
        self._check()
        return super().add(key, value, timeout)

    def delete(self, key: str) -> Any:
        self._check()
        return super().delete(key)


class InProcess(Backend):
    """A cachelib ``SimpleCache`` instance given to every app."""

    def __init__(self) -> None:
        self.cache = BreakableSimpleCache()

    def setting(self) -> object:
        return self.cache

    def break_down(self) -> None:
        self.cache.broken = True

    def stored(self) -> list[Any]:
        # In process the values are objects: they must still be plain JSON data.
        return [
            json.loads(json.dumps(self.cache.get(key), allow_nan=False))
            for key in list(self.cache._cache)
        ]


class FileSystem(Backend):
    """A ``filesystem://`` directory shared by every app."""

    cache_class = JSONFileSystemCache

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def setting(self) -> object:
        return f"filesystem://{self.directory}"

    def break_down(self) -> None:
        shutil.rmtree(self.directory)
        self.directory.write_text("a file where the cache directory was")

    def stored(self) -> list[Any]:
        # cachelib writes a 4-byte expiry before the serialised value.
        return [
            json.loads(path.read_bytes()[4:])
            for path in self.directory.iterdir()
            if not path.name.startswith("__")  # cachelib's own file counter
        ]


class Redis(Backend):
    """A real ``redis-server`` on 127.0.0.1, named by a ``redis://`` URL."""

    cache_class = JSONRedisCache

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def setting(self) -> object:
        return self.server.url

    def break_down(self) -> None:
        self.server.stop()

    def stored(self) -> list[Any]:
        client = self.server.client()
        try:
            raw = [client.get(key) for key in client.keys("flask_cf_access:*")]
        finally:
            client.close()
        assert all(isinstance(value, bytes) for value in raw)
        return [json.loads(value) for value in raw if isinstance(value, bytes)]


@pytest.fixture(params=["in-process", "filesystem", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each shared-cache backend in turn."""
    if request.param == "in-process":
        yield InProcess()
    elif request.param == "filesystem":
        yield FileSystem(tmp_path / "cf-access")
    else:
        with running_redis_server() as server:
            yield Redis(server)


def admins(issuer: AccessIssuer, email: str) -> str:
    """A token whose groups only get-identity knows."""
    return issuer.user_token(email, groups=["Admins"])


GRANTED = Outcome(200, None)


def test_the_setting_makes_the_expected_cache(make_app: AppFactory, backend: Backend) -> None:
    """The setting gives the app a cache of the backend's (JSON) class."""
    app = make_app(CF_ACCESS_CACHE=backend.setting())
    used = app.extensions[EXTENSION_KEY].checker.cache.backend
    if backend.cache_class is not None:
        assert type(used) is backend.cache_class
    else:
        assert used is backend.setting()


def test_keys_fetched_once_across_apps(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    backend: Backend,
) -> None:
    """Two apps sharing the cache fetch the team's keys once between them."""
    apps = [make_app(CF_ACCESS_CACHE=backend.setting()) for _ in range(2)]
    for app in apps:
        assert outcome(app, issuer.user_token("ada@example.com")) == GRANTED
    assert count_calls(mocked_team, issuer.certs_url) == 1


def test_identity_fetched_once_per_token_across_apps(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    backend: Backend,
) -> None:
    """Two apps sharing the cache ask get-identity once per token between them."""
    apps = [make_app(CF_ACCESS_CACHE=backend.setting()) for _ in range(2)]
    tokens = [admins(issuer, "ada@example.com"), admins(issuer, "grace@example.com")]
    for _ in range(2):
        for app in apps:
            for token in tokens:
                assert outcome(app, token, "/admin") == GRANTED
    assert count_calls(mocked_team, issuer.identity_url) == len(tokens)


@pytest.mark.slow
def test_unknown_kid_flood_across_apps_forces_one_fetch(
    make_app: AppFactory,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
    backend: Backend,
) -> None:
    """Made-up key ids sent to every app force one refresh of the keys between them all."""
    apps = [make_app(CF_ACCESS_CACHE=backend.setting()) for _ in range(3)]
    clock.advance(61)  # past CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL since the first fetch
    for _ in range(5):
        for app in apps:
            token = issuer.mint(key=SigningKey.generate())
            assert outcome(app, token) == (401, "unknown_kid")
    assert count_calls(mocked_team, issuer.certs_url) == 2


def test_failing_backend_degrades_to_a_miss(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    backend: Backend,
) -> None:
    """With the backend down, every request still passes: the apps fetch instead."""
    apps = [make_app(CF_ACCESS_CACHE=backend.setting()) for _ in range(2)]
    assert outcome(apps[0], admins(issuer, "ada@example.com"), "/admin") == GRANTED
    backend.break_down()
    grace = admins(issuer, "grace@example.com")
    for app in apps:
        for path in ("/", "/admin", "/admin"):
            assert outcome(app, grace, path) == GRANTED
    # The keys each app holds in memory still serve.
    assert count_calls(mocked_team, issuer.certs_url) == 1
    # Unshared, each app asks once for Grace's groups, then remembers them with her token.
    assert count_calls(mocked_team, issuer.identity_url) == 1 + 2


def test_stores_json(make_app: AppFactory, issuer: AccessIssuer, backend: Backend) -> None:
    """The keys and the identities' groups are stored as JSON, never as pickles."""
    app = make_app(CF_ACCESS_CACHE=backend.setting())
    assert outcome(app, admins(issuer, "ada@example.com"), "/admin") == GRANTED
    stored = [json.dumps(value) for value in backend.stored()]
    assert any(issuer.signing_key.kid in value for value in stored)
    assert any(issuer.group_id("Admins") in value for value in stored)


def test_profile_shared_across_apps_and_refreshed_once(
    make_app: AppFactory,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
    backend: Backend,
) -> None:
    """Groups and profile come from one shared answer, fetched once between the apps. Posture
    is judged on an answer each app had itself within CF_ACCESS_PROFILE_MAX_AGE, by its own
    clock (the shared entry holds no time another host wrote): an app that only read the
    entry asks once, then again past the window; the groups are never asked again."""
    apps = [make_app(CF_ACCESS_CACHE=backend.setting()) for _ in range(2)]
    for app in apps:
        app.get("/posture")(require_context(posture=["disk"])(lambda: "ok"))
    token = issuer.user_token(
        "ada@example.com", ["Admins"], profile=identity_profile(posture={"disk": True})
    )
    for app in apps:
        assert outcome(app, token, "/admin") == GRANTED
    assert count_calls(mocked_team, issuer.identity_url) == 1
    for _ in range(2):  # the first app had it itself; the second asks once
        for app in apps:
            assert outcome(app, token, "/posture") == GRANTED
    assert count_calls(mocked_team, issuer.identity_url) == 2
    clock.advance(301)
    for _ in range(2):
        for app in apps:
            for path in ("/posture", "/admin"):
                assert outcome(app, token, path) == GRANTED
    assert count_calls(mocked_team, issuer.identity_url) == 4
