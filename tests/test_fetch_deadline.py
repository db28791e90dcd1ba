"""CF_ACCESS_HTTP_TIMEOUT bounds a call to Cloudflare as a whole, however slowly it answers.

These use a real server on 127.0.0.1 that answers slowly on purpose, with a
0.3 s timeout; the bound asserted leaves a wide margin for a loaded machine.
Every test runs over each way an HTTP answer can be framed: a connection
kept alive for the next request (HTTP/1.1), one the answer says it will
close (``Connection: close``), and an HTTP/1.0 answer. The client holds its
socket in a different place for each, and the deadline must reach all three.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from flask_cf_access._core import fetch as _fetch
from flask_cf_access._core.fetch import FetchError, get_json

TIMEOUT = 0.3
#: Far above TIMEOUT, far below what an unbounded call would take (the server goes on for 30 s).
BOUND = 3.0
#: How an answer is framed: its status line and the header saying what becomes
#: of the connection after it.
FRAMINGS = {
    "kept-alive": (b"HTTP/1.1 200 OK", b""),
    "connection-close": (b"HTTP/1.1 200 OK", b"Connection: close\r\n"),
    "http-1.0": (b"HTTP/1.0 200 OK", b""),
}

#: What a server sends for one request: ``answer(connection, head, stop)``, where
#: ``head(length)`` is the status line and headers of a JSON body of ``length``.
Answer = Callable[[socket.socket, Callable[[int], bytes], threading.Event], None]


class SlowServer:
    """Accepts connections on 127.0.0.1 and answers each request with ``answer``, framed
    as ``framing`` says; a kept-alive connection is served request after request."""

    def __init__(self, answer: Answer, framing: str) -> None:
        self._answer = answer
        self._status, self._connection_header = FRAMINGS[framing]
        self._keep_alive = framing == "kept-alive"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accept loop sees ``stop``
        self.stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/cdn-cgi/access/certs"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def head(self, length: int) -> bytes:
        """The status line and headers of a JSON body of ``length`` bytes."""
        return (
            self._status
            + b"\r\nContent-Type: application/json\r\n"
            + self._connection_header
            + f"Content-Length: {length}\r\n\r\n".encode()
        )

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
        # The client cutting the connection is what the tests want.
        with connection, contextlib.suppress(OSError):
            while _read_request(connection):
                self._answer(connection, self.head, self.stop)
                if not self._keep_alive:
                    return

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        self._listener.close()


def _read_request(connection: socket.socket) -> bool:
    """Read one request's head (a GET has no body); ``False`` once the client has gone."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        received += chunk
    return True


def drip_body(
    connection: socket.socket, head: Callable[[int], bytes], stop: threading.Event
) -> None:
    """Headers at once, then one byte of a 600-byte body every 50 ms."""
    connection.sendall(head(600))
    for _ in range(600):
        if stop.wait(0.05):
            return
        connection.sendall(b" ")


def never_answer(
    connection: socket.socket, head: Callable[[int], bytes], stop: threading.Event
) -> None:
    """Reads the request, then says nothing."""
    stop.wait(30)


def prompt(connection: socket.socket, head: Callable[[int], bytes], stop: threading.Event) -> None:
    """The whole answer at once."""
    body = b'{"keys": []}'
    connection.sendall(head(len(body)) + body)


@pytest.fixture(params=list(FRAMINGS))
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[[Answer], SlowServer]]:
    """Start slow servers framing their answers one way; all are stopped at the end."""
    servers: list[SlowServer] = []

    def start(answer: Answer) -> SlowServer:
        server = SlowServer(answer, request.param)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("answer", [drip_body, never_answer], ids=["dripping-body", "no-answer"])
def test_slow_answer_cut_at_the_deadline(
    serve: Callable[[Answer], SlowServer], answer: Answer
) -> None:
    """A body dripping a byte at a time, or no answer at all, ends near the timeout."""
    server = serve(answer)
    started = time.monotonic()
    with requests.Session() as session, pytest.raises(FetchError):
        get_json(session, server.url, timeout=TIMEOUT)
    assert time.monotonic() - started < BOUND


def test_deadline_message_names_the_timeout(serve: Callable[[Answer], SlowServer]) -> None:
    """A body cut at the deadline is logged as such, not as a broken connection."""
    server = serve(drip_body)
    with requests.Session() as session, pytest.raises(FetchError) as error:
        get_json(session, server.url, timeout=TIMEOUT)
    assert "took longer than 0.3 s" in str(error.value)


def headers_then_silence(
    connection: socket.socket, head: Callable[[int], bytes], stop: threading.Event
) -> None:
    """Headers at once, then not a byte of the body."""
    connection.sendall(head(600))
    stop.wait(30)


def test_socket_timeout_past_the_deadline_names_the_deadline(
    serve: Callable[[Answer], SlowServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the socket's own timeout ends a body's read before the cutter does (a
    loaded machine), the message still says the deadline ended it."""
    monkeypatch.setattr(_fetch._DeadlineCutter, "_cut", lambda self: None)
    server = serve(headers_then_silence)
    with requests.Session() as session, pytest.raises(FetchError) as error:
        get_json(session, server.url, timeout=TIMEOUT)
    assert "took longer than 0.3 s" in str(error.value)


def test_prompt_answer_within_the_deadline(serve: Callable[[Answer], SlowServer]) -> None:
    """An answer that comes whole in time is read as usual, and the session still works."""
    server = serve(prompt)
    with requests.Session() as session:
        assert get_json(session, server.url, timeout=TIMEOUT) == {"keys": []}
        assert get_json(session, server.url, timeout=TIMEOUT) == {"keys": []}


def test_a_cut_answer_leaves_the_session_working(serve: Callable[[Answer], SlowServer]) -> None:
    """After a body cut at the deadline, the same session fetches a prompt answer."""
    slow, fast = serve(drip_body), serve(prompt)
    with requests.Session() as session:
        with pytest.raises(FetchError, match="took longer"):
            get_json(session, slow.url, timeout=TIMEOUT)
        assert get_json(session, fast.url, timeout=TIMEOUT) == {"keys": []}
