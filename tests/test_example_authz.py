"""The example app's roles and deny by default."""

from __future__ import annotations

import os

import pytest

from examples.protected_app import create_app
from flask_cf_access import Reason
from flask_cf_access.testing import AccessCapture, AccessClient, StandInServer


@pytest.fixture
def client(cf_access_server: StandInServer, monkeypatch: pytest.MonkeyPatch) -> AccessClient:
    """The example app trusting the stand-in over HTTP, no CF_ACCESS_* from the environment."""
    for name in [name for name in os.environ if name.startswith("CF_ACCESS_")]:
        monkeypatch.delenv(name)
    app = create_app(cf_access_server.settings())
    return AccessClient.for_app(app, cf_access_server.issuer)


def test_admin_role_from_the_group(client: AccessClient, captured: AccessCapture) -> None:
    """The admin area needs the admin role, which the Admins group grants."""
    assert client.get("/admin/", as_user="ada@example.com", groups=["Admins"]).status_code == 200
    response = client.get("/admin/", as_user="bob@example.com", groups=["Staff"])
    assert response.status_code == 403
    assert captured.reasons == [Reason.NO_ROLE]
    assert "no_role" not in response.get_data(as_text=True)


def test_undecorated_whoami_protected_by_default(
    client: AccessClient, captured: AccessCapture
) -> None:
    """/api/whoami has no decorator, yet needs a token: deny by default."""
    assert client.get("/api/whoami").status_code == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]


def test_health_marked_public(client: AccessClient, captured: AccessCapture) -> None:
    """/health is marked public and needs no token."""
    assert client.get("/health").status_code == 200
    assert captured.reasons == []


def test_guide_suggests_the_route_audit(cf_access_server: StandInServer) -> None:
    """The runner's guide shows how to audit the routes with --strict."""
    from examples.protected_app.__main__ import _stand_in_guide

    guide = _stand_in_guide("http://127.0.0.1:5000", cf_access_server)
    assert "  flask --app examples.protected_app cf-access routes --strict" in guide.splitlines()
