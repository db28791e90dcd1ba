"""An issuer's answers without a server: in process through requests, or through responses."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.models import PreparedRequest, Response

if TYPE_CHECKING:
    from responses import RequestsMock

    from ._team import Team


class _IssuerAdapter(BaseAdapter):
    """A transport adapter that answers requests from an stand-in team."""

    def __init__(self, issuer: Team) -> None:
        super().__init__()
        self.issuer = issuer
        #: Requests answered, by path, so tests can count fetches.
        self.calls: dict[str, int] = {}

    def send(  # type: ignore[override]
        self, request: PreparedRequest, **kwargs: Any
    ) -> Response:
        path = urlsplit(request.url or "").path
        self.calls[path] = self.calls.get(path, 0) + 1
        status, body = self.issuer.respond(path, request.headers.get("Cookie"))
        response = Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""


def issuer_session(issuer: Team) -> requests.Session:
    """A ``requests.Session`` answered by ``issuer`` in-process, with no HTTP."""
    session = requests.Session()
    session.mount(issuer.issuer + "/", _IssuerAdapter(issuer))
    return session


def register_responses(issuer: Team, mock: RequestsMock | None = None) -> None:
    """Answer ``issuer``'s certs and ``get-identity`` URLs through ``responses``."""
    import responses

    target = responses.mock if mock is None else mock

    def answer(request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url or "").path
        status, body = issuer.respond(path, request.headers.get("Cookie"))
        return status, {}, json.dumps(body)

    for url in (issuer.certs_url, issuer.identity_url):
        target.add_callback(responses.GET, url, callback=answer, content_type="application/json")
