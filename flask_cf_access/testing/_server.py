"""Serving the stand-in: in process through ``requests`` or ``responses``, with no
HTTP at all, or over real HTTP on 127.0.0.1 in a thread (:class:`StandInServer`,
with its faults, its minting URL and its sign-in page).

Also the paths Cloudflare Access answers at, the request counts, and the life
cycle the kit's HTTP servers share (the local edge's too).
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import socketserver
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

from .._core.json_input import parse_json
from .._core.logsafe import loggable
from ._sign_in import PageAnswer, answer_get, answer_post, is_sign_in_path, reached_origin

if TYPE_CHECKING:
    from responses import RequestsMock

    # For annotations only: the stand-in's serve(), session() and register()
    # use this module, so the stand-in's module imports this one, not the reverse.
    from ._stand_in import AccessIssuer


logger = logging.getLogger("flask_cf_access.testing")


# -- where Access answers ----------------------------------------------------------


CERTS_PATH = "/cdn-cgi/access/certs"
IDENTITY_PATH = "/cdn-cgi/access/get-identity"
#: Where a :class:`StandInServer` started with ``minting=True`` mints tokens,
#: under a random secret: ``/__stand-in__/<secret>/tokens``.
MINT_PREFIX = "/__stand-in__/"


# -- requests answered, by path ----------------------------------------------------


class RequestCounts(Mapping[str, int]):
    """Requests answered, by path; thread-safe. A path never asked for counts 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, path: str) -> None:
        """Count one request for ``path``."""
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()

    def __getitem__(self, path: str) -> int:
        with self._lock:
            return self._counts.get(path, 0)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._counts

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._counts))

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    def __repr__(self) -> str:
        with self._lock:
            return f"RequestCounts({self._counts!r})"


# -- faults a stand-in server can be told to answer with ---------------------------


#: What each kind of fault does to a request it is set for.
FAULT_KINDS = {
    "refuse": "close the connection without an answer",
    "hang": "answer nothing until the fault is cleared or the server closed",
    "error": "answer HTTP 500 with a JSON error",
    "garbage": "answer 200 with a body that is not JSON",
    "slow": "answer as usual, after ``seconds``",
}


@dataclass(frozen=True)
class Fault:
    """One fault for :meth:`StandInServer.inject`: a kind from :data:`FAULT_KINDS`.

    :param seconds: how long a ``"slow"`` fault holds the answer back.
    """

    kind: str
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}: one of {', '.join(FAULT_KINDS)}")
        if self.kind == "slow" and not self.seconds > 0:
            raise ValueError("a 'slow' fault needs seconds > 0")


# -- in process, with no HTTP ------------------------------------------------------


class _StandInAdapter(BaseAdapter):
    """A transport adapter that answers requests from the stand-in."""

    def __init__(self, issuer: AccessIssuer) -> None:
        super().__init__()
        self.issuer = issuer
        #: Requests answered, by path, so tests can count fetches.
        self.calls: dict[str, int] = {}

    def send(  # type: ignore[override]
        self, request: PreparedRequest, **kwargs: Any
    ) -> Response:
        path = urlsplit(request.url or "").path
        self.calls[path] = self.calls.get(path, 0) + 1
        status, body = self.answer(path, request.headers.get("Cookie"))
        response = Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.url = request.url or ""
        response.request = request
        return response

    def answer(self, path: str, cookie: str | None) -> tuple[int, Any]:
        """The status and JSON body for a request to ``path``: the stand-in's."""
        return self.issuer.respond(path, cookie)

    def close(self) -> None:
        """Nothing to release."""


def issuer_session(issuer: AccessIssuer) -> requests.Session:
    """A ``requests.Session`` answered by ``issuer`` in-process, with no HTTP."""
    session = requests.Session()
    session.mount(issuer.issuer + "/", _StandInAdapter(issuer))
    return session


