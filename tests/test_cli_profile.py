"""``flask cf-access mint`` with a profile, and ``verify`` showing it and its rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from flask_cf_access import Reason, require_context
from flask_cf_access.testing import AccessIssuer, StandInServer, identity_profile

from .support import outcome
from .test_cli import make_app, run


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A stand-in team over HTTP that also mints tokens for ``mint``."""
    with AccessIssuer().serve(minting=True) as server:
        yield server


@pytest.fixture
def app(stand_in: StandInServer) -> Flask:
    """An app trusting the stand-in, with a route needing a passed posture and MFA."""
    app = make_app(stand_in.settings())
    app.get("/keys")(require_context(posture=["disk"], mfa=True)(lambda: "keys"))
    return app


def test_mint_with_a_profile(app: Flask, stand_in: StandInServer) -> None:
    """mint's profile options reach get-identity: the posture-gated route admits or refuses."""
    minted = run(app, "mint", "--email", "ada@example.com", "--mfa", "--posture", "disk")
    assert minted.exit_code == 0, minted.output
    assert outcome(app, minted.stdout.strip(), "/keys") == (200, None)
    failing = run(
        app, "mint", "--email", "bob@example.com", "--mfa", "--failing-posture", "disk"
    ).stdout.strip()
    assert outcome(app, failing, "/keys") == (403, Reason.POSTURE_FAILED)
    no_mfa = run(app, "mint", "--email", "cy@example.com", "--posture", "disk").stdout.strip()
    assert outcome(app, no_mfa, "/keys") == (403, Reason.MFA_REQUIRED)


def test_mint_every_profile_option(app: Flask, stand_in: StandInServer) -> None:
    """Each option lands in the answer the stand-in gives get-identity."""
    result = run(
        app, "mint", "--email", "ada@example.com", "--amr", "hwk", "--idp", "okta",
        "--login-age", "120", "--country", "FR", "--warp", "--device-id", "dev-1",
        "--attribute", "department=R&D",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = stand_in.issuer.identity_for(result.stdout.strip())
    assert answer is not None
    assert answer["amr"] == ["hwk"]
    assert answer["idp"] == {"id": "stand-in-okta", "type": "okta"}
    assert answer["iat"] <= stand_in.issuer.clock() - 120
    assert answer["geo"] == {"country": "FR"}
    assert (answer["is_warp"], answer["device_id"]) == (True, "dev-1")
    assert answer["custom"] == {"department": "R&D"}


@pytest.mark.parametrize(
    "args",
    [
        ["--service-token", "ci.access", "--mfa"],
        ["--email", "ada@example.com", "--attribute", "no-equals"],
    ],
)
def test_mint_profile_usage_errors(app: Flask, args: list[str]) -> None:
    """A profile for a service token, or an attribute without a value, is a usage error."""
    result = run(app, "mint", *args)
    assert result.exit_code == 2


def test_verify_shows_the_profile_and_why_a_rule_refuses(
    app: Flask, stand_in: StandInServer
) -> None:
    """verify with profile rules prints the profile, each rule's verdict, and the refusal."""
    token = stand_in.issuer.user_token(
        "ada@example.com",
        profile=identity_profile(amr=["pwd"], posture={"disk": False}, country="FR"),
    )
    result = run(app, "verify", token, "--posture", "disk", "--country", "FR")
    assert result.exit_code == 1
    assert "Profile (from get-identity):" in result.output
    assert "amr: pwd; MFA: no" in result.output
    assert "posture disk (Stand-in rule disk): FAILED" in result.output
    assert "rule posture: all of disk: NOT met (posture_failed)" in result.output
    assert "rule country: any of FR: met" in result.output
    assert "REFUSED (posture_failed)" in result.output
    assert "answers 403" in result.output
    shown = run(app, "verify", token, "--profile")
    assert shown.exit_code == 0, shown.output
    assert "country: FR" in shown.output


def test_verify_service_token_with_a_profile_rule(app: Flask, stand_in: StandInServer) -> None:
    """A service token has no profile to show, and a profile rule refuses it."""
    result = run(app, "verify", stand_in.issuer.service_token("ci.access"), "--mfa")
    assert result.exit_code == 1
    assert "Profile" not in result.output
    assert "REFUSED (mfa_required)" in result.output
