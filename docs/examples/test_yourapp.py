"""Tests of yourapp with the testing kit: no Cloudflare account, no network."""

from __future__ import annotations

from flask_cf_access.testing import AccessClient, StandInServer

from yourapp import create_app


def test_home_needs_a_token(cf_access_server: StandInServer) -> None:
    """Without a token the page is refused; with one it greets the user."""
    app = create_app(cf_access_server.settings())
    client = AccessClient.for_app(app, cf_access_server.issuer)

    assert client.get("/").status_code == 401
    response = client.get("/", as_user="ada@example.com")
    assert response.text == "Hello, ada@example.com"


def test_admin_is_for_admins(cf_access_server: StandInServer) -> None:
    """The Admins group gets in, others get 403, an expired token 401."""
    app = create_app(cf_access_server.settings())
    issuer = cf_access_server.issuer
    client = AccessClient.for_app(app, issuer)

    ada = client.get("/admin", as_user="ada@example.com", groups=["Admins"])
    bob = client.get("/admin", as_user="bob@example.com", groups=["Staff"])
    robot = client.get("/admin", as_service_token="ci.access")
    assert ada.status_code == 200
    assert bob.status_code == 403
    assert robot.status_code == 403

    expired = issuer.user_token("ada@example.com", ["Admins"], expired=True)
    assert client.get("/admin", token=expired).status_code == 401

    # The keys were fetched once, when the app started.
    assert cf_access_server.calls["/cdn-cgi/access/certs"] == 1
