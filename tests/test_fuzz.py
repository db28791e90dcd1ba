"""Random and token-shaped input, hostile JSON anywhere: 200, 401, 403 or 503, never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_cf_access import Reason, require_context
from flask_cf_access._core.fetch import MAX_RESPONSE_BYTES
from flask_cf_access._core.json_input import parse_json
from flask_cf_access.cli import cli
from flask_cf_access.testing import AccessIssuer, encode_token, identity_profile

from .conftest import AppFactory
from .support import START, FrozenClock, Outcome, outcome
from .test_profile import FIELDS as PROFILE_FIELDS
from .verdicts import (
    hostile_team,
    nested_arrays,
    nested_objects,
    protected_app,
    signed_token,
    usual_header,
)

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
claim_names = st.sampled_from(
    ["iss", "aud", "exp", "nbf", "iat", "type", "email", "sub", "common_name", "groups", "custom"]
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


#: What a client's token can be refused for with 401.
UNAUTHORIZED = frozenset(reason for reason in Reason if reason.status == 401)
#: What a token that does not even parse can be refused for.
UNPARSED = {(401, Reason.MISSING_TOKEN), (401, Reason.MALFORMED_TOKEN)}


def passed_or_unauthorized(result: Outcome) -> bool:
    """200 with no reason, or 401 for one of the 401 reasons."""
    return result == (200, None) or (result.status == 401 and result.reason in UNAUTHORIZED)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_strings(app: Flask, text: str) -> None:
    """Any string in the header is refused with 401."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        text = text.encode("utf-8").decode("latin-1")
    text = text.replace("\r", "").replace("\n", "")
    assert outcome(app, text) in UNPARSED


def is_json_object(data: bytes) -> bool:
    """Whether ``data`` is the JSON text of an object, as the package reads JSON."""
    try:
        return isinstance(parse_json(data), dict)
    except ValueError:
        return False


@FUZZ
@example(segments=[b"{}", b"\x00", b"\x00"])  # a header that is an object, without alg
@given(segments=st.lists(st.binary(max_size=80), min_size=1, max_size=5))
def test_random_segments(app: Flask, segments: list[bytes]) -> None:
    """Dot-joined base64url segments of random bytes are refused with 401: as malformed,
    or, when they have a token's shape and the first is a JSON object, for its alg."""
    token = ".".join(b64(segment) for segment in segments)
    if len(segments) == 3 and all(segments) and is_json_object(segments[0]):
        assert outcome(app, token) == (401, Reason.BAD_ALGORITHM)
    else:
        assert outcome(app, token) in UNPARSED


@FUZZ
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "jku", "x5c"]), json_values
    ),
    claims=st.dictionaries(claim_names, json_values),
    signed=st.booleans(),
    real_kid=st.booleans(),
)
def test_token_shaped_input(
    app: Flask,
    issuer: AccessIssuer,
    header: dict[str, Any],
    claims: dict[str, Any],
    signed: bool,
    real_kid: bool,
) -> None:
    """Random headers and claims, signed by the team's key or not: 401, never a 500."""
    if real_kid:
        header = {**header, "alg": "RS256", "kid": issuer.signing_key.kid}
    if signed:
        token = encode_token(header, claims, issuer.signing_key)
    else:
        token = ".".join(b64(json.dumps(part).encode()) for part in (header, claims)) + ".c2ln"
    assert passed_or_unauthorized(outcome(app, token))
    admin = outcome(app, token, "/admin")
    assert passed_or_unauthorized(admin) or admin in {
        (403, Reason.NOT_IN_GROUP),
        (503, Reason.IDENTITY_UNAVAILABLE),
    }


@FUZZ
@given(overrides=st.dictionaries(claim_names, json_values, max_size=3))
def test_valid_token_with_random_claims(
    app: Flask, issuer: AccessIssuer, overrides: dict[str, Any]
) -> None:
    """A genuinely signed token with random claim values: 200 or 401, nothing else."""
    token = issuer.mint(overrides)
    result = outcome(app, token)
    assert passed_or_unauthorized(result)
    if not overrides:
        assert result == (200, None)
    assert outcome(app, token, "/admin").status != 500


def hostile_json() -> st.SearchStrategy[bytes]:
    """JSON texts built to hurt a parser: nested, unclosed, oversized, in another encoding."""
    depth = st.integers(1, 3000)
    return st.one_of(
        depth.map(nested_arrays),
        st.integers(1, 2000).map(nested_objects),
        depth.map(lambda n: b"[" * n),
        st.integers(1, 20_000).map(lambda n: b'{"pad":"' + b"x" * n + b'"}'),
        json_values.map(lambda value: json.dumps(value).encode()),
        json_values.map(lambda value: json.dumps(value).encode("utf-16")),
        st.binary(max_size=40),
    )


def with_member(document: dict[str, Any], name: str, hostile: bytes) -> bytes:
    """``document`` as JSON text with ``hostile`` as the text of its member ``name``."""
    text = json.dumps({**document, name: 0}).encode()
    marker = f'"{name}": 0'.encode()
    return text.replace(marker, f'"{name}": '.encode() + hostile)


#: A certs answer past the size cap (built once: a megabyte per example is slow to draw).
OVERSIZED = b'{"keys":[],"pad":"' + b"x" * (MAX_RESPONSE_BYTES + 1) + b'"}'


