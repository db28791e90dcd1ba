"""CF_ACCESS_HTTP_TIMEOUT bounds a call to Cloudflare as a whole, however slowly it answers.

These use a real server on 127.0.0.1 that answers slowly on purpose, with a
0.3 s timeout; the bound asserted leaves a wide margin for a loaded machine.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from flask_cf_access._fetch import FetchError, get_json

TIMEOUT = 0.3
#: Far above TIMEOUT, far below what an unbounded call would take (the server goes on for 30 s).
BOUND = 3.0
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n"


class SlowServer:
    """Accepts connections on 127.0.0.1 and answers each with ``answer(connection, stop)``."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accept loop sees ``stop``
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/cdn-cgi/access/certs"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)  # the request
            # The client cutting the connection is what the tests want.
            with contextlib.suppress(OSError):
                self._answer(connection, self.stop)

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        self._listener.close()


def drip_body(connection: socket.socket, stop: threading.Event) -> None:
    """Headers at once, then one byte of the body every 50 ms."""
    connection.sendall(HEADERS)
    for _ in range(600):
        if stop.wait(0.05):
            return
        connection.sendall(b" ")


def never_answer(connection: socket.socket, stop: threading.Event) -> None:
    """Reads the request, then says nothing."""
    stop.wait(30)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], SlowServer]]:
    """Start slow servers; all are stopped at the end of the test."""
    servers: list[SlowServer] = []

    def start(answer: Callable[[socket.socket, threading.Event], None]) -> SlowServer:
        server = SlowServer(answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("answer", [drip_body, never_answer], ids=["dripping-body", "no-answer"])
def test_slow_answer_cut_at_the_deadline(
    serve: Callable[[Callable[[socket.socket, threading.Event], None]], SlowServer],
    answer: Callable[[socket.socket, threading.Event], None],
) -> None:
    """A body dripping a byte at a time, or no answer at all, ends near the timeout."""
    server = serve(answer)
    started = time.monotonic()
    with requests.Session() as session, pytest.raises(FetchError):
        get_json(session, server.url, timeout=TIMEOUT)
    assert time.monotonic() - started < BOUND


def test_deadline_message_names_the_timeout(
    serve: Callable[[Callable[[socket.socket, threading.Event], None]], SlowServer],
) -> None:
    """A body cut at the deadline is logged as such, not as a broken connection."""
    server = serve(drip_body)
    with requests.Session() as session, pytest.raises(FetchError) as error:
        get_json(session, server.url, timeout=TIMEOUT)
    assert "took longer than 0.3 s" in str(error.value)


def test_prompt_answer_within_the_deadline(
    serve: Callable[[Callable[[socket.socket, threading.Event], None]], SlowServer],
) -> None:
    """An answer that comes whole in time is read as usual, and the session still works."""

    def prompt(connection: socket.socket, stop: threading.Event) -> None:
        body = b'{"keys": []}'
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    server = serve(prompt)
    with requests.Session() as session:
        assert get_json(session, server.url, timeout=TIMEOUT) == {"keys": []}
        assert get_json(session, server.url, timeout=TIMEOUT) == {"keys": []}
