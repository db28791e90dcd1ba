"""Real tokens signed by Cloudflare Access verify, with the clock frozen in their lifetime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask

from flask_cf_access import CloudflareAccess, Reason, get_claims, require_access
from flask_cf_access.testing import run_inline

from .support import FrozenClock, bearer, outcome

FIXTURES = Path(__file__).parent / "fixtures" / "cloudflare-genuine"
GENUINE = json.loads((FIXTURES / "index.json").read_text())


def genuine_app(case: dict[str, Any], clock: FrozenClock) -> Flask:
    app = Flask("genuine")
    app.config.update(
        CF_ACCESS_TEAM_DOMAIN=case["issuer"],
        CF_ACCESS_AUDIENCE=case["audience"],
        CF_ACCESS_LOAD_KEYS_ON_INIT=False,
    )
    CloudflareAccess(app, clock=clock, background=run_inline)

    @app.get("/")
    @require_access
    def home() -> dict[str, Any]:
        return dict(get_claims())

    return app


@pytest.fixture(params=GENUINE, ids=[case["name"] for case in GENUINE])
def case(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """One genuine token with the certs its team published, served by responses."""
    certs = json.loads((FIXTURES / request.param["certs"]).read_text())
    with responses.RequestsMock() as mock:
        mock.get(f"{request.param['issuer']}/cdn-cgi/access/certs", json=certs)
        yield request.param


def test_genuine_token_verifies(case: dict[str, Any]) -> None:
    """Each genuine token passes at its valid_at, with its claims on g."""
    clock = FrozenClock(case["valid_at"])
    response = genuine_app(case, clock).test_client().get("/", headers=bearer(case["token"]))
    assert response.status_code == 200
    claims = response.json
    assert claims is not None
    assert claims["iss"] == case["issuer"]
    assert case["audience"] in claims["aud"]
    assert claims["type"] == "app"


def test_genuine_token_refused_after_expiry(case: dict[str, Any]) -> None:
    """Past exp plus the leeway, the same genuine token is refused."""
    clock = FrozenClock(case["valid_at"])
    app = genuine_app(case, clock)
    client = app.test_client()
    assert client.get("/", headers=bearer(case["token"])).status_code == 200
    exp = json.loads(client.get("/", headers=bearer(case["token"])).data)["exp"]
    clock.now = exp + 30 + 1
    assert outcome(app, case["token"]) == (401, Reason.EXPIRED)


def test_genuine_token_refused_for_another_audience(case: dict[str, Any]) -> None:
    """A genuine token is refused by an app configured with another AUD tag."""
    app = Flask("other")
    app.config.update(
        CF_ACCESS_TEAM_DOMAIN=case["issuer"],
        CF_ACCESS_AUDIENCE="0" * 64,
        CF_ACCESS_LOAD_KEYS_ON_INIT=False,
    )
    CloudflareAccess(app, clock=FrozenClock(case["valid_at"]), background=run_inline)

    @app.get("/")
    @require_access
    def home() -> str:
        return "no"

    assert outcome(app, case["token"]) == (401, Reason.INVALID_AUDIENCE)


def test_genuine_token_cookie(case: dict[str, Any]) -> None:
    """The genuine token also passes as the CF_Authorization cookie."""
    client = genuine_app(case, FrozenClock(case["valid_at"])).test_client()
    client.set_cookie("CF_Authorization", case["token"])
    assert client.get("/").status_code == 200
