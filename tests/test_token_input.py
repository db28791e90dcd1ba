"""Where the token is read from, and malformed input: always 401, never 500."""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_cf_access import AccessUnauthorized, Reason
from flask_cf_access._core.tokens import MAX_TOKEN_LENGTH, check_token_shape
from flask_cf_access.testing import AccessIssuer, capture_access, encode_token

from .support import bearer, outcome


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_missing_token_is_401(app: Flask) -> None:
    """A request without a token never reaches the view."""
    assert outcome(app, None) == (401, Reason.MISSING_TOKEN)


def test_cookie_used_when_header_absent(app: Flask, issuer: AccessIssuer) -> None:
    """Browsers send the token as the CF_Authorization cookie."""
    client = app.test_client()
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    assert client.get("/").status_code == 200


def test_bad_header_not_rescued_by_good_cookie(app: Flask, issuer: AccessIssuer) -> None:
    """The header is authoritative: a bad one fails even beside a good cookie."""
    client = app.test_client()
    client.set_cookie("CF_Authorization", issuer.user_token("ada@example.com"))
    with capture_access(app) as captured:
        assert client.get("/", headers=bearer("not-a-token")).status_code == 401
        assert client.get("/", headers=bearer("")).status_code == 401
    assert captured.reasons == [Reason.MALFORMED_TOKEN, Reason.MISSING_TOKEN]


def test_email_header_never_trusted(app: Flask) -> None:
    """Cf-Access-Authenticated-User-Email alone grants nothing."""
    headers = {"Cf-Access-Authenticated-User-Email": "ada@example.com"}
    with capture_access(app) as captured:
        assert app.test_client().get("/", headers=headers).status_code == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c.d",
        "a..c",
        "...",
        "eyJ.eyJ.sig!",
        "a b.c d.e f",
        "\u00e9t\u00e9.a.b",
        b64(b"{") + ".e30.c2ln",
        b64(b"[1, 2]") + ".e30.c2ln",
        b64(b'"RS256"') + ".e30.c2ln",
        b64(b"\xff\xfe") + ".e30.c2ln",
        "a" * 5 + "." + "b" * 5 + ".c",
    ],
)
def test_malformed_tokens_are_401(app: Flask, token: str) -> None:
    """Wrong segment counts, bad base64, non-JSON and non-object headers: 401."""
    assert outcome(app, token) == (401, Reason.MALFORMED_TOKEN)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'"a string"', b"null", b"\xff\xfe", b'{"exp": 1e400}'],
)
def test_signed_garbage_claims_are_401(app: Flask, issuer: AccessIssuer, payload: bytes) -> None:
    """A well-signed token whose payload is not a JSON object is refused."""
    if payload.startswith(b"{"):  # an object: the rest good, so only its exp is refused
        good = json.dumps({"iss": issuer.issuer, "aud": [issuer.audience]}).encode()
        payload = good[:-1] + b", " + payload[1:]
    header = b64(json.dumps({"alg": "RS256", "kid": issuer.signing_key.kid}).encode())
    signing_input = f"{header}.{b64(payload)}"
    signature = b64(issuer.signing_key.sign(signing_input.encode()))
    token = f"{signing_input}.{signature}"
    assert outcome(app, token) == (401, Reason.MALFORMED_CLAIMS)


def test_oversized_token_refused_before_parsing(
    app: Flask, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """A token beyond the length cap is refused without being parsed."""
    padding = "x" * MAX_TOKEN_LENGTH
    token = issuer.mint({"padding": padding})
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        assert outcome(app, token) == (401, Reason.TOKEN_TOO_LARGE)
    assert "token_too_large" in caplog.text


def test_large_but_legal_token_accepted(app: Flask, issuer: AccessIssuer) -> None:
    """Tokens with many claims, below the cap, pass."""
    groups = [f"group-{index}" for index in range(100)]
    token = issuer.user_token("ada@example.com", groups, groups_in_token=True)
    assert len(token) < MAX_TOKEN_LENGTH
    assert app.test_client().get("/", headers=bearer(token)).status_code == 200


def test_refusal_body_and_log_leak_nothing(
    app: Flask, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the response nor the log names the token, the audience or the reason."""
    token = issuer.mint({"aud": ["another-app"]})
    with caplog.at_level(logging.DEBUG, logger="flask_cf_access"):
        response = app.test_client().get("/", headers=bearer(token))
    body = response.get_data(as_text=True)
    assert response.status_code == 401
    for secret in (token, token.split(".")[2], issuer.audience, "another-app", "invalid_audience"):
        assert secret not in body
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text
    denials = [record for record in caplog.records if "refused" in record.getMessage()]
    assert len(denials) == 1
    assert "invalid_audience" in denials[0].getMessage()


def test_token_with_whitespace_around_it(app: Flask, issuer: AccessIssuer) -> None:
    """Surrounding whitespace in the header is tolerated."""
    token = issuer.user_token("ada@example.com")
    assert app.test_client().get("/", headers=bearer(f" {token} ")).status_code == 200


def test_header_tricks_with_valid_signature(app: Flask, issuer: AccessIssuer) -> None:
    """A signed token whose header alg is a list or missing is refused."""
    for header in (
        {"alg": ["RS256"], "kid": issuer.signing_key.kid},
        {"kid": issuer.signing_key.kid},
    ):
        token = encode_token(header, {"iss": issuer.issuer}, issuer.signing_key)
        assert outcome(app, token) == (401, Reason.BAD_ALGORITHM)


COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@settings(max_examples=500)
@given(
    st.one_of(
        st.text(alphabet="ab-_.+/= \né", max_size=12),
        st.lists(st.text(alphabet="aZ9-_+/=é", max_size=3), min_size=1, max_size=5).map(".".join),
    )
)
def test_shape_check_is_three_base64url_segments(token: str) -> None:
    """The shape check passes exactly three non-empty base64url segments joined by dots,
    and spells them in standard base64."""
    if COMPACT_JWS.fullmatch(token):
        signing_input = token.encode().rpartition(b".")[0]
        standard = token.encode().translate(bytes.maketrans(b"-_", b"+/"))
        assert check_token_shape(token) == (signing_input, *standard.split(b"."))
    else:
        with pytest.raises(AccessUnauthorized) as refusal:
            check_token_shape(token)
        assert refusal.value.reason == Reason.MALFORMED_TOKEN
