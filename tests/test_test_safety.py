"""The testing kit and this suite never reach a real Cloudflare team by mistake."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck

from flask_cf_access import CloudflareAccess, Reason, require_access
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .support import bearer


def test_default_team_is_a_reserved_name() -> None:
    """AccessIssuer's default team, and so its URLs, are under .invalid, which never resolves."""
    issuer = AccessIssuer()
    assert issuer.team_domain.endswith(".invalid")
    for url in (issuer.issuer, issuer.certs_url, issuer.identity_url):
        assert str(urlsplit(url).hostname).endswith(".invalid")
    assert issuer.settings()["CF_ACCESS_TEAM_DOMAIN"] == issuer.team_domain


def test_pytest_fixture_team_is_a_reserved_name(cf_access_issuer: AccessIssuer) -> None:
    """The plugin's cf_access_issuer fixture is on a reserved name too."""
    assert cf_access_issuer.team_domain.endswith(".invalid")


def test_forgotten_transport_reaches_no_real_team(no_network: list[str]) -> None:
    """An app trusting the default stand-in without its transport gets 503, asking no real host."""
    issuer = AccessIssuer()
    app = Flask("forgetful")
    app.config.update(issuer.settings())
    CloudflareAccess(app, background=run_inline)

    @app.get("/")
    @require_access
    def home() -> str:
        return "ok"

    with capture_access(app) as captured:
        token = issuer.user_token("ada@example.com")
        assert app.test_client().get("/", headers=bearer(token)).status_code == 503
    assert captured.reasons == [Reason.KEYS_UNAVAILABLE]
    assert no_network, "the app did not try to fetch the keys"
    assert all(host.endswith(".invalid") for host in no_network), no_network
    no_network.clear()


def test_suite_refuses_http_to_real_hosts(no_network: list[str]) -> None:
    """The suite's guard stops any HTTP request to a host but this machine's own."""
    with requests.Session() as session, pytest.raises(requests.ConnectionError):
        session.get("https://example.com/", timeout=1)
    assert no_network == ["example.com"]
    no_network.clear()


def test_no_property_test_has_a_deadline() -> None:
    """Every hypothesis test of the suite runs without a deadline, so load cannot fail it."""
    property_tests = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("test_") and getattr(value, "is_hypothesis_test", False):
                property_tests.append(value)
                test_settings = value._hypothesis_internal_use_settings
                assert test_settings.deadline is None, f"{path.name}::{name}"
                assert HealthCheck.too_slow in test_settings.suppress_health_check, name
    assert len(property_tests) >= 8
