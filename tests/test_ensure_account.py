"""``AccessClient.ensure_account()`` gives an account the test can read, from the example's
real SQLite database, whether the loader created it or found it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect

from examples.provisioning_app import create_app
from examples.provisioning_app.models import User, db
from flask_cf_access.testing import AccessClient, StandInServer


@pytest.fixture
def app(
    cf_access_server: StandInServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """The provisioning example on a fresh SQLite file, trusting the stand-in."""
    for name in [name for name in os.environ if name.startswith("CF_ACCESS_")]:
        monkeypatch.delenv(name)
    app = create_app(
        {
            **cf_access_server.settings(),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'accounts.db'}",
        }
    )
    yield app
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def client(app: Flask, cf_access_server: StandInServer) -> AccessClient:
    return AccessClient.for_app(app, cf_access_server.issuer)


def read_everything(user: User) -> dict[str, object]:
    """Every column and relationship of ``user``, read as a test would."""
    return {
        "id": user.id,
        "sub": user.sub,
        "email": user.email,
        "name": user.name,
        "department": user.department,
        "created_at": user.created_at,
        "roles": sorted(user.role_names),
        "is_machine": user.is_machine,
    }


@pytest.mark.parametrize(
    "earlier",
    [[], [["Admins"]], [["Admins"], ["Admins"]], [["Staff"]], [["Staff"], ["Admins", "Staff"]]],
    ids=["created", "found", "found again", "updated", "updated again"],
)
def test_ensure_account_is_readable(client: AccessClient, earlier: list[list[str]]) -> None:
    """Every attribute of the account can be read after ensure_account returns, whether
    the loader created it, found it, or found it and updated it (committing each time)."""
    for groups in earlier:
        client.ensure_account(as_user="ada@example.com", groups=groups)
    user = client.ensure_account(as_user="ada@example.com", groups=["Admins"])
    seen = read_everything(user)
    assert seen["email"] == "ada@example.com"
    assert seen["roles"] == ["admin"]
    assert seen["is_machine"] is False
    assert isinstance(seen["id"], int)
    assert inspect(user).detached  # no session of the test's is holding it open


def test_ensure_account_inside_an_app_context(client: AccessClient, app: Flask) -> None:
    """Inside the test's own app context the account is just as readable, and still
    attached to that context's session."""
    with app.app_context():
        user = client.ensure_account(as_user="ada@example.com", groups=["Admins"])
        assert read_everything(user)["roles"] == ["admin"]
        assert user in db.session


def test_ensure_account_for_a_machine(client: AccessClient) -> None:
    """A service token's account too."""
    machine = client.ensure_account(as_service_token="ci.access")
    assert read_everything(machine)["roles"] == ["deployer"]
    assert machine.is_machine
