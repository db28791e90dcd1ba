"""A stand-in for the Cloudflare API on 127.0.0.1, serving the documented shapes.

Every answer is the API's envelope ``{success, errors, messages, result,
result_info}``; the applications are served page by page (``page``,
``per_page``, ``result_info.total_pages``). A test can make any path fail
with a status, Cloudflare's error codes and headers (``Retry-After``), or
answer slowly: the server then waits on an event the test sets when it is
done, so that nothing sleeps in the test's thread.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

TOKEN = "cf-token-5b1c0e7f9a3d4c2b8e6f0a1d3c5b7e9f1a3c5d7e"
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


@dataclass
class Failure:
    """How one path answers instead of its document."""

    status: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    #: The raw body instead of an envelope.
    body: bytes | None = None


@dataclass(repr=False)
class FakeCloudflareApi:
    """The API's Access reads for one account, served by a thread on 127.0.0.1."""

    applications: list[dict[str, Any]] = field(default_factory=list)
    auth_domain: str = "acme.cloudflareaccess.com"
    identity_providers: list[dict[str, Any]] = field(default_factory=list)
    key_rotation_interval_days: int = 30
    #: Path suffix (``apps``, ``keys``...) to the failure it answers with.
    failures: dict[str, Failure] = field(default_factory=dict)
    #: ``"headers"``: wait before answering; ``"body"``: send part of the body, then wait.
    slow: str | None = None
    #: What the slow server waits on.
    release: threading.Event = field(default_factory=threading.Event)
    #: ``(path, query)`` of every request, and the Authorization headers seen.
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __repr__(self) -> str:
        return f"FakeCloudflareApi({self.url!r})"

    @property
    def url(self) -> str:
        """The base URL to give ``--api-url``."""
        return f"http://127.0.0.1:{self._server.server_port}/client/v4"

    def __enter__(self) -> FakeCloudflareApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def pages_asked(self) -> list[str]:
        """The ``page`` of each request for the applications, in order."""
        return [
            query.get("page", ["?"])[0] for path, query in self.requests if path.endswith("/apps")
        ]

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        query = parse_qs(request.query_string.decode())
        self.requests.append((request.path, query))
        self.authorizations.append(request.headers.get("Authorization", ""))
        response = self._answer(request.path, query, request.headers.get("Authorization", ""))
        if self.slow == "headers":
            self.release.wait(30)
        elif self.slow == "body":
            return self._trickle(response, start_response)
        return response(environ, start_response)

    def _trickle(self, response: Response, start_response: Any) -> Iterator[bytes]:
        start_response(response.status, [("Content-Type", "application/json")])
        yield b'{"success": true, '
        self.release.wait(30)
        yield response.get_data()[1:]

    def _answer(self, path: str, query: dict[str, list[str]], authorization: str) -> Response:
        prefix = f"/client/v4/accounts/{ACCOUNT_ID}/access/"
        if not path.startswith(prefix):
            return _envelope(404, errors=[{"code": 7003, "message": "Could not route"}])
        kind = path.removeprefix(prefix)
        if authorization != f"Bearer {TOKEN}":
            return _envelope(403, errors=[{"code": 10000, "message": "Authentication error"}])
        failure = self.failures.get(kind)
        if failure is not None:
            if failure.body is not None:
                return Response(failure.body, failure.status, headers=failure.headers)
            return _envelope(failure.status, errors=failure.errors, headers=failure.headers)
        if kind == "apps":
            return self._apps(query)
        if kind == "organizations":
            return _envelope(200, {"auth_domain": self.auth_domain, "name": "acme"})
        if kind == "identity_providers":
            return _envelope(200, self.identity_providers)
        if kind == "keys":
            return _envelope(
                200,
                {
                    "key_rotation_interval_days": self.key_rotation_interval_days,
                    "last_key_rotation_at": "2026-11-20T10:00:00Z",
                    "days_until_next_rotation": 14,
                },
            )
        return _envelope(404, errors=[{"code": 7003, "message": "Could not route"}])

    def _apps(self, query: dict[str, list[str]]) -> Response:
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["25"])[0])
        total = len(self.applications)
        total_pages = max(1, -(-total // per_page))
        result = self.applications[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(result),
            "total_count": total,
            "total_pages": total_pages,
        }
        return _envelope(200, result, result_info=info)


class _Quiet(WSGIRequestHandler):
    """Logs no request line: it would name the account id, in whatever captures stderr."""

    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


def _envelope(
    status: int,
    result: Any = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    result_info: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    document: dict[str, Any] = {
        "success": 200 <= status < 300,
        "errors": errors or [],
        "messages": [],
        "result": result,
    }
    if result_info is not None:
        document["result_info"] = result_info
    return Response(json.dumps(document), status, headers=headers, content_type="application/json")


def application(name: str, aud: str, domain: str, **fields: Any) -> dict[str, Any]:
    """An Access application as the API lists it, with its documented fields."""
    entry: dict[str, Any] = {
        "id": f"{zlib.crc32(name.encode()):08x}-0000-4000-8000-000000000000",
        "uid": f"{zlib.crc32(name.encode()):08x}-0000-4000-8000-000000000000",
        "type": "self_hosted",
        "name": name,
        "aud": aud,
        "domain": domain,
        "self_hosted_domains": [domain],
        "destinations": [{"type": "public", "uri": domain}],
        "session_duration": "24h",
        "allowed_idps": [],
        "auto_redirect_to_identity": False,
        "app_launcher_visible": True,
        "enable_binding_cookie": False,
        "http_only_cookie_attribute": True,
        "options_preflight_bypass": False,
        "policies": [],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    entry.update(fields)
    return entry
