"""A stand-in team served over real HTTP on 127.0.0.1, in a thread."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._json_input import parse_json
from ._counts import RequestCounts
from ._faults import Fault
from ._http import _Handler, _HTTPServer
from ._paths import CERTS_PATH, IDENTITY_PATH, MINT_PREFIX

if TYPE_CHECKING:
    from ._issuer import AccessIssuer


class StandInServer:
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
        self.issuer = issuer
        #: Whether the Access-like sign-in page and logout are served (127.0.0.1 only).
        self.sign_in = sign_in
        self.host = host
        self.port = port
        #: Requests answered so far, by path.
        self.calls = RequestCounts()
        self._mint_path = f"{MINT_PREFIX}{secrets.token_urlsafe(24)}/tokens" if minting else None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: dict[str, Fault] = {}
        self._faults_lock = threading.Lock()
        #: Set when the faults are healed or the server closes: hanging answers end.
        self._healed = threading.Event()

    # -- life cycle ------------------------------------------------------

    def start(self) -> StandInServer:
        """Bind the port and serve in a daemon thread. Returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("the stand-in server is already running")
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.stand_in = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"cf-access-stand-in:{self.port}",
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
        self._healed.set()  # no hanging answer outlives the server
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- where it answers -------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, with no trailing slash."""
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not running: use `with issuer.serve():`")
        return f"http://{self.host}:{self.port}"

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
        return self.issuer.user_token(email, groups, **options)


def _member(request: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """``request[name]`` if it is a ``kind`` (a bool only where a bool is wanted)."""
    value = request.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ValueError(f"{name} must be a {kind.__name__}")
    return value