@st.composite
def hostile_answers(draw: st.DrawFn, kind: str) -> Callable[[AccessIssuer], bytes] | None:
    """A certs or get-identity answer: the team's own (``None``), or a hostile one."""
    choice = draw(st.sampled_from(["own", "own", "hostile", "member", "oversized"]))
    if choice == "own":
        return None
    if choice == "oversized":
        return lambda _issuer: OVERSIZED
    hostile = draw(hostile_json())
    if choice == "hostile":
        return lambda _issuer: hostile
    if kind == "certs":
        return lambda issuer: with_member(issuer.certs(), "extra", hostile)
    identity = {"email": "ada@example.com", "groups": ["Admins"]}
    member = draw(st.sampled_from(["groups", "extra", "devicePosture", "amr", "iat"]))
    return lambda _issuer: with_member(identity, member, hostile)


@st.composite
def hostile_tokens(draw: st.DrawFn, issuer: AccessIssuer) -> str:
    """A genuine token, or one whose header or payload (signed or not) is hostile JSON."""
    choice = draw(st.sampled_from(["genuine", "header", "payload", "claim"]))
    if choice == "genuine":
        return issuer.user_token("ada@example.com", ["Admins"])
    header = usual_header(issuer)
    payload = json.dumps({"iss": issuer.issuer, "aud": [issuer.audience]}).encode()
    hostile = draw(hostile_json())
    if choice == "header":
        header = hostile
    elif choice == "payload":
        payload = hostile
    else:
        claims = json.loads(decode_claims_segment(issuer.user_token("ada@example.com")))
        payload = with_member(claims, draw(claim_names), hostile)
    if draw(st.booleans()):
        return signed_token(header, payload, issuer.signing_key)
    return f"{b64(header)}.{b64(payload)}.c2ln"


def decode_claims_segment(token: str) -> bytes:
    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_json_anywhere(
    issuer: AccessIssuer, clock: FrozenClock, data: st.DataObject
) -> None:
    """Hostile JSON in header, payload, certs or identity: only 200, 401, 403 or 503."""
    certs = data.draw(hostile_answers("certs"), label="certs")
    identity = data.draw(hostile_answers("identity"), label="identity")
    token = data.draw(hostile_tokens(issuer), label="token")
    with hostile_team(issuer, certs=certs, identity=identity):
        app = protected_app(issuer, clock)
        for path in ("/", "/admin"):
            result = outcome(app, token, path)
            assert passed_or_unauthorized(result) or result in {
                (403, Reason.NOT_IN_GROUP),
                (503, Reason.KEYS_UNAVAILABLE),
                (503, Reason.IDENTITY_UNAVAILABLE),
            }
        # "--" ends the options: a drawn token may start with "-".
        cli_result = app.test_cli_runner().invoke(cli, ["verify", "--group", "Admins", "--", token])
        assert isinstance(cli_result.exception, (SystemExit, type(None))), cli_result.output
        assert cli_result.exit_code in {0, 1}


#: Profiles in Access's own shapes.
wellformed_profiles = st.builds(
    identity_profile,
    amr=st.none() | st.lists(st.sampled_from(["pwd", "otp", "hwk", "mfa", "fpt"]), max_size=3),
    posture=st.none() | st.dictionaries(st.sampled_from(["disk", "firewall"]), st.booleans()),
    login_at=st.none() | st.floats(START - 7200, START + 60),
    country=st.none() | st.sampled_from(["FR", "us", "DE"]),
    warp=st.none() | st.booleans(),
    client_certificate=st.none() | st.booleans(),
)
#: What a rule on the profile may refuse with.
PROFILE_REFUSALS = {
    (403, Reason.MFA_REQUIRED),
    (403, Reason.POSTURE_FAILED),
    (403, Reason.LOGIN_TOO_OLD),
    (403, Reason.COUNTRY_NOT_ALLOWED),
    (403, Reason.WARP_REQUIRED),
    (403, Reason.CLIENT_CERTIFICATE_REQUIRED),
    (503, Reason.MALFORMED_PROFILE),
    (503, Reason.IDENTITY_UNAVAILABLE),
}


@FUZZ
@given(
    fields=wellformed_profiles
    | st.dictionaries(PROFILE_FIELDS, json_values, max_size=3)
    | st.builds(lambda good, bad: {**good, **bad}, wellformed_profiles,
                st.dictionaries(PROFILE_FIELDS, json_values, max_size=2))
)  # fmt: skip
def test_random_profiles(
    make_app: AppFactory, issuer: AccessIssuer, fields: dict[str, Any]
) -> None:
    """Whatever profile get-identity answers, a rule on it gives 200, its own 403, or 503."""
    app = make_app()
    rules: dict[str, Any] = {
        "mfa": True,
        "posture": ["disk"],
        "max_login_age": 3600,
        "country": ["FR"],
        "warp": True,
        "client_certificate": True,
    }
    for name, value in rules.items():
        app.get(f"/{name}", endpoint=name)(require_context(**{name: value})(lambda: "ok"))
    token = issuer.user_token("ada@example.com", ["Admins"], profile=fields)
    for name in rules:
        result = outcome(app, token, f"/{name}")
        assert result == (200, None) or result in PROFILE_REFUSALS
    assert outcome(app, token, "/admin") in {(200, None), (503, Reason.IDENTITY_UNAVAILABLE)}
