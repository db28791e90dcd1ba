"""The HTTP server and request handler behind a :class:`StandInServer`."""

from __future__ import annotations

import json
import logging
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._logsafe import loggable
from ._sign_in import PageAnswer, answer_get, answer_post, is_sign_in_path

if TYPE_CHECKING:
    from ._server import StandInServer

logger = logging.getLogger("flask_cf_access.testing")

#: The largest minting request body a stand-in server reads.
_MAX_MINT_BODY = 64 * 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default of 5 overflows under a few workers fetching at once,
    # and a dropped SYN costs the client a second (TCP retransmission).
    request_queue_size = 128
    stand_in: StandInServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's full name; not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    """Answers one request for a :class:`StandInServer` (HTTP/1.0: one per connection)."""

    server: _HTTPServer
    server_version = "cf-access-stand-in"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        stand_in = self.server.stand_in
        stand_in.calls.add(path)
        if stand_in.sign_in and is_sign_in_path(path):
            self._send_page(answer_get(stand_in.issuer, self.path))
            return
        fault = stand_in._fault_for(path)
        if fault is not None and not self._answer_fault(fault.kind, fault.seconds):
            return
        status, body = stand_in._answer_get(path, self.headers.get("Cookie"))
        self._send_json(status, body)

    def _answer_fault(self, kind: str, seconds: float) -> bool:
        """Act out an injected fault; ``True`` if the usual answer should follow."""
        if kind == "slow":
            self.server.stand_in._wait_healed(seconds)
            return True
        if kind == "hang":
            self.server.stand_in._wait_healed(None)
            self.close_connection = True
        elif kind == "refuse":
            self.close_connection = True
        elif kind == "error":
            self._send_json(500, {"err": "injected fault"})
        elif kind == "garbage":
            data = b"<html>not json"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        return False

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.server.stand_in.calls.add(path)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_MINT_BODY:
            self._send_json(400, {"err": "bad Content-Length"})
            return
        body_bytes = self.rfile.read(length)
        stand_in = self.server.stand_in
        if stand_in.sign_in and is_sign_in_path(path):
            self._send_page(
                answer_post(
                    stand_in.issuer, self.path, body_bytes, self.headers.get("Origin"), stand_in.url
                )
            )
            return
        status, body = stand_in._answer_post(path, body_bytes)
        self._send_json(status, body)

    def _send_page(self, answer: PageAnswer) -> None:
        data = answer.body.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its timeout, during a slow fault): not an error here.
            logger.debug("stand-in: %s went away before its answer", self.address_string())

    def log_message(self, format: str, *args: Any) -> None:
        # The request line is the client's: escape it, as every log line of the package does.
        safe = (loggable(arg) if isinstance(arg, str) else arg for arg in args)
        logger.debug("stand-in %s: " + format, self.address_string(), *safe)
