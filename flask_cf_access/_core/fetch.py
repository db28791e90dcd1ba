"""Bounded JSON GETs to Cloudflare: a total deadline, no redirects, a size cap."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Timeout

from .json_input import parse_json

#: A certs or identity document larger than this is refused.
MAX_RESPONSE_BYTES = 1024 * 1024


class FetchError(Exception):
    """The document could not be had: network, status, size or JSON.

    ``status`` is the HTTP status of an answer that was not a 2xx, else ``None``.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def get_json(
    session: requests.Session,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> object:
    """GET ``url`` and return its JSON body, all within ``timeout`` seconds.

    ``timeout`` bounds the call as a whole: connecting and the first byte of
    the answer together (urllib3's ``total``), then the body, which is cut
    off at the deadline however slowly it trickles in. Redirects are never
    followed and anything but a 2xx answer is an error.

    :raises FetchError: with a message fit for a log line (no credentials).
    """
    request_headers = {"Accept": "application/json"}
    if headers:
        request_headers.update(headers)
    deadline = time.monotonic() + timeout
    # requests hands a urllib3 Timeout on as it is (its annotation says otherwise).
    connect_and_first_byte: Any = Timeout(total=timeout)
    try:
        with session.get(
            url,
            headers=request_headers,
            timeout=connect_and_first_byte,
            allow_redirects=False,
            stream=True,
        ) as response:
            if not 200 <= response.status_code < 300:
                raise FetchError(
                    f"{url} answered HTTP {response.status_code}", status=response.status_code
                )
            body = read_by_deadline(response, deadline, timeout)
    except requests.RequestException as exc:
        raise FetchError(f"{url} could not be reached: {type(exc).__name__}") from exc
    try:
        return parse_json(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not answer JSON") from exc


def read_by_deadline(
    response: requests.Response, deadline: float, timeout: float, name: str = ""
) -> bytes:
    """The body of ``response``, unless it takes past ``deadline`` (then its socket is shut)
    or is larger than :data:`MAX_RESPONSE_BYTES`.

    :raises FetchError: naming the answer ``name`` (its URL when empty).
    """
    name = name or response.url
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError(f"{name} took longer than {timeout:g} s")
    cutter = _DeadlineCutter(response, remaining)
    late = FetchError(f"{name} took longer than {timeout:g} s")
    try:
        body = _read_capped(response, name)
    except requests.RequestException as exc:
        # The socket's own timeout (what is left of the total when the answer
        # began) may end the read just before the cutter does: past the
        # deadline, either way it is the deadline that ended it.
        if cutter.cut or time.monotonic() >= deadline:
            raise late from exc
        raise
    finally:
        cutter.cancel()
    if cutter.cut:  # the end of a body without a length looks like any other end
        raise late
    return body


class _DeadlineCutter:
    """Shuts the socket of a response still being read when its deadline comes.

    A read blocked on the socket then ends at once. Only the answers that do
    not come whole within the deadline lose their connection.
    """

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self._socket = _socket_of(response)
        self._lock = threading.Lock()
        self._done = False
        self.cut = False
        self._timer: threading.Timer | None = None
        if self._socket is not None:
            self._timer = threading.Timer(seconds, self._cut)
            self._timer.daemon = True
            self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            if self._done or self._socket is None:
                return
            self.cut = True
            # socket.socket's own shutdown, also for a TLS socket: it wakes a
            # blocked read without touching the TLS object that read is using.
            # A socket already closed has nothing left to cut.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)

    def cancel(self) -> None:
        """The read is over: the deadline no longer matters."""
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket the body of ``response`` is read from; ``None`` without one (an
    in-process transport).

    On a connection kept alive for the next request it is the connection's.
    When the answer ends the connection (``Connection: close``, HTTP/1.0),
    ``http.client`` lets go of it on the connection's side, and it is found
    behind the response's own file instead: every framing is cut at the
    deadline (``tests/test_fetch_deadline.py`` tries each).
    """
    raw = response.raw
    found = getattr(getattr(raw, "connection", None), "sock", None)
    if found is None:
        reader = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client's buffered file
        found = getattr(getattr(reader, "raw", None), "_sock", None)  # its socket.SocketIO
    return found if isinstance(found, socket.socket) else None


def _read_capped(response: requests.Response, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise FetchError(f"{name} answered more than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def fork_safe_session() -> requests.Session:
    """A ``requests.Session`` whose kept-alive connections a forked child never reuses.

    A server that loads the app before forking its workers (gunicorn's
    ``--preload``) would otherwise hand every worker the same open connection
    to Cloudflare. In the child, the inherited pools are dropped (not closed,
    so nothing is sent on the parent's connection) and fresh ones mounted.
    """
    session = requests.Session()
    if hasattr(os, "register_at_fork"):
        reference = weakref.ref(session)
        os.register_at_fork(after_in_child=lambda: forget_connections(reference()))
    return session


def forget_connections(session: requests.Session | None) -> None:
    """Mount fresh HTTP(S) adapters on ``session``, leaving the old pools untouched."""
    if session is not None:
        session.mount("https://", HTTPAdapter())
        session.mount("http://", HTTPAdapter())
