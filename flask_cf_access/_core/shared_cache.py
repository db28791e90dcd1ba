"""A cachelib cache that never takes a request down with it."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from cachelib import BaseCache, RedisCache

logger = logging.getLogger("flask_cf_access")


class SharedCache:
    """Wraps any cachelib ``BaseCache`` so that a failing backend degrades to a miss.

    Keys and identities are only ever *remembered* here; losing the cache costs
    a fetch, never a request. A failure is logged once until the backend works
    again, so a Redis outage does not flood the log; and after a failure the
    backend is left alone for ``retry_after`` seconds, so a Redis that does not
    answer costs one timeout per interval, not one per call.

    :param clock: the time source for the back-off (tests inject theirs).
    """

    def __init__(
        self,
        backend: BaseCache,
        prefix: str = "flask_cf_access:",
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_after: float = 5.0,
    ) -> None:
        self.backend = backend
        self._prefix = prefix
        self._clock = clock
        self._retry_after = retry_after
        self._failing = False
        self._resting_until = -math.inf
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or ``None`` when absent or unreachable."""
        return self._call(self.backend.get, self._prefix + key)

    def set(self, key: str, value: Any, timeout: int) -> None:
        """Store ``value`` for ``timeout`` seconds, if the backend can be reached."""
        self._call(self.backend.set, self._prefix + key, value, timeout=max(1, int(timeout)))

    def add(self, key: str, value: Any, timeout: int) -> bool:
        """Store ``value`` only if ``key`` is absent; ``True`` if this call stored it.

        One atomic command with its expiry: on Redis, ``SET … NX EX`` (cachelib's
        own ``add`` sends ``SETNX`` then ``EXPIRE``, and an entry whose second
        command is lost, by a timeout or a crash in between, never expires).
        An unreachable backend answers ``True``: the caller then goes on as if
        it were alone, which is what a process without a shared cache is.
        """
        seconds = max(1, int(timeout))
        if isinstance(self.backend, RedisCache):
            added = self._call(_redis_add, self.backend, self._prefix + key, value, seconds)
        else:
            added = self._call(self.backend.add, self._prefix + key, value, timeout=seconds)
        return True if added is None else bool(added)

    def inc(self, key: str) -> int | None:
        """Add one to the counter ``key`` (0 if absent) and return it; ``None`` if unreachable.

        Atomic on Redis (``INCR``), so that every worker sharing it counts in one order.
        """
        if isinstance(self.backend, RedisCache):
            counted = self._call(self.backend.inc, self._prefix + key)
        else:
            # cachelib's other backends add by a read and a write, with their
            # default expiry: the counter is written here never to expire.
            counted = self._call(_inc_forever, self.backend, self._prefix + key)
        return counted if isinstance(counted, int) and not isinstance(counted, bool) else None

    def delete(self, key: str) -> None:
        """Forget ``key``, if the backend can be reached."""
        self._call(self.backend.delete, self._prefix + key)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)``, or ``None`` when the backend fails or rests."""
        if self._failing and self._clock() < self._resting_until:
            return None
        try:
            result = method(*args, **kwargs)
        except Exception as exc:  # any backend's own errors: redis, OSError, pickle
            with self._lock:
                first = not self._failing
                self._failing = True
                self._resting_until = self._clock() + self._retry_after
            if first:
                logger.warning(
                    "Cloudflare Access cache %s is failing (%s); fetching without it",
                    type(self.backend).__name__,
                    type(exc).__name__,
                )
            return None
        if self._failing:
            with self._lock:
                self._failing = False
            logger.info("Cloudflare Access cache %s works again", type(self.backend).__name__)
        return result


def _redis_add(backend: RedisCache, key: str, value: Any, timeout: int) -> bool:
    """``SET key value NX EX timeout``: stored only if absent, expiring, in one command."""
    name = f"{backend._get_prefix()}{key}"
    return bool(
        backend._write_client.set(name, backend.serializer.dumps(value), nx=True, ex=timeout)
    )


def _inc_forever(backend: BaseCache, key: str) -> int | None:
    """One more than the counter ``key`` (0 if absent or not a number), stored without expiry."""
    value = backend.get(key)
    counted = (value if isinstance(value, int) and not isinstance(value, bool) else 0) + 1
    return counted if backend.set(key, counted, timeout=0) else None
