"""The stand-in team over real HTTP on 127.0.0.1: shapes, counts, settings, shutdown."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import load_pem_x509_certificate
from flask import Flask

from flask_cf_access import CloudflareAccess, Reason, current_identity, require_group
from flask_cf_access._core.keys import parse_certs
from flask_cf_access.testing import (
    CERTS_PATH,
    IDENTITY_PATH,
    AccessIssuer,
    RequestCounts,
    StandInServer,
    capture_access,
    run_inline,
)

from .support import FrozenClock, bearer


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session that ignores proxy settings: only 127.0.0.1 is reached."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


def group_app(server: StandInServer, clock: FrozenClock | None = None, **config: Any) -> Flask:
    """An app trusting ``server``, with one group-gated route."""
    app = Flask("stand_in_client")
    app.config.update(server.settings(**config))
    CloudflareAccess(app, clock=clock or time.time, background=run_inline)

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> dict[str, Any]:
        return {"email": current_identity.email}

    return app


def test_certs_have_cloudflare_shape(
    cf_access_server: StandInServer, http: requests.Session
) -> None:
    """GET /cdn-cgi/access/certs answers JSON keys, public_cert and public_certs."""
    response = http.get(cf_access_server.certs_url, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert set(document) == {"keys", "public_cert", "public_certs"}
    (jwk,) = document["keys"]
    assert {jwk["kty"], jwk["alg"], jwk["use"], jwk["e"]} == {"RSA", "RS256", "sig", "AQAB"}
    assert document["public_cert"] == document["public_certs"][0]
    assert document["public_cert"]["kid"] == jwk["kid"]
    assert list(parse_certs(document)) == [jwk["kid"]]


def test_kid_is_sha256_of_the_public_key(
    cf_access_server: StandInServer, http: requests.Session
) -> None:
    """The kid is the SHA-256 hex of the certificate's DER SubjectPublicKeyInfo."""
    document = http.get(cf_access_server.certs_url, timeout=5).json()
    cert = load_pem_x509_certificate(document["public_cert"]["cert"].encode())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert document["public_cert"]["kid"] == hashlib.sha256(der).hexdigest()
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    modulus = public_key.public_numbers().n
    n = document["keys"][0]["n"]
    assert int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big") == modulus


def test_get_identity_reads_the_cookie(
    cf_access_server: StandInServer, http: requests.Session
) -> None:
    """get-identity answers the groups of the token in CF_Authorization, 400 without one."""
    issuer = cf_access_server.issuer
    token = issuer.user_token("ada@example.com", ["Admins"])
    answer = http.get(cf_access_server.identity_url, cookies={"CF_Authorization": token}, timeout=5)
    assert answer.status_code == 200
    identity = answer.json()
    assert identity["email"] == "ada@example.com"
    assert identity["groups"] == [
        {"id": issuer.group_id("Admins"), "name": "Admins", "email": "Admins@groups.example"}
    ]
    assert http.get(cf_access_server.identity_url, timeout=5).status_code == 400


def test_unknown_paths_and_methods(cf_access_server: StandInServer, http: requests.Session) -> None:
    """Anything else is a 404 (GET) or 404 (POST, no minting) or 501 (other verbs)."""
    assert http.get(cf_access_server.url + "/nope", timeout=5).status_code == 404
    assert http.post(cf_access_server.url + "/nope", json={}, timeout=5).status_code == 404
    assert http.put(cf_access_server.certs_url, timeout=5).status_code == 501
    assert cf_access_server.mint_url is None


def test_calls_are_counted_per_path_across_threads(
    cf_access_server: StandInServer, http: requests.Session
) -> None:
    """16 threads x 5 fetches are all counted, and other paths count separately."""
    assert cf_access_server.calls[CERTS_PATH] == 0
    assert CERTS_PATH not in cf_access_server.calls
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            with requests.Session() as session:
                session.trust_env = False
                for _ in range(5):
                    session.get(cf_access_server.certs_url, timeout=5).raise_for_status()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    http.get(cf_access_server.identity_url, timeout=5)
    assert errors == []
    assert cf_access_server.calls[CERTS_PATH] == 80
    assert cf_access_server.calls[IDENTITY_PATH] == 1
    assert dict(cf_access_server.calls) == {CERTS_PATH: 80, IDENTITY_PATH: 1}
    cf_access_server.calls.reset()
    assert len(cf_access_server.calls) == 0


def test_settings_point_an_app_at_the_server(cf_access_server: StandInServer) -> None:
    """The team stays the issuer's host; the certs and identity URLs are on 127.0.0.1."""
    settings = cf_access_server.settings(CF_ACCESS_LEEWAY=5)
    issuer = cf_access_server.issuer
    assert settings == {
        "CF_ACCESS_TEAM_DOMAIN": issuer.team_domain,
        "CF_ACCESS_AUDIENCE": issuer.audience,
        "CF_ACCESS_CERTS_URL": f"http://127.0.0.1:{cf_access_server.port}{CERTS_PATH}",
        "CF_ACCESS_IDENTITY_URL": f"http://127.0.0.1:{cf_access_server.port}{IDENTITY_PATH}",
        "CF_ACCESS_LEEWAY": 5,
    }
    assert cf_access_server.environ(CF_ACCESS_LEEWAY=5)["CF_ACCESS_LEEWAY"] == "5"


