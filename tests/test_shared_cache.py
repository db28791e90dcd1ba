"""CF_ACCESS_CACHE: an instance, None, or a URL naming Redis, a directory or the process."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from cachelib import BaseCache, SimpleCache
from flask import Flask

from flask_cf_access import AccessSettings, CloudflareAccess, ConfigurationError
from flask_cf_access._core.cache_config import (
    REDIS_SOCKET_TIMEOUT,
    JSONFileSystemCache,
    JSONRedisCache,
)
from flask_cf_access._core.shared_cache import SharedCache
from flask_cf_access.testing import AccessIssuer, run_inline

from .conftest import AppFactory
from .redis_server import free_port
from .support import FrozenClock, bearer, count_calls

#: The settings every cache setting is tried with.
TEAM = {"CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com", "CF_ACCESS_AUDIENCE": "aud"}


def cache_from_setting(value: object) -> BaseCache | None:
    """The cache ``AccessSettings.from_mapping`` makes of ``CF_ACCESS_CACHE = value``."""
    return AccessSettings.from_mapping({**TEAM, "CF_ACCESS_CACHE": value}).cache


def redis_options(cache: Any) -> dict[str, Any]:
    """The connection options of a cache's Redis client (no connection is made)."""
    assert isinstance(cache, JSONRedisCache)
    options: dict[str, Any] = cache._write_client.connection_pool.connection_kwargs
    return options


def test_none_and_instances_pass_through() -> None:
    """None stays None (in-process), and a cachelib instance is used as it is."""
    assert cache_from_setting(None) is None
    cache = SimpleCache()
    assert cache_from_setting(cache) is cache


def test_simple_url_is_in_process() -> None:
    """simple:// is the same as None: each process keeps its own."""
    assert cache_from_setting("simple://") is None


def test_redis_url_with_short_timeouts_and_no_retries() -> None:
    """A redis:// URL gives a Redis cache whose calls give up fast and are never retried."""
    cache = cache_from_setting("redis://:s3cret@127.0.0.1:6390/2")
    options = redis_options(cache)
    assert (options["host"], options["port"], options["db"]) == ("127.0.0.1", 6390, 2)
    assert options["password"] == "s3cret"
    assert options["socket_timeout"] == REDIS_SOCKET_TIMEOUT
    assert options["socket_connect_timeout"] == REDIS_SOCKET_TIMEOUT
    attempts: list[str] = []

    def unreachable() -> None:
        attempts.append("connect")
        raise redis.ConnectionError("down")

    with pytest.raises(redis.ConnectionError):
        options["retry"].call_with_retry(unreachable, lambda error: None)
    assert attempts == ["connect"]


def test_redis_url_query_overrides_timeouts() -> None:
    """Timeouts given in the URL win over the defaults."""
    options = redis_options(
        cache_from_setting("redis://127.0.0.1:6379/0?socket_timeout=2&socket_connect_timeout=1")
    )
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (2.0, 1.0)


@pytest.mark.parametrize(
    "url", ["rediss://cache.internal:6380/0", "unix:///run/redis/redis.sock?db=1"]
)
def test_tls_and_unix_socket_redis_urls(url: str) -> None:
    """rediss:// (TLS) and unix:// sockets are Redis caches too."""
    assert isinstance(cache_from_setting(url), JSONRedisCache)


def test_filesystem_url_stores_json(tmp_path: Path) -> None:
    """filesystem:///dir keeps entries as JSON files in that directory."""
    cache = cache_from_setting(f"filesystem://{tmp_path}/cf-access")
    assert isinstance(cache, JSONFileSystemCache)
    cache.set("certs", {"keys": ["k"], "fetched_at": 1.5}, timeout=60)
    assert cache.get("certs") == {"keys": ["k"], "fetched_at": 1.5}
    contents = [path.read_bytes()[4:] for path in (tmp_path / "cf-access").iterdir()]
    assert b'{"keys":["k"],"fetched_at":1.5}' in contents
    for content in contents:
        json.loads(content)


