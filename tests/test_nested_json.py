"""Nested and oversized JSON from outside: a refusal or a failed fetch, never a 500 or a crash."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.test import Client

from flask_cf_access import CloudflareAccessMiddleware, Reason
from flask_cf_access._core.tokens import MAX_HEADER_LENGTH, MAX_TOKEN_LENGTH
from flask_cf_access.cli import cli
from flask_cf_access.testing import AccessIssuer, run_inline

from .redis_server import running_redis_server
from .support import FrozenClock, bearer, count_calls
from .verdicts import (
    b64,
    hostile_team,
    nested_arrays,
    nested_objects,
    protected_app,
    refusal_reasons,
    signed_token,
    usual_header,
    verdict,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: Deeper than the parser's own recursion limit: today's ``RecursionError``.
TOO_DEEP_TO_PARSE = 5000


def unsigned(header: bytes, payload: bytes = b"{}") -> str:
    return f"{b64(header)}.{b64(payload)}.c2ln"


HOSTILE_HEADERS = {
    "arrays": nested_arrays(TOO_DEEP_TO_PARSE),
    "objects": nested_objects(1500),
    "arrays in a member": b'{"alg":"RS256","x":' + nested_arrays(TOO_DEEP_TO_PARSE) + b"}",
}


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS)
def test_deeply_nested_header_is_401(app: Flask, header: bytes) -> None:
    """A header segment of thousands of nested arrays or objects: 401, refused before parsing."""
    token = unsigned(header)
    assert len(token) < MAX_TOKEN_LENGTH
    assert verdict(app, token) == (401, Reason.TOKEN_TOO_LARGE)
    assert verdict(app, token, "/admin") == (401, Reason.TOKEN_TOO_LARGE)


def test_header_segment_over_the_cap_is_401(app: Flask, issuer: AccessIssuer) -> None:
    """A header longer than any Access header, even a well-formed and signed one: 401."""
    header = json.dumps(
        {"alg": "RS256", "kid": issuer.signing_key.kid, "x": "y" * MAX_HEADER_LENGTH}
    ).encode()
    token = signed_token(header, json.dumps({"iss": issuer.issuer}).encode(), issuer.signing_key)
    assert verdict(app, token) == (401, Reason.TOKEN_TOO_LARGE)


def test_nested_header_within_the_cap_is_401(app: Flask) -> None:
    """A short header nested beyond the depth limit is malformed: 401."""
    for header in (nested_arrays(300), nested_objects(100)):
        assert len(b64(header)) <= MAX_HEADER_LENGTH
        assert verdict(app, unsigned(header)) == (401, Reason.MALFORMED_TOKEN)


@pytest.mark.parametrize("depth", [TOO_DEEP_TO_PARSE, 100])
def test_signed_nested_payload_is_401(app: Flask, issuer: AccessIssuer, depth: int) -> None:
    """A payload signed by the team, nested too deep to parse or beyond the depth limit: 401."""
    payload = b'{"iss":"' + issuer.issuer.encode() + b'","custom":' + nested_arrays(depth) + b"}"
    token = signed_token(usual_header(issuer), payload, issuer.signing_key)
    assert verdict(app, token) == (401, Reason.MALFORMED_CLAIMS)
    assert verdict(app, token, "/admin") == (401, Reason.MALFORMED_CLAIMS)


def test_nested_claims_within_the_limit_pass(app: Flask, issuer: AccessIssuer) -> None:
    """Custom attributes nested a few levels deep, as SAML and OIDC give them, still pass."""
    token = issuer.user_token("ada@example.com", custom={"org": {"unit": {"teams": [["a"]]}}})
    assert verdict(app, token) == (200, None)


def test_middleware_refuses_a_nested_header(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """The middleware answers 401 to a nested header; nothing escapes to the server."""

    def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"downstream"]

    middleware = CloudflareAccessMiddleware(
        downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        background=run_inline,
    )
    for header in HOSTILE_HEADERS.values():
        with refusal_reasons() as reasons:
            response = Client(middleware).get("/", headers=bearer(unsigned(header)))
        assert (response.status_code, reasons) == (401, [Reason.TOKEN_TOO_LARGE])


def test_nested_certs_document_fails_the_fetch(
    issuer: AccessIssuer, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Certs of nested arrays under the size cap: init_app logs and goes on, requests get 503."""
    with hostile_team(issuer, certs=lambda _issuer: nested_arrays(100_000)):
        with caplog.at_level(logging.ERROR, logger="flask_cf_access"):
            app = protected_app(issuer, clock)
        assert "keys could not be refreshed" in caplog.text
        token = issuer.user_token("ada@example.com", ["Admins"])
        assert verdict(app, token) == (503, Reason.KEYS_UNAVAILABLE)


