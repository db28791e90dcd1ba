"""A stand-in team served over real HTTP on 127.0.0.1, in a thread: the server
object, and the HTTP server and request handler behind it."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._json_input import parse_json
from .._logsafe import loggable
from ._counts import RequestCounts
from ._faults import Fault
from ._paths import CERTS_PATH, IDENTITY_PATH, MINT_PREFIX
from ._profiles import identity_profile
from ._serving import KitHTTPServer, ServedInThread
from ._sign_in import PageAnswer, answer_get, answer_post, is_sign_in_path, reached_origin

if TYPE_CHECKING:
    # For the annotation of StandInServer.issuer only: the issuer's serve()
    # makes servers, so the issuer module imports this one, not the reverse.
    from ._issuer import AccessIssuer


logger = logging.getLogger("flask_cf_access.testing")

#: The largest minting request body a stand-in server reads.
_MAX_MINT_BODY = 64 * 1024


class StandInServer(ServedInThread):
    """An :class:`AccessIssuer`'s team served over real HTTP, in a thread.

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

        ``CF_ACCESS_TEAM_DOMAIN`` is the issuer's (it is the tokens' ``iss``);
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
            return 200, {"token": self._mint(request)}
        except (ValueError, TypeError) as exc:
            return 400, {"err": str(exc)}

    def _mint(self, request: object) -> str:
        """A token as asked for by ``flask cf-access mint``.

        :raises ValueError: the request is not an object of the expected members.
        """
        if not isinstance(request, dict):
            raise ValueError("the request must be a JSON object")
        options: dict[str, Any] = {
            "expired": _member(request, "expired", bool, False),
            "not_yet_valid": _member(request, "not_yet_valid", bool, False),
            "lifetime": _member(request, "lifetime", int, None),
            "audience": _member(request, "audience", str, None),
        }
        service_token = _member(request, "service_token", str, None)
        if service_token is not None:
            return self.issuer.service_token(service_token, **options)
        email = _member(request, "email", str, None)
        if not email:
            raise ValueError("an email or a service_token is needed")
        groups = _member(request, "groups", list, [])
        if not all(isinstance(group, str) and group for group in groups):
            raise ValueError("groups must be a list of names")
        profile = _member(request, "profile", dict, {})
        return self.issuer.user_token(
            email, groups, profile=self._profile_fields(profile), **options
        )

    def _profile_fields(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The get-identity fields a minting request's ``profile`` asks for.

        :raises ValueError: a member of the wrong type, or one it does not know.
        """
        unknown = set(request) - set(_PROFILE_MEMBERS)
        if unknown:
            raise ValueError(f"profile has no member {sorted(unknown)[0]!r}")
        given = {
            name: _member(request, name, kind, None) for name, kind in _PROFILE_MEMBERS.items()
        }
        amr, posture, custom = given["amr"], given["posture"], given["custom"]
        if amr is not None and not all(isinstance(method, str) for method in amr):
            raise ValueError("amr must be a list of methods")
        if posture is not None and not all(isinstance(ok, bool) for ok in posture.values()):
            raise ValueError("posture must map rule ids to true or false")
        login_age = given["login_age"]
        if login_age is not None and login_age < 0:
            raise ValueError("login_age must be seconds ago, 0 or more")
        idp = given["idp"]
        return identity_profile(
            amr=amr,
            idp=None if idp is None else (f"stand-in-{idp}", idp),
            posture=posture,
            login_at=None if login_age is None else self.issuer.clock() - login_age,
            country=given["country"],
            warp=given["warp"],
            gateway=given["gateway"],
            device_id=given["device_id"],
            custom=custom,
            client_certificate=given["client_certificate"],
        )


#: What a minting request's ``profile`` may hold, with the type of each.
_PROFILE_MEMBERS: Mapping[str, type] = {
    "amr": list,
    "idp": str,
    "posture": dict,
    "login_age": int,
    "country": str,
    "warp": bool,
    "gateway": bool,
    "device_id": str,
    "custom": dict,
    "client_certificate": bool,
}


def _member(request: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """``request[name]`` if it is a ``kind`` (a bool only where a bool is wanted)."""
    value = request.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ValueError(f"{name} must be a {kind.__name__}")
    return value


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
