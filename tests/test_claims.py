"""The claims: issuer, audience, times with leeway, token type, maximum age."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_cf_access.testing import AccessIssuer

from .conftest import AppFactory
from .support import FrozenClock, bearer


def status(app: Flask, token: str) -> int:
    return app.test_client().get("/", headers=bearer(token)).status_code


def test_wrong_issuer_refused(app: Flask, issuer: AccessIssuer) -> None:
    """A token of another team, even signed by our key, is refused."""
    assert status(app, issuer.mint({"iss": "https://other.cloudflareaccess.com"})) == 401


def test_issuer_required(app: Flask, issuer: AccessIssuer) -> None:
    """A token without iss is refused."""
    assert status(app, issuer.mint({"iss": None})) == 401


@pytest.mark.parametrize(
    "aud", [["another-app"], "another-app", [], None, 5, [5], [["x"]], [{"x": 1}], {"x": 1}]
)
def test_wrong_or_missing_audience_refused(app: Flask, issuer: AccessIssuer, aud: Any) -> None:
    """A token for another application (or none) is refused."""
    assert status(app, issuer.mint({"aud": aud})) == 401


def test_audience_as_single_string_accepted(app: Flask, issuer: AccessIssuer) -> None:
    """aud may be a single string rather than a list."""
    assert status(app, issuer.mint({"aud": issuer.audience})) == 200


def test_any_configured_audience_accepted(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """With several configured AUD tags, a token holding any one of them passes."""
    app = make_app(CF_ACCESS_AUDIENCE=["first-app", issuer.audience])
    assert status(app, issuer.mint({"aud": ["unrelated", issuer.audience]})) == 200
    assert status(app, issuer.mint({"aud": ["first-app"]})) == 200
    assert status(app, issuer.mint({"aud": ["unrelated"]})) == 401


@pytest.mark.parametrize("exp", [None, "1800000600", True, float("nan"), [1]])
def test_exp_required_and_numeric(app: Flask, issuer: AccessIssuer, exp: Any) -> None:
    """exp must be present and a number."""
    assert status(app, issuer.mint({"exp": exp})) == 401


def test_expiry_with_leeway(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A token passes until exp plus the leeway, then is refused."""
    token = issuer.mint(lifetime=60)
    clock.advance(60 + 29)
    assert status(app, token) == 200
    clock.advance(2)
    assert status(app, token) == 401


def test_not_before_with_leeway(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A token not yet valid is refused beyond the leeway, accepted within it."""
    assert status(app, issuer.mint({"nbf": clock() + 29})) == 200
    assert status(app, issuer.mint({"nbf": clock() + 31})) == 401


def test_issued_in_the_future_refused(app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """An iat beyond the leeway in the future is refused."""
    assert status(app, issuer.mint({"iat": clock() + 120})) == 401


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_times_must_be_numbers(app: Flask, issuer: AccessIssuer, claim: str) -> None:
    """nbf and iat, when present, must be numbers."""
    assert status(app, issuer.mint({claim: "yesterday"})) == 401


def test_leeway_is_configurable(
    make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """CF_ACCESS_LEEWAY sets the tolerated skew."""
    app = make_app(CF_ACCESS_LEEWAY=0)
    token = issuer.mint(lifetime=60)
    clock.advance(61)
    assert status(app, token) == 401


def test_org_token_is_not_an_app_token(app: Flask, issuer: AccessIssuer) -> None:
    """The team-wide org token is refused; so is any type but app."""
    assert status(app, issuer.mint({"type": "org"})) == 401
    assert status(app, issuer.mint({"type": 1})) == 401


def test_type_may_be_absent(app: Flask, issuer: AccessIssuer) -> None:
    """type is checked when present, not required."""
    assert status(app, issuer.mint({"type": None})) == 200


@pytest.mark.parametrize(
    "claims",
    [{"email": ["a@example.com"]}, {"sub": 5}, {"common_name": {"x": 1}}, {"iss": ["x"]}],
)
def test_claims_of_the_wrong_type_refused(app: Flask, issuer: AccessIssuer, claims: Any) -> None:
    """Identity claims of the wrong JSON type are refused with 401, not a 500."""
    assert status(app, issuer.mint(claims)) == 401


def test_max_token_age(make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """CF_ACCESS_MAX_TOKEN_AGE refuses tokens issued too long ago, even unexpired."""
    app = make_app(CF_ACCESS_MAX_TOKEN_AGE=3600)
    token = issuer.mint(lifetime=86400)
    clock.advance(3600 + 30)
    assert status(app, token) == 200
    clock.advance(1)
    assert status(app, token) == 401


def test_max_token_age_needs_iat(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """With a maximum age, a token without iat cannot show its age: refused."""
    app = make_app(CF_ACCESS_MAX_TOKEN_AGE=3600)
    assert status(app, issuer.mint({"iat": None})) == 401
