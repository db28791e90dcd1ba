"""Any WSGI application, Flask or not, behind Cloudflare Access."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask_cf_access import CloudflareAccessMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def hello(
    environ: WSGIEnvironment, start_response: StartResponse
) -> Iterable[bytes]:
    """Knows nothing of tokens: the middleware says who is calling."""
    user = environ.get("REMOTE_USER", "nobody")
    groups = environ.get("HTTP_X_AUTH_GROUPS", "")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [f"Hello, {user} ({groups})".encode("latin-1")]


def make_app(
    config: Mapping[str, Any], **options: Any
) -> CloudflareAccessMiddleware:
    return CloudflareAccessMiddleware.from_mapping(
        config,
        hello,
        public_paths=["/healthz"],
        public_prefixes=["/static"],
        rules={"/admin": ["Admins"]},
        headers={"X-Auth-Email": "email", "X-Auth-Groups": "groups"},
        **options,
    )


def create_app() -> CloudflareAccessMiddleware:
    """For ``gunicorn 'wsgi_app:create_app()'``: settings from os.environ."""
    return make_app(os.environ)
