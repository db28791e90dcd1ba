"""Random and token-shaped input: the only answers are 401, or 200 for a valid token."""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer, encode_token

from .support import Outcome, outcome

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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
UNAUTHORIZED = frozenset(Reason) - {
    Reason.SERVICE_TOKEN_REFUSED,
    Reason.NOT_IN_GROUP,
    Reason.KEYS_UNAVAILABLE,
    Reason.IDENTITY_UNAVAILABLE,
    Reason.AMBIGUOUS_PATH,
}
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


@FUZZ
@given(segments=st.lists(st.binary(max_size=80), min_size=1, max_size=5))
def test_random_segments(app: Flask, segments: list[bytes]) -> None:
    """Dot-joined base64url segments of random bytes are refused with 401."""
    assert outcome(app, ".".join(b64(segment) for segment in segments)) in UNPARSED


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
