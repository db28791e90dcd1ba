"""The claims: issuer, audience, times with leeway, token type, maximum age."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer

from .conftest import AppFactory
from .support import FrozenClock, outcome


def test_wrong_issuer_refused(app: Flask, issuer: AccessIssuer) -> None:
    """A token of another team, even signed by our key, is refused."""
    assert outcome(app, issuer.mint({"iss": "https://other.cloudflareaccess.com"})) == (
        401,
        Reason.INVALID_ISSUER,
    )


def test_issuer_required(app: Flask, issuer: AccessIssuer) -> None:
    """A token without iss is refused."""
    assert outcome(app, issuer.mint({"iss": None})) == (401, Reason.MISSING_CLAIM)


@pytest.mark.parametrize(
    "aud", [["another-app"], "another-app", [], None, 5, [5], [["x"]], [{"x": 1}], {"x": 1}]
)
def test_wrong_or_missing_audience_refused(app: Flask, issuer: AccessIssuer, aud: Any) -> None:
    """A token for another application (or none) is refused."""
    reason = Reason.MISSING_CLAIM if aud is None else Reason.INVALID_AUDIENCE
    assert outcome(app, issuer.mint({"aud": aud})) == (401, reason)


def test_audience_as_single_string_accepted(app: Flask, issuer: AccessIssuer) -> None:
    """aud may be a single string rather than a list."""
    assert outcome(app, issuer.mint({"aud": issuer.audience})) == (200, None)


def test_any_configured_audience_accepted(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """With several configured AUD tags, a token holding any one of them passes."""
    app = make_app(CF_ACCESS_AUDIENCE=["first-app", issuer.audience])
    assert outcome(app, issuer.mint({"aud": ["unrelated", issuer.audience]})) == (200, None)
    assert outcome(app, issuer.mint({"aud": ["first-app"]})) == (200, None)
    assert outcome(app, issuer.mint({"aud": ["unrelated"]})) == (401, Reason.INVALID_AUDIENCE)


@pytest.mark.parametrize("exp", [None, "1800000600", True, float("nan"), [1]])
def test_exp_required_and_numeric(app: Flask, issuer: AccessIssuer, exp: Any) -> None:
    """exp must be present and a number."""
    reason = Reason.MISSING_CLAIM if exp is None else Reason.MALFORMED_CLAIMS
    assert outcome(app, issuer.mint({"exp": exp})) == (401, reason)


def test_expiry_with_leeway(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A token passes until exp plus the leeway, then is refused."""
    token = issuer.mint(lifetime=60)
    clock.advance(60 + 29)
    assert outcome(app, token) == (200, None)
    clock.advance(2)
    assert outcome(app, token) == (401, Reason.EXPIRED)


def test_not_before_with_leeway(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A token not yet valid is refused beyond the leeway, accepted within it."""
    assert outcome(app, issuer.mint({"nbf": clock() + 29})) == (200, None)
    assert outcome(app, issuer.mint({"nbf": clock() + 31})) == (401, Reason.NOT_YET_VALID)


def test_issued_in_the_future_refused(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """An iat beyond the leeway in the future is refused."""
    assert outcome(app, issuer.mint({"iat": clock() + 120})) == (401, Reason.ISSUED_IN_FUTURE)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_times_must_be_numbers(app: Flask, issuer: AccessIssuer, claim: str) -> None:
    """nbf and iat, when present, must be numbers."""
    # A time that is not a number cannot be shown to have come: refused as not yet valid.
    reason = Reason.NOT_YET_VALID if claim == "nbf" else Reason.ISSUED_IN_FUTURE
    assert outcome(app, issuer.mint({claim: "yesterday"})) == (401, reason)


def test_leeway_is_configurable(
    make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """CF_ACCESS_LEEWAY sets the tolerated skew."""
    app = make_app(CF_ACCESS_LEEWAY=0)
    token = issuer.mint(lifetime=60)
    clock.advance(61)
    assert outcome(app, token) == (401, Reason.EXPIRED)


def test_org_token_is_not_an_app_token(app: Flask, issuer: AccessIssuer) -> None:
    """The team-wide org token is refused; so is any type but app."""
    assert outcome(app, issuer.mint({"type": "org"})) == (401, Reason.NOT_AN_APP_TOKEN)
    assert outcome(app, issuer.mint({"type": 1})) == (401, Reason.MALFORMED_CLAIMS)


def test_type_may_be_absent(app: Flask, issuer: AccessIssuer) -> None:
    """type is checked when present, not required."""
    assert outcome(app, issuer.mint({"type": None})) == (200, None)


@pytest.mark.parametrize(
    "claims",
    [{"email": ["a@example.com"]}, {"sub": 5}, {"common_name": {"x": 1}}, {"iss": ["x"]}],
)
def test_claims_of_the_wrong_type_refused(app: Flask, issuer: AccessIssuer, claims: Any) -> None:
    """Identity claims of the wrong JSON type are refused with 401, not a 500."""
    reason = Reason.INVALID_ISSUER if "iss" in claims else Reason.MALFORMED_CLAIMS
    assert outcome(app, issuer.mint(claims)) == (401, reason)


def test_max_token_age(make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """CF_ACCESS_MAX_TOKEN_AGE refuses tokens issued too long ago, even unexpired."""
    app = make_app(CF_ACCESS_MAX_TOKEN_AGE=3600)
    token = issuer.mint(lifetime=86400)
    clock.advance(3600 + 30)
    assert outcome(app, token) == (200, None)
    clock.advance(1)
    assert outcome(app, token) == (401, Reason.TOKEN_TOO_OLD)


def test_max_token_age_needs_iat(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """With a maximum age, a token without iat cannot show its age: refused."""
    app = make_app(CF_ACCESS_MAX_TOKEN_AGE=3600)
    assert outcome(app, issuer.mint({"iat": None})) == (401, Reason.MISSING_CLAIM)
