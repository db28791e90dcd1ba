"""TokenVerifier.explain: every step of a verification, by the verifier's own checks."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_cf_access import AccessSettings, Reason
from flask_cf_access._core.assembly import build_checker
from flask_cf_access.testing import AccessIssuer, run_inline

from .support import FrozenClock, reason_of
from .test_token_cache import bad_tokens, make_gate, shared_issuer

#: The steps before the claims checks, in order.
TOKEN_STEPS = ["token shape", "header", "key", "signature", "claims"]
#: The claims checks, in the policy's documented order (without a maximum age).
CLAIMS_STEPS = ["claim types", "required claims", "iss", "aud", "exp", "nbf", "iat", "type"]


def test_good_token_passes_every_step(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A good token: every step, in order, passed, and the verified claims shown."""
    checker = make_gate(issuer, clock)
    explanation = checker.verifier.explain(issuer.user_token("ada@example.com"))
    assert [step.name for step in explanation.steps] == TOKEN_STEPS + CLAIMS_STEPS
    assert all(step.passed and step.status is None for step in explanation.steps)
    assert explanation.reason is None
    assert explanation.failed is None
    assert explanation.signature_verified
    assert explanation.claims is not None
    assert explanation.claims["email"] == "ada@example.com"
    assert explanation.header == {"alg": "RS256", "kid": issuer.signing_key.kid}


def test_max_age_is_a_step_only_when_configured(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """With CF_ACCESS_MAX_TOKEN_AGE, the maximum age is the last step, and can fail."""
    checker = make_gate(issuer, clock, CF_ACCESS_MAX_TOKEN_AGE=60)
    token = issuer.mint({"iat": clock() - 600})
    explanation = checker.verifier.explain(token)
    assert [step.name for step in explanation.steps] == [*TOKEN_STEPS, *CLAIMS_STEPS, "max age"]
    assert explanation.reason == Reason.TOKEN_TOO_OLD
    assert explanation.step("max age") == explanation.failed


def test_every_reason_is_the_one_verify_gives(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """For every way a token can be broken, explain names the reason verify refuses with."""
    for name, (token, expected) in bad_tokens(issuer).items():
        checker = make_gate(issuer, clock)
        explanation = checker.verifier.explain(token)
        assert explanation.reason == expected, name
        assert reason_of(partial(checker.verifier.verify, token)) == expected, name
        failed = explanation.failed
        assert failed is not None
        assert failed.status == 401, name


def test_claims_checks_all_judged(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """After a failed claims check the others are still judged; the first names the reason."""
    checker = make_gate(issuer, clock)
    token = issuer.mint({"iss": "https://other.example", "exp": clock() - 600, "type": "org"})
    explanation = checker.verifier.explain(token)
    verdicts = {step.name: step.reason for step in explanation.steps}
    assert verdicts["iss"] == Reason.INVALID_ISSUER
    assert verdicts["aud"] is None
    assert verdicts["exp"] == Reason.EXPIRED
    assert verdicts["type"] == Reason.NOT_AN_APP_TOKEN
    assert explanation.reason == Reason.INVALID_ISSUER
    assert explanation.signature_verified


def test_unverified_claims_are_shown_but_not_judged(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """A token of an unknown key stops at the key; its claims are there, marked unverified."""
    checker = make_gate(issuer, clock)
    stranger = AccessIssuer(team_domain=issuer.team_domain, clock=clock)
    explanation = checker.verifier.explain(stranger.user_token("mallory@example.com"))
    assert [step.name for step in explanation.steps] == ["token shape", "header", "key"]
    assert explanation.reason == Reason.UNKNOWN_KID
    assert not explanation.signature_verified
    assert explanation.claims is not None
    assert explanation.claims["email"] == "mallory@example.com"


def test_keys_unavailable_is_a_503_step(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """No keys to be had: the key step fails with 503, as verify would."""
    settings = AccessSettings.from_mapping(issuer.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    checker = build_checker(
        settings, session=requests.Session(), clock=clock, background=run_inline
    )
    with responses.RequestsMock() as mock:
        mock.get(issuer.certs_url, status=500)
        explanation = checker.verifier.explain(issuer.user_token("ada@example.com"))
    failed = explanation.failed
    assert failed is not None
    assert (failed.name, failed.reason, failed.status) == ("key", Reason.KEYS_UNAVAILABLE, 503)


def test_nothing_is_remembered(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Explaining a token remembers neither it nor its header, and a remembered one is
    explained from scratch."""
    checker = make_gate(issuer, clock)
    token = issuer.mint(lifetime=60)
    assert checker.verifier.explain(token).reason is None
    assert len(checker.verifier.cache) == 0
    assert checker.verifier._known_headers == {}
    checker.verifier.verify(token)
    clock.advance(120)
    assert checker.verifier.explain(token).reason == Reason.EXPIRED


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_explanation_holds_no_part_of_the_token(
    issuer: AccessIssuer, clock: FrozenClock, steps: int
) -> None:
    """Neither the signature nor any segment of the token is in the explanation."""
    checker = make_gate(issuer, clock)
    token = issuer.user_token("ada@example.com")
    if steps == 2:
        token = token[:-4] + "AAAA"  # a bad signature
    elif steps == 3:
        token = "." + token  # not even a shape
    shown = repr(checker.verifier.explain(token))
    for segment in token.split("."):
        if segment:
            assert segment not in shown


claim_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.text(max_size=8), max_size=2),
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "type", "sub", "jti", "email"]),
        claim_values,
        max_size=3,
    )
)
def test_explain_agrees_with_verify(changes: dict[str, Any]) -> None:
    """On any claims, the first failed step of explain is the reason verify gives."""
    issuer, clock = shared_issuer()
    clock.now = FrozenClock().now
    checker = make_gate(issuer, clock, CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    token = issuer.mint(changes)
    explanation = checker.verifier.explain(token)
    assert explanation.reason == reason_of(partial(checker.verifier.verify, token))
