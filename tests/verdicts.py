"""What a request was answered, and why: the status and the reason of the refusal signal."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
import responses
from flask import Flask

from flask_cf_access import (
    Background,
    CloudflareAccess,
    Reason,
    require_access,
    require_group,
)
from flask_cf_access.testing import AccessIssuer, SigningKey, capture_access, run_inline

from .support import FrozenClock, outcome


@contextmanager
def refusal_reasons() -> Iterator[list[Reason]]:
    """The reasons of every refusal while the block runs, filled when the block ends."""
    reasons: list[Reason] = []
    with capture_access() as captured:
        yield reasons
    reasons.extend(captured.reasons)


#: The status ``app`` answers a token on a path, and the reason it refused, if it did.
verdict = outcome


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_token(header: bytes, payload: bytes, key: SigningKey) -> str:
    """A compact JWS of exactly these header and payload bytes, really signed by ``key``."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def usual_header(issuer: AccessIssuer) -> bytes:
    """The header Access signs its tokens with."""
    return json.dumps({"alg": "RS256", "kid": issuer.signing_key.kid, "typ": "JWT"}).encode()


def nested_arrays(depth: int) -> bytes:
    """``[[[…]]]``, ``depth`` deep."""
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    """``{"a":{"a":…{}}}``, ``depth`` deep."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


Body = Callable[[AccessIssuer], bytes]


@contextmanager
def hostile_team(
    issuer: AccessIssuer, *, certs: Body | None = None, identity: Body | None = None
) -> Iterator[responses.RequestsMock]:
    """The team's endpoints, answering ``certs`` or ``identity`` bodies of the test's choosing."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:

        def answer_certs(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
            body = certs(issuer) if certs else json.dumps(issuer.certs()).encode()
            return 200, {"Content-Type": "application/json"}, body

        def answer_identity(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
            if identity is not None:
                return 200, {"Content-Type": "application/json"}, identity(issuer)
            status, body = issuer.respond(
                "/cdn-cgi/access/get-identity", request.headers.get("Cookie")
            )
            return status, {"Content-Type": "application/json"}, json.dumps(body).encode()

        mock.add_callback(responses.GET, issuer.certs_url, callback=answer_certs)
        mock.add_callback(responses.GET, issuer.identity_url, callback=answer_identity)
        yield mock


def protected_app(
    issuer: AccessIssuer,
    clock: FrozenClock,
    background: Background | None = run_inline,
    **config: Any,
) -> Flask:
    """An app trusting ``issuer``, with a plain and a group-gated route; work off
    the request done by ``background`` (``None``: the extension's default threads)."""
    app = Flask("nested")
    app.config.update(issuer.settings(**config))
    CloudflareAccess(app, clock=clock, background=background)

    @app.get("/")
    @require_access
    def home() -> str:
        return "home"

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> str:
        return "admin"

    return app