def test_unreadable_cache_entry_is_a_miss(tmp_path: Path) -> None:
    """An entry that is not JSON (say, an old pickle) reads as absent, not as an error."""
    cache = cache_from_setting(f"filesystem://{tmp_path}")
    assert isinstance(cache, JSONFileSystemCache)
    cache.set("certs", {"a": 1}, timeout=60)
    (entry,) = (path for path in tmp_path.iterdir() if path.read_bytes()[4:] == b'{"a":1}')
    entry.write_bytes(entry.read_bytes()[:4] + b"\x80\x04garbage")
    assert cache.get("certs") is None


@pytest.mark.parametrize(
    "value",
    [
        "ftp://cache.internal/",
        "memcached://127.0.0.1:11211",
        "localhost:6379",
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/0?socket_timeout=soon",
        "filesystem://relative/path",
        "filesystem:///tmp/x?threshold=5",
        "simple://something",
        42,
        ["redis://127.0.0.1:6379/0"],
    ],
)
def test_bad_setting_names_the_key(value: object) -> None:
    """Anything else fails at start-up, naming CF_ACCESS_CACHE."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_CACHE"):
        cache_from_setting(value)


def test_bad_redis_url_message_hides_the_password() -> None:
    """The error for a broken Redis URL never repeats it, password and all."""
    with pytest.raises(ConfigurationError) as caught:
        cache_from_setting("redis://:hunter2@127.0.0.1:6379/0?socket_timeout=soon")
    assert "hunter2" not in str(caught.value)


def test_unusable_directory_refused(tmp_path: Path) -> None:
    """A file-system cache in a place no directory can be made fails at start-up."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="CF_ACCESS_CACHE"):
        cache_from_setting(f"filesystem://{blocker}/cache")


def test_init_app_refuses_a_bad_url(issuer: AccessIssuer) -> None:
    """init_app fails, naming CF_ACCESS_CACHE, on a URL it cannot use."""
    app = Flask(__name__)
    app.config.update(issuer.settings(CF_ACCESS_CACHE="mongodb://127.0.0.1/x"))
    with pytest.raises(ConfigurationError, match="CF_ACCESS_CACHE"):
        CloudflareAccess(app, background=run_inline)


def test_down_redis_never_fails_a_request(
    make_app: AppFactory,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With nothing listening at the Redis URL, the app starts and serves, fetching instead."""
    app = make_app(CF_ACCESS_CACHE=f"redis://127.0.0.1:{free_port()}/0")
    token = issuer.user_token("ada@example.com", groups=["Admins"])
    for path in ("/", "/admin", "/admin"):
        assert app.test_client().get(path, headers=bearer(token)).status_code == 200
    assert count_calls(mocked_team, issuer.certs_url) == 1
    # Unshared, the groups are still remembered with the verified token in this process.
    assert count_calls(mocked_team, issuer.identity_url) == 1
    assert sum("is failing" in record.getMessage() for record in caplog.records) == 1


class BrokenCache(SimpleCache):
    """A backend whose every call fails, counting the calls, until it is mended."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.broken = True

    def get(self, key: str) -> Any:
        self.calls += 1
        if self.broken:
            raise ConnectionError("down")
        return super().get(key)


def test_failing_backend_rests_between_tries(caplog: pytest.LogCaptureFixture) -> None:
    """After a failure the backend is not called again for the back-off interval."""
    clock = FrozenClock()
    backend = BrokenCache()
    cache = SharedCache(backend, clock=clock, retry_after=5.0)
    assert [cache.get("k") for _ in range(10)] == [None] * 10
    assert backend.calls == 1
    clock.advance(4.9)
    assert cache.get("k") is None
    assert backend.calls == 1
    clock.advance(0.1)
    assert cache.get("k") is None
    assert backend.calls == 2
    backend.broken = False
    clock.advance(5)
    with caplog.at_level(logging.INFO, logger="flask_cf_access"):
        assert cache.get("k") is None
    assert backend.calls == 3
    assert "works again" in caplog.text
    assert [cache.get("k") for _ in range(3)] == [None] * 3
    assert backend.calls == 6
