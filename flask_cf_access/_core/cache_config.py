"""The cachelib cache a ``CF_ACCESS_CACHE`` URL names.

The setting (read by ``AccessSettings.from_mapping``) is ``None`` (each process
keeps its own), a cachelib ``BaseCache`` instance, or a URL, made a cache here:

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS) or
  ``unix:///path/to/redis.sock?db=0``: a cachelib ``RedisCache``. Connecting and
  each command give up after :data:`REDIS_SOCKET_TIMEOUT` seconds and are never
  retried, so a Redis that is down or unreachable costs a request a fetch, not
  a hang; ``?socket_timeout=`` and ``?socket_connect_timeout=`` in the URL
  override that.
- ``filesystem:///absolute/path``: a cachelib ``FileSystemCache`` in that
  directory, for several workers on one host.
- ``simple://``: in-process, the same as ``None``.

Caches made from a URL store JSON, never pickles: whoever can write to the
cache can still make the app trust their keys (so keep it private), but cannot
run code in it.
"""

from __future__ import annotations

import json
from typing import IO, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from cachelib import BaseCache, FileSystemCache, RedisCache
from cachelib.serializers import FileSystemSerializer, RedisSerializer

from .errors import ConfigurationError
from .json_input import parse_json

#: The setting whose URLs this module reads.
SETTING = "CF_ACCESS_CACHE"

#: Seconds a Redis connect, or a Redis command, may take before the cache
#: counts as down for that call (the request then fetches instead).
REDIS_SOCKET_TIMEOUT = 0.5

#: The cache URLs :func:`cache_from_url` takes, for messages.
URL_FORMS = (
    "redis://host:6379/0, rediss://host:6380/0, unix:///path/redis.sock, "
    "filesystem:///path or simple://"
)


def cache_from_url(url: str) -> BaseCache | None:
    """The cache a ``CF_ACCESS_CACHE`` URL names; ``None`` for ``simple://``.

    No connection is made here: a Redis that is down at start-up only costs
    fetches until it is back.

    :raises ConfigurationError: naming ``CF_ACCESS_CACHE``, for an unknown
        scheme or a URL its backend cannot use. The message never repeats the
        URL, which may hold a password.
    """
    text = url.strip()
    scheme, separator, rest = text.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise ConfigurationError(f"{SETTING} must be a cache URL such as {URL_FORMS}.")
    if scheme in ("redis", "rediss", "unix"):
        return _redis_cache(text)
    if scheme == "filesystem":
        return _filesystem_cache(text)
    if scheme == "simple":
        if rest:
            raise ConfigurationError(f"{SETTING}: simple:// takes nothing after it.")
        return None
    raise ConfigurationError(
        f"{SETTING} has an unknown cache scheme {scheme!r}; use one of {URL_FORMS}."
    )


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _from_json(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return parse_json(data)
    except ValueError:
        return None  # not written by us (or nested too deep to be): a miss


class _JSONRedisSerializer(RedisSerializer):
    """JSON in and out of Redis; what does not read back as JSON is a miss."""

    def dumps(self, value: Any, protocol: int = 0) -> bytes:  # protocol: pickle's, unused
        return _json_bytes(value)

    def loads(self, value: bytes | None) -> Any:
        return _from_json(value)


class _JSONFileSerializer(FileSystemSerializer):
    """JSON in and out of cache files; what does not read back as JSON is a miss."""

    def dump(self, value: Any, f: IO[bytes], protocol: int = 0) -> None:
        f.write(_json_bytes(value))

    def load(self, f: BinaryIO) -> Any:
        return _from_json(f.read())


class JSONRedisCache(RedisCache):
    """cachelib's ``RedisCache``, storing JSON instead of pickles."""

    serializer = _JSONRedisSerializer()

    def set(self, key: str, value: Any, timeout: Any = None) -> Any:
        """Stores ``value`` under ``key`` with one ``SET`` and its ``EX`` option.

        cachelib before 0.15 (the newest on Python 3.10) sends ``SETEX``, which
        current redis-py deprecates: under ``-W error`` every store would raise
        and switch the shared cache off. cachelib 0.15 and later send this.
        """
        expires = self._normalize_timeout(timeout)
        return self._write_client.set(
            name=f"{self._get_prefix()}{key}",
            value=self.serializer.dumps(value),
            ex=None if expires == -1 else expires,
        )


class JSONFileSystemCache(FileSystemCache):
    """cachelib's ``FileSystemCache``, storing JSON instead of pickles."""

    serializer = _JSONFileSerializer()


def _redis_cache(url: str) -> BaseCache:
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ConfigurationError(
            f"{SETTING} is a Redis URL but the redis package is missing: "
            "pip install 'flask-cf-access[redis]'."
        ) from exc
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"{SETTING} is not a usable Redis URL (expected e.g. redis://host:6379/0)."
        ) from exc
    return JSONRedisCache(client)


def _filesystem_cache(url: str) -> BaseCache:
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{SETTING}: a file-system cache is filesystem:///absolute/path/to/a/directory."
        )
    try:
        return JSONFileSystemCache(unquote(parts.path))
    except OSError as exc:
        raise ConfigurationError(
            f"{SETTING}: the cache directory {parts.path!r} cannot be used ({exc.strerror})."
        ) from exc