def test_app_verifies_and_fetches_groups_over_http(cf_access_server: StandInServer) -> None:
    """An app trusting the server loads keys once and asks get-identity once per token."""
    app = group_app(cf_access_server)
    issuer = cf_access_server.issuer
    client = app.test_client()
    ada = issuer.user_token("ada@example.com", ["Admins"])
    bob = issuer.user_token("bob@example.com", ["Staff"])
    assert client.get("/admin", headers=bearer(ada)).json == {"email": "ada@example.com"}
    assert client.get("/admin", headers=bearer(ada)).status_code == 200
    with capture_access(app) as captured:
        assert client.get("/admin", headers=bearer(bob)).status_code == 403
        assert client.get("/admin").status_code == 401
    assert captured.reasons == [Reason.NOT_IN_GROUP, Reason.MISSING_TOKEN]
    assert cf_access_server.calls[CERTS_PATH] == 1
    assert cf_access_server.calls[IDENTITY_PATH] == 2


def test_rotation_is_served_live(cf_access_server: StandInServer, http: requests.Session) -> None:
    """After rotate() both keys are published, after drop_previous() only the new one."""
    issuer = cf_access_server.issuer
    old = issuer.signing_key.kid
    new = issuer.rotate().kid

    def kids() -> list[str]:
        document = http.get(cf_access_server.certs_url, timeout=5).json()
        return [key["kid"] for key in document["keys"]]

    assert kids() == [new, old]
    issuer.drop_previous()
    assert kids() == [new]


def test_rotated_key_accepted_after_refresh() -> None:
    """A token of a new key makes the app fetch the certs again over HTTP, and pass."""
    clock = FrozenClock()
    issuer = AccessIssuer(clock=clock)
    with issuer.serve() as server:
        app = group_app(server, clock=clock)
        client = app.test_client()
        old_token = issuer.user_token("ada@example.com", ["Admins"])
        issuer.rotate()
        clock.advance(61)  # past CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL
        new_token = issuer.user_token("ada@example.com", ["Admins"])
        assert client.get("/admin", headers=bearer(new_token)).status_code == 200
        assert client.get("/admin", headers=bearer(old_token)).status_code == 200
        assert server.calls[CERTS_PATH] == 2


def test_close_stops_serving() -> None:
    """After the with block the port refuses connections; close() twice is harmless."""
    server = AccessIssuer().serve()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        port = server.port
        assert server.running
        assert port > 0
    assert not server.running
    server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_start_twice_is_an_error() -> None:
    """A running server cannot be started again."""
    with AccessIssuer().serve() as server, pytest.raises(RuntimeError, match="already"):
        server.start()


def test_minting_endpoint_needs_its_secret(http: requests.Session) -> None:
    """With minting=True tokens are minted at the secret URL only, for known users."""
    issuer = AccessIssuer()
    with issuer.serve(minting=True) as server:
        assert server.mint_url is not None
        assert server.settings()["CF_ACCESS_STAND_IN"] == server.mint_url
        guessed = server.url + "/__stand-in__/guess/tokens"
        assert http.post(guessed, json={"email": "a@example.com"}, timeout=5).status_code == 404
        answer = http.post(
            server.mint_url, json={"email": "ada@example.com", "groups": ["Admins"]}, timeout=5
        )
        assert answer.status_code == 200
        token = answer.json()["token"]
        identity = issuer.identity_for(token)
        assert identity is not None
        assert [group["name"] for group in identity["groups"]] == ["Admins"]
        service = http.post(server.mint_url, json={"service_token": "ci.access"}, timeout=5)
        assert issuer.identity_for(service.json()["token"]) is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"email": 1}',
        b'{"email": "a@example.com", "groups": "Admins"}',
        b'{"email": "a@example.com", "expired": 1}',
        b'{"service_token": "x", "lifetime": true}',
        b"{}",
    ],
)
def test_minting_endpoint_refuses_bad_requests(body: bytes, http: requests.Session) -> None:
    """Malformed minting requests get 400 with a reason, never a token."""
    with AccessIssuer().serve(minting=True) as server:
        assert server.mint_url is not None
        answer = http.post(server.mint_url, data=body, timeout=5)
        assert answer.status_code == 400
        assert "err" in answer.json()
        assert "token" not in answer.json()


def test_request_counts_is_a_mapping() -> None:
    """RequestCounts reads 0 for an unseen path and iterates over seen ones."""
    counts = RequestCounts()
    counts.add("/a")
    counts.add("/a")
    assert counts["/a"] == 2
    assert counts["/b"] == 0
    assert list(counts) == ["/a"]
    assert "RequestCounts" in repr(counts)
