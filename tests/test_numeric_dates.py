"""NumericDates outside any real time, in tokens the team signed: 401, never an overflow."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_cf_access import Reason
from flask_cf_access._core.claims import MAX_NUMERIC_DATE
from flask_cf_access.cli import cli
from flask_cf_access.testing import AccessIssuer

from .conftest import AppFactory
from .verdicts import verdict

OUT_OF_RANGE = [
    pytest.param(10**400, id="10**400"),
    pytest.param(-(10**400), id="-10**400"),
    pytest.param(1e300, id="1e300"),
    pytest.param(-1, id="-1"),
    pytest.param(MAX_NUMERIC_DATE, id="year-10000"),
    pytest.param(2**63, id="2**63"),
]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("max_age", [None, 3600])
@pytest.mark.parametrize("path", ["/", "/admin"])
def test_time_outside_any_real_time_is_401(
    make_app: AppFactory,
    issuer: AccessIssuer,
    name: str,
    value: Any,
    max_age: int | None,
    path: str,
) -> None:
    """exp, nbf or iat before 1970 or after 9999: malformed claims, on plain and group routes."""
    app = make_app(CF_ACCESS_MAX_TOKEN_AGE=max_age)
    token = issuer.user_token("ada@example.com", ["Admins"], **{name: value})
    assert verdict(app, token, path) == (401, Reason.MALFORMED_CLAIMS)


def test_times_at_the_range_edges_pass(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """exp just before year 10000, and nbf and iat of 0, are real times: the token passes."""
    app = make_app()
    token = issuer.user_token("ada@example.com", ["Admins"], exp=MAX_NUMERIC_DATE - 1, nbf=0, iat=0)
    assert verdict(app, token) == (200, None)
    assert verdict(app, token, "/admin") == (200, None)


def test_remembered_token_with_far_exp_is_not_kept(app: Flask, issuer: AccessIssuer) -> None:
    """A far exp is refused on every request, not only the first."""
    token = issuer.user_token("ada@example.com", exp=10**400)
    assert verdict(app, token) == (401, Reason.MALFORMED_CLAIMS)
    assert verdict(app, token) == (401, Reason.MALFORMED_CLAIMS)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
def test_cli_verify_explains_a_far_time(app: Flask, issuer: AccessIssuer, name: str) -> None:
    """flask cf-access verify shows a far time as not a time and refuses, without crashing."""
    far_time: dict[str, Any] = {name: 10**400}
    token = issuer.user_token("ada@example.com", **far_time)
    result = app.test_cli_runner().invoke(cli, ["verify", token])
    assert isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 1
    assert f"{name}  {10**400!r} (not a time)" in result.output
    assert "REFUSED (malformed_claims)" in result.output


def test_cli_verify_still_shows_real_times(app: Flask, issuer: AccessIssuer) -> None:
    """A good token's times are still shown as UTC dates."""
    result = app.test_cli_runner().invoke(cli, ["verify", issuer.user_token("ada@example.com")])
    assert result.exit_code == 0, result.output
    assert "iat  2027-01-15 08:00:00 UTC (now)" in result.output
