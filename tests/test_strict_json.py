"""Header, payload, certs and identities must be UTF-8 JSON: no BOM, no UTF-16/32, no NaN."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import Reason
from flask_cf_access._core.json_input import MAX_JSON_DEPTH, JSONInputError, parse_json
from flask_cf_access.testing import AccessIssuer

from .support import FrozenClock
from .verdicts import hostile_team, protected_app, signed_token, usual_header, verdict

#: Every way ``json.loads`` on bytes would read a text that is not UTF-8.
NOT_UTF8 = {
    "utf-8 with BOM": lambda text: b"\xef\xbb\xbf" + text.encode(),
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-16-le": lambda text: text.encode("utf-16-le"),
    "utf-16-be": lambda text: text.encode("utf-16-be"),
    "utf-32": lambda text: text.encode("utf-32"),
    "utf-32-be": lambda text: text.encode("utf-32-be"),
}


def usual_claims(issuer: AccessIssuer, clock: FrozenClock, **extra: Any) -> str:
    claims = {
        "aud": [issuer.audience],
        "email": "ada@example.com",
        "sub": "ada",
        "iss": issuer.issuer,
        "iat": int(clock()),
        "exp": int(clock()) + 3600,
        **extra,
    }
    return json.dumps(claims)


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8)
def test_header_not_in_utf8_is_401(
    app: Flask, issuer: AccessIssuer, clock: FrozenClock, encode: Any
) -> None:
    """A team-signed token whose header is not UTF-8 JSON is malformed."""
    header = encode(usual_header(issuer).decode())
    token = signed_token(header, usual_claims(issuer, clock).encode(), issuer.signing_key)
    assert verdict(app, token) == (401, Reason.MALFORMED_TOKEN)


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8)
def test_payload_not_in_utf8_is_401(
    app: Flask, issuer: AccessIssuer, clock: FrozenClock, encode: Any
) -> None:
    """A team-signed token whose payload is not UTF-8 JSON has malformed claims."""
    payload = encode(usual_claims(issuer, clock))
    token = signed_token(usual_header(issuer), payload, issuer.signing_key)
    assert verdict(app, token) == (401, Reason.MALFORMED_CLAIMS)


@pytest.mark.parametrize(
    "claim",
    [b'"name":"\xed\xa0\x80"', b'"score":NaN', b'"score":Infinity', b'"score":-Infinity'],
    ids=["encoded surrogate", "NaN", "Infinity", "-Infinity"],
)
def test_payload_outside_json_is_401(
    app: Flask, issuer: AccessIssuer, clock: FrozenClock, claim: bytes
) -> None:
    """An encoded surrogate (not UTF-8) or NaN and Infinity (not JSON) in the payload: 401."""
    payload = usual_claims(issuer, clock).encode()[:-1] + b"," + claim + b"}"
    token = signed_token(usual_header(issuer), payload, issuer.signing_key)
    assert verdict(app, token) == (401, Reason.MALFORMED_CLAIMS)


def test_usual_utf8_payload_passes(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Plain UTF-8, with non-ASCII text and whitespace around it, still passes."""
    payload = b" " + usual_claims(issuer, clock, name="Ad\u00e1 \U0001f600").encode() + b"\n"
    token = signed_token(usual_header(issuer), payload, issuer.signing_key)
    assert verdict(app, token) == (200, None)


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8)
def test_certs_not_in_utf8_fail_the_fetch(
    issuer: AccessIssuer, clock: FrozenClock, encode: Any
) -> None:
    """A certs document that is not UTF-8: no keys, 503."""
    with hostile_team(issuer, certs=lambda team: encode(json.dumps(team.certs()))):
        app = protected_app(issuer, clock)
        assert verdict(app, issuer.user_token("ada@example.com")) == (503, Reason.KEYS_UNAVAILABLE)


@pytest.mark.parametrize("encode", NOT_UTF8.values(), ids=NOT_UTF8)
def test_identity_not_in_utf8_is_503(issuer: AccessIssuer, clock: FrozenClock, encode: Any) -> None:
    """A get-identity answer that is not UTF-8: the group-gated route answers 503."""
    answer = json.dumps({"email": "ada@example.com", "groups": ["Admins"]})
    with hostile_team(issuer, identity=lambda _team: encode(answer)):
        app = protected_app(issuer, clock)
        token = issuer.user_token("ada@example.com", ["Admins"])
        assert verdict(app, token, "/admin") == (503, Reason.IDENTITY_UNAVAILABLE)


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
).map(lambda value: json.dumps(value, ensure_ascii=False))


def refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


@given(
    st.one_of(
        json_texts.map(str.encode),
        st.sampled_from([b"NaN", b"[Infinity]", b'{"a":-Infinity}', b"\xef\xbb\xbf{}"]),
        json_texts.map(lambda text: f" {text}\n".encode()),
        st.binary(max_size=40),
        st.binary(max_size=40).map(lambda data: b"{" + data),
    )
)
def test_parser_reads_utf8_json_as_json_loads_does(data: bytes) -> None:
    """On UTF-8 JSON within the depth limit the parser agrees with json.loads; else it refuses."""
    try:
        expected = json.loads(data.decode("utf-8"), parse_constant=refuse_constant)
    except ValueError:
        with pytest.raises(JSONInputError):
            parse_json(data)
        return
    assert parse_json(data) == expected


@pytest.mark.parametrize("depth", [1, MAX_JSON_DEPTH])
def test_parser_takes_nesting_up_to_the_limit(depth: int) -> None:
    """Arrays and objects nested up to the limit are read."""
    assert parse_json(b"[" * depth + b"]" * depth) is not None
    assert parse_json(b'{"a":' * depth + b"0" + b"}" * depth) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b'{"a":' * (MAX_JSON_DEPTH + 1) + b"0" + b"}" * (MAX_JSON_DEPTH + 1),
        b"[" * 100_000 + b"]" * 100_000,
        b"[" * 100_000,
    ],
    ids=["arrays", "objects", "too deep to parse", "unclosed"],
)
def test_parser_refuses_nesting_beyond_the_limit(data: bytes) -> None:
    """One level past the limit, or far past what the parser itself can take: refused."""
    with pytest.raises(JSONInputError):
        parse_json(data)
