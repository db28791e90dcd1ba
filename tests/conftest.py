"""Shared fixtures: a frozen clock, a stand-in Access team, and an app trusting it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
from flask import Flask, g
from hypothesis import HealthCheck, settings

from flask_cf_access import (
    Background,
    CloudflareAccess,
    current_identity,
    get_claims,
    require_access,
    require_group,
)
from flask_cf_access.testing import AccessCapture, AccessIssuer, capture_access, run_inline

from .support import FrozenClock

# Property tests are judged by what they find, never by how fast a loaded
# machine runs them: no deadline, no "too slow" health check, for every test
# whose own @settings do not say otherwise.
settings.register_profile(
    "flask_cf_access", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("flask_cf_access")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: ``$CF_ACCESS_TEST_ARTIFACTS`` if set, else the test's tmp dir."""
    directory = Path(os.environ.get("CF_ACCESS_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock, shared by the issuer and the extension."""
    return FrozenClock()


@pytest.fixture
def issuer(clock: FrozenClock) -> AccessIssuer:
    """A stand-in Cloudflare Access team minting tokens on the frozen clock."""
    return AccessIssuer(clock=clock)


@pytest.fixture
def captured() -> Iterator[AccessCapture]:
    """Every access decision made while the test runs, by any app or middleware."""
    with capture_access() as captured:
        yield captured


@pytest.fixture
def mocked_team(issuer: AccessIssuer) -> Iterator[responses.RequestsMock]:
    """The team's certs and identity endpoints, mocked with ``responses``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:

        def certs(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            return 200, {"Content-Type": "application/json"}, json.dumps(issuer.certs())

        def identity(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            status, body = issuer.respond(
                "/cdn-cgi/access/get-identity", request.headers.get("Cookie")
            )
            return status, {"Content-Type": "application/json"}, json.dumps(body)

        mock.add_callback(responses.GET, issuer.certs_url, callback=certs)
        mock.add_callback(responses.GET, issuer.identity_url, callback=identity)
        yield mock


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> AppFactory:
    """Build an app trusting the stand-in team, with a few protected routes."""

    def factory(background: Background = run_inline, **config: Any) -> Flask:
        """The app with ``config`` (``CF_ACCESS_*`` keys); background work runs in
        the request that starts it unless ``background`` says otherwise."""
        app = Flask("protected")
        app.config.update(issuer.settings(**config))
        CloudflareAccess(app, clock=clock, background=background)

        @app.get("/")
        @require_access
        def home() -> dict[str, Any]:
            return {"email": current_identity.email, "name": current_identity.name}

        @app.get("/humans")
        @require_access(allow_service_tokens=False)
        def humans() -> dict[str, Any]:
            return {"email": current_identity.email}

        @app.get("/admin")
        @require_group("Admins")
        def admin() -> dict[str, Any]:
            return {"groups": sorted(group.name or "" for group in current_identity.groups)}

        @app.get("/claims")
        @require_access
        def claims() -> dict[str, Any]:
            return {"sub": get_claims()["sub"], "same": g.cf_access_claims is get_claims()}

        @app.get("/open")
        def open_view() -> str:
            return "open"

        return app

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """The protected app with default settings."""
    return make_app()


#: Hosts a test may send HTTP requests to: its own machine only.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any test whose HTTP goes out to a host other than this machine's own.

    Guards requests' own transport, which ``responses`` and the stand-in's
    in-process session replace; yields the hosts tried, for the tests of this
    guard, which empty it.
    """
    send = requests.adapters.HTTPAdapter.send
    tried: list[str] = []

    def loopback_only(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        host = urlsplit(request.url).hostname
        if host not in _LOOPBACK_HOSTS:
            tried.append(str(host))
            raise requests.ConnectionError(f"tests do not reach the network ({host})")
        return send(adapter, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", loopback_only)
    yield tried
    if tried:
        pytest.fail(f"the test tried to reach the network: {sorted(set(tried))}", pytrace=False)
