"""The life cycle the kit's HTTP servers share: bound on 127.0.0.1, served in a thread."""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

_Served = TypeVar("_Served", bound="ServedInThread")


class KitHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the kit's object it answers for (``owner``)."""

    daemon_threads = True
    # socketserver's default of 5 overflows under a few workers fetching at once,
    # and a dropped SYN costs the client a second (TCP retransmission).
    request_queue_size = 128
    owner: Any

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name; not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class ServedInThread:
    """Start with ``with`` (or :meth:`start`), stop with :meth:`close`; :attr:`url` meanwhile.

    :param handler: answers each request; it reaches this object as ``self.server.owner``.
    :param kind: what the server is called, in thread names and errors.
    """

    def __init__(
        self, host: str, port: int, handler: type[BaseHTTPRequestHandler], kind: str
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.kind = kind
        self._httpd: KitHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self: _Served) -> _Served:
        """Bind the port and serve in a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError(f"the {self.kind} is already running")
        httpd = KitHTTPServer((self.host, self.port), self.handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"cf-access-{self.kind.replace(' ', '-')}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the socket and join the thread. Safe to call twice."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        self._closing()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()

    def _closing(self) -> None:
        """What to do before the server stops (a subclass's hook)."""

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, with no trailing slash."""
        if self._httpd is None:
            raise RuntimeError(f"the {self.kind} is not running: start it with `with`")
        return f"http://{self.host}:{self.port}"

    def __enter__(self: _Served) -> _Served:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