def test_certs_with_a_nested_member_fail_the_fetch(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Usable keys beside a member nested beyond the limit: the document is refused, 503."""

    def certs(team: AccessIssuer) -> bytes:
        return (
            json.dumps({**team.certs(), "extra": 0})
            .encode()
            .replace(b"0}", nested_arrays(200) + b"}")
        )

    with hostile_team(issuer, certs=certs):
        app = protected_app(issuer, clock)
        assert verdict(app, issuer.user_token("ada@example.com")) == (503, Reason.KEYS_UNAVAILABLE)


NESTED_IDENTITIES = {
    "groups too deep to parse": b'{"email":"ada@example.com","groups":'
    + nested_arrays(100_000)
    + b"}",
    "a member beyond the limit": b'{"email":"ada@example.com","groups":["Admins"],"device":'
    + nested_arrays(100)
    + b"}",
}


@pytest.mark.parametrize("answer", NESTED_IDENTITIES.values(), ids=NESTED_IDENTITIES)
def test_nested_identity_answer_is_503(
    issuer: AccessIssuer, clock: FrozenClock, answer: bytes
) -> None:
    """A get-identity answer nested too deep: the group-gated route answers 503."""
    with hostile_team(issuer, identity=lambda _issuer: answer):
        app = protected_app(issuer, clock)
        token = issuer.user_token("ada@example.com", ["Admins"])
        assert verdict(app, token) == (200, None)
        assert verdict(app, token, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)


def test_cli_verify_refuses_a_nested_header(app: Flask) -> None:
    """flask cf-access verify explains a nested header instead of crashing."""
    result = app.test_cli_runner().invoke(
        cli, ["verify", unsigned(nested_arrays(TOO_DEEP_TO_PARSE))]
    )
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "REFUSED (token_too_large)" in result.output


def test_cli_verify_survives_a_nested_payload(app: Flask, issuer: AccessIssuer) -> None:
    """A token whose unverified payload is nested too deep: shown as no claims, refused."""
    token = unsigned(usual_header(issuer), nested_arrays(5000))
    assert len(token) < MAX_TOKEN_LENGTH
    result = app.test_cli_runner().invoke(cli, ["verify", token])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "2. Signature: NOT verified (bad_signature" in result.output
    assert "REFUSED (bad_signature)" in result.output


def test_cli_check_reports_nested_certs(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """flask cf-access check on a nested certs document: a one-line error, exit 1."""
    with hostile_team(issuer, certs=lambda _issuer: nested_arrays(100_000)):
        app = protected_app(issuer, clock)
        result = app.test_cli_runner().invoke(cli, ["check"])
    assert result.exit_code == 1, result.output
    assert "did not answer JSON" in result.output


def test_stand_in_refuses_a_nested_token(issuer: AccessIssuer) -> None:
    """The testing kit's get-identity answers 400 to a token of nested claims, as to any junk."""
    token = unsigned(usual_header(issuer), nested_arrays(TOO_DEEP_TO_PARSE))
    assert issuer.identity_for(token) is None
    status, _body = issuer.respond("/cdn-cgi/access/get-identity", f"CF_Authorization={token}")
    assert status == 400


@pytest.mark.redis
def test_nested_entries_in_redis_are_misses(
    issuer: AccessIssuer, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Nested JSON under the keys' and an identity's entries in Redis: misses, fetched anew."""
    with running_redis_server() as server, hostile_team(issuer) as mock:
        token = issuer.user_token("ada@example.com", ["Admins"])
        client = server.client()
        try:
            for key in (
                f"flask_cf_access:certs:{issuer.certs_url}",
                f"flask_cf_access:identity:{hashlib.sha256(token.encode()).hexdigest()}",
            ):
                client.set(key, nested_arrays(100_000))
        finally:
            client.close()
        with caplog.at_level(logging.INFO, logger="flask_cf_access"):
            app = protected_app(
                issuer, clock, CF_ACCESS_CACHE=server.url, CF_ACCESS_LOAD_KEYS_ON_INIT=False
            )
            assert verdict(app, token, "/admin") == (200, None)
        assert "is failing" not in caplog.text
        assert count_calls(mock, issuer.certs_url) == 1
        assert count_calls(mock, issuer.identity_url) == 1