def register_responses(issuer: AccessIssuer, mock: RequestsMock | None = None) -> None:
    """Answer ``issuer``'s certs and ``get-identity`` URLs through ``responses``."""
    import responses

    target = responses.mock if mock is None else mock

    def answer(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url or "").path
        status, body = issuer.respond(path, request.headers.get("Cookie"))
        return status, {}, json.dumps(body)

    for url in (issuer.certs_url, issuer.identity_url):
        target.add_callback(responses.GET, url, callback=answer, content_type="application/json")


# -- over HTTP on 127.0.0.1, in a thread -------------------------------------------


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


#: The largest minting request body a stand-in server reads.
_MAX_MINT_BODY = 64 * 1024


class StandInServer(ServedInThread):
    """The stand-in (an :class:`AccessIssuer`) served over real HTTP, in a thread.

    Serves ``GET /cdn-cgi/access/certs`` and ``GET /cdn-cgi/access/get-identity``
    (the token in the ``CF_Authorization`` cookie), as Cloudflare does, from a
    ``ThreadingHTTPServer`` on ``host`` (127.0.0.1) and an ephemeral port.
    Start and stop it with ``with``, or :meth:`start` and :meth:`close`::

        with issuer.serve() as server:
            app = create_app(server.settings())
            assert server.calls["/cdn-cgi/access/certs"] == 1

    The token ``iss`` stays ``https://<team_domain>``; only the URLs the app
    fetches from point here, so :meth:`settings` sets ``CF_ACCESS_CERTS_URL``
    and ``CF_ACCESS_IDENTITY_URL``.

    To test an app against a failing team, :meth:`inject` a fault on the
    certs or identity endpoint (refused, hanging, erring, garbage, slow) and
    :meth:`heal` it::

        server.inject("certs", "hang")
        ...  # requests with known keys must not wait for the hanging fetch
        server.heal()
    """

    def __init__(
        self,
        issuer: AccessIssuer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        minting: bool = False,
        sign_in: bool = False,
    ) -> None:
        if sign_in and host != "127.0.0.1":
            raise ValueError("the local sign-in page is only ever served on 127.0.0.1")
        super().__init__(host, port, _Handler, "stand-in server")
        self.issuer = issuer
        #: Whether the Access-like sign-in page and logout are served (127.0.0.1 only).
        self.sign_in = sign_in
        #: Requests answered so far, by path.
        self.calls = RequestCounts()
        self._mint_path = f"{MINT_PREFIX}{secrets.token_urlsafe(24)}/tokens" if minting else None
        self._faults: dict[str, Fault] = {}
        self._faults_lock = threading.Lock()
        #: Set when the faults are healed or the server closes: hanging answers end.
        self._healed = threading.Event()

    # -- life cycle ------------------------------------------------------

    def _closing(self) -> None:
        self._healed.set()  # no hanging answer outlives the server

    # -- where it answers -------------------------------------------------

    @property
    def certs_url(self) -> str:
        """The URL of the certs document on this server."""
        return self.url + CERTS_PATH

    @property
    def identity_url(self) -> str:
        """The URL of ``get-identity`` on this server."""
        return self.url + IDENTITY_PATH

    @property
    def mint_url(self) -> str | None:
        """Where ``flask cf-access mint`` asks for tokens, if started with ``minting=True``.

        The URL holds a random secret: whoever knows it can mint tokens that
        apps trusting this stand-in accept, so it is only ever printed to the
        terminal that started the server.
        """
        return None if self._mint_path is None else self.url + self._mint_path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``CF_ACCESS_*`` settings for an app that trusts this stand-in over HTTP.

        ``CF_ACCESS_TEAM_DOMAIN`` is the stand-in's (it is the tokens' ``iss``);
        the certs and identity URLs point at this server. With ``minting=True``,
        ``CF_ACCESS_STAND_IN`` is the :attr:`mint_url`.
        """
        settings = self.issuer.settings(
            CF_ACCESS_CERTS_URL=self.certs_url, CF_ACCESS_IDENTITY_URL=self.identity_url
        )
        if self.mint_url is not None:
            settings["CF_ACCESS_STAND_IN"] = self.mint_url
        settings.update(overrides)
        return settings

    def environ(self, **overrides: Any) -> dict[str, str]:
        """:meth:`settings` as environment variables (non-strings as JSON), e.g.
        for ``gunicorn`` running an app that reads ``CF_ACCESS_*`` from them."""
        return {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in self.settings(**overrides).items()
        }

    # -- faults ------------------------------------------------------------

    def inject(self, endpoint: str, kind: str, *, seconds: float = 0.0) -> None:
        """Answer every request to ``endpoint`` (``"certs"`` or ``"identity"``) with a fault.

        ``kind`` is one of ``"refuse"`` (the connection is closed unanswered),
        ``"hang"`` (nothing is answered until :meth:`heal` or :meth:`close`),
        ``"error"`` (HTTP 500), ``"garbage"`` (200 with a body that is not JSON)
        and ``"slow"`` (the usual answer, ``seconds`` late). The requests are
        still counted in :attr:`calls`.

        :raises ValueError: an unknown endpoint or kind.
        """
        paths = {"certs": CERTS_PATH, "identity": IDENTITY_PATH}
        if endpoint not in paths:
            raise ValueError(f"unknown endpoint {endpoint!r}: 'certs' or 'identity'")
        fault = Fault(kind, seconds)
        with self._faults_lock:
            if not self._faults:
                self._healed.clear()
            self._faults[paths[endpoint]] = fault

    def heal(self) -> None:
        """Clear every injected fault; hanging requests are answered at once."""
        with self._faults_lock:
            self._faults.clear()
            self._healed.set()

    def _fault_for(self, path: str) -> Fault | None:
        with self._faults_lock:
            return self._faults.get(path)

    def _wait_healed(self, seconds: float | None) -> bool:
        """Wait up to ``seconds`` (``None``: for ever) for a heal; ``True`` if it came."""
        return self._healed.wait(seconds)

    # -- answering, called from the server's threads -----------------------

    def _answer_get(self, path: str, cookie_header: str | None) -> tuple[int, Any]:
        return self.issuer.respond(path, cookie_header)

    def _answer_post(self, path: str, body: bytes) -> tuple[int, Any]:
        if self._mint_path is None or not secrets.compare_digest(
            path.encode(), self._mint_path.encode()
        ):
            return 404, {"err": "not found"}
        try:
            request = parse_json(body or b"{}")
            return 200, {"token": self.issuer._mint_asked(request)}
        except (ValueError, TypeError) as exc:
            return 400, {"err": str(exc)}


class _Handler(BaseHTTPRequestHandler):
    """Answers one request for a :class:`StandInServer` (HTTP/1.0: one per connection)."""

    server: KitHTTPServer
    server_version = "cf-access-stand-in"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        stand_in: StandInServer = self.server.owner
        stand_in.calls.add(path)
        if stand_in.sign_in and is_sign_in_path(path):
            origin = reached_origin(self.headers.get("Host"), stand_in.url)
            self._send_page(answer_get(stand_in.issuer, self.path, origin))
            return
        fault = stand_in._fault_for(path)
        if fault is not None and not self._answer_fault(fault.kind, fault.seconds):
            return
        status, body = stand_in._answer_get(path, self.headers.get("Cookie"))
        self._send_json(status, body)

    def _answer_fault(self, kind: str, seconds: float) -> bool:
        """Act out an injected fault; ``True`` if the usual answer should follow."""
        if kind == "slow":
            self.server.owner._wait_healed(seconds)
            return True
        if kind == "hang":
            self.server.owner._wait_healed(None)
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
        self.server.owner.calls.add(path)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_MINT_BODY:
            self._send_json(400, {"err": "bad Content-Length"})
            return
        body_bytes = self.rfile.read(length)
        stand_in: StandInServer = self.server.owner
        if stand_in.sign_in and is_sign_in_path(path):
            origin = reached_origin(self.headers.get("Host"), stand_in.url)
            self._send_page(
                answer_post(
                    stand_in.issuer, self.path, body_bytes, self.headers.get("Origin"), origin
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
