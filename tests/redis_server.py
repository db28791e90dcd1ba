"""A throwaway ``redis-server`` on 127.0.0.1, for the tests that need a real one.

Started on a free port with no persistence, waited for (its "ready" line,
then a bounded loop of PINGs, never a fixed sleep) and stopped afterwards.
Where ``redis-server`` is not installed the tests that need it are skipped,
except under CI (``CI`` set), where they fail: CI installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from .processes import stop_process

#: Seconds to wait for a server to say it is ready, or to exit when stopped.
START_TIMEOUT = 10.0
#: PINGs tried, once the server said it is ready, before giving up on it.
PING_ATTEMPTS = 50


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """The ``redis-server`` to run; skips the test without one (fails it under CI)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must have it", pytrace=False)
        pytest.skip(message)
    return binary


class RedisServer:
    """One running ``redis-server`` process on 127.0.0.1."""

    def __init__(self, binary: str, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(  # noqa: S603 (a fixed binary, our own arguments)
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[bytes] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        """The ``CF_ACCESS_CACHE`` URL of database 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client of this server with short timeouts."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2
        )

    def _read_output(self) -> None:
        """Drain the server's output (so it never blocks on a full pipe), noting readiness."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if b"Ready to accept connections" in line:
                self._ready.set()
        self._ready.set()  # exited: stop waiting

    def wait_until_ready(self) -> None:
        """Return once the server answers PING; fail the test if it never does."""
        if not self._ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            pytest.fail(f"redis-server did not start: {b''.join(self.output)!r}", pytrace=False)
        client = self.client()
        try:
            for _ in range(PING_ATTEMPTS):
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    continue
        finally:
            client.close()
        self.stop()
        pytest.fail("redis-server never answered PING", pytrace=False)

    def stop(self) -> None:
        """Stop the server and wait for it to exit. Safe to call twice."""
        stop_process(self.process, self._reader, START_TIMEOUT)

    @property
    def running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process.poll() is None


@contextmanager
def running_redis_server() -> Iterator[RedisServer]:
    """A ready ``redis-server`` on a free port of 127.0.0.1, stopped on exit."""
    server = RedisServer(redis_server_binary(), free_port())
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.stop()
