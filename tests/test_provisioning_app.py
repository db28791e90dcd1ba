"""The provisioning example: accounts created on first visit, kept in step, in SQLite.

The app trusts the stand-in team over real HTTP; the concurrency test serves
the app itself from a threaded HTTP server too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from examples.provisioning_app import create_app
from examples.provisioning_app import with_flask_login as login_flavour
from examples.provisioning_app.models import Role, User, db
from flask_cf_access import Reason
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    StandInServer,
    UserLoad,
    capture_access,
    capture_user_loads,
)

from .support import served


@pytest.fixture(autouse=True)
def no_access_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example reads CF_ACCESS_* from the environment: start from none."""
    for name in list(os.environ):
        if name.startswith("CF_ACCESS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config(cf_access_server: StandInServer, tmp_path: Path) -> dict[str, Any]:
    """Settings trusting the stand-in over HTTP, with a fresh SQLite file."""
    return {
        **cf_access_server.settings(),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'accounts.db'}",
    }


def closing_databases(app: Flask) -> Iterator[Flask]:
    """``app``, then its pooled SQLite connections closed (Python 3.13 warns of open ones)."""
    yield app
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    """The example app."""
    yield from closing_databases(create_app(config))


@pytest.fixture
def issuer(cf_access_server: StandInServer) -> AccessIssuer:
    """The stand-in team the app trusts."""
    return cf_access_server.issuer


@pytest.fixture
def client(app: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, issuer)


def accounts(app: Flask) -> list[dict[str, Any]]:
    """Every row of the users table, as plain data."""
    with app.app_context():
        users = db.session.execute(select(User).order_by(User.id)).scalars().all()
        return [
            {
                "sub": user.sub,
                "service_token": user.service_token,
                "email": user.email,
                "name": user.name,
                "department": user.department,
                "roles": sorted(user.role_names),
            }
            for user in users
        ]


def sub_of(issuer: AccessIssuer, email: str) -> str:
    """The sub the stand-in gives ``email``."""
    from flask_cf_access.testing import decode_unverified_claims

    return str(decode_unverified_claims(issuer.user_token(email))["sub"])


def test_first_visit_creates_the_account_from_the_identity(
    client: AccessClient, issuer: AccessIssuer, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A first request makes the row from e-mail, sub, name claims, custom attributes, groups."""
    token = issuer.user_token(
        "ada@example.com",
        ["Admins", "Staff", "Chess club"],
        custom={"given_name": "Ada", "family_name": "Lovelace", "department": "Analytics"},
    )
    with (
        capture_user_loads(app) as loads,
        caplog.at_level(logging.INFO, logger="examples.provisioning_app"),
    ):
        response = client.get("/api/me", token=token)
    assert response.status_code == 200
    assert accounts(app) == [
        {
            "sub": sub_of(issuer, "ada@example.com"),
            "service_token": None,
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "department": "Analytics",
            "roles": ["admin", "staff"],
        }
    ]
    assert response.json is not None
    assert response.json["roles"] == ["admin", "staff"]
    assert [(load.identity.email, load.created) for load in loads] == [("ada@example.com", True)]
    assert [record.getMessage() for record in caplog.records] == [
        f"New account {response.json['id']} for ada@example.com"
    ]


def test_later_visits_find_the_account(client: AccessClient, app: Flask) -> None:
    """A user who already has an account is loaded, not created again."""
    client.ensure_account(as_user="ada@example.com", groups=["Staff"])
    with capture_user_loads(app) as loads:
        for _ in range(3):
            assert client.get("/", as_user="ada@example.com", groups=["Staff"]).status_code == 200
    assert [load.created for load in loads] == [False, False, False]
    assert len(accounts(app)) == 1


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        ({"name": "Ada King"}, "Ada King"),
        ({"custom": {"name": "Countess of Lovelace"}}, "Countess of Lovelace"),
        ({"given_name": "Ada", "family_name": "Byron"}, "Ada Byron"),
        ({"custom": {"given_name": "Ada"}}, "ada"),
        ({"name": "   ", "custom": {"name": 42}}, "ada"),
    ],
)
def test_name_from_claims(
    client: AccessClient, issuer: AccessIssuer, app: Flask, claims: dict[str, Any], name: str
) -> None:
    """The name comes from the name claims, top level then custom, else the e-mail."""
    custom = claims.pop("custom", None)
    client.get("/", token=issuer.user_token("ada@example.com", custom=custom, **claims))
    assert [account["name"] for account in accounts(app)] == [name]


def test_email_change_for_the_same_sub_updates_the_row(
    client: AccessClient, issuer: AccessIssuer, app: Flask
) -> None:
    """A new e-mail with the same sub updates the account; no second row."""
    sub = sub_of(issuer, "ada@example.com")
    client.get("/", as_user="ada@example.com")
    with capture_user_loads(app) as loads:
        response = client.get("/api/me", token=issuer.user_token("ada.king@example.com", sub=sub))
    assert response.json is not None
    assert response.json["email"] == "ada.king@example.com"
    assert [(account["sub"], account["email"]) for account in accounts(app)] == [
        (sub, "ada.king@example.com")
    ]
    assert [load.created for load in loads] == [False]


def test_same_email_with_another_sub_is_another_account(
    client: AccessClient, issuer: AccessIssuer, app: Flask
) -> None:
    """The sub is the key: an e-mail given to another person is not their predecessor's account."""
    client.get("/", as_user="ada@example.com")
    client.get("/", token=issuer.user_token("ada@example.com", sub="another-person"))
    assert [account["sub"] for account in accounts(app)] == [
        sub_of(issuer, "ada@example.com"),
        "another-person",
    ]


def test_groups_sync_to_roles_both_ways(
    client: AccessClient, app: Flask, captured: AccessCapture
) -> None:
    """Joining a group grants its role, leaving it takes the role away; the app's own roles stay."""
    client.get("/", as_user="ada@example.com", groups=["Staff"])
    assert accounts(app)[0]["roles"] == ["staff"]
    assert client.get("/admin/", as_user="ada@example.com", groups=["Staff"]).status_code == 403
    assert captured.last.granted  # the app's own 403: roles are the app's

    with app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        user.roles.append(Role(name="editor"))  # granted in the app, by hand
        db.session.commit()

    response = client.get("/admin/", as_user="ada@example.com", groups=["Staff", "Admins"])
    assert response.status_code == 200
    assert accounts(app)[0]["roles"] == ["admin", "editor", "staff"]

    assert client.get("/admin/", as_user="ada@example.com", groups=["Admins"]).status_code == 200
    assert accounts(app)[0]["roles"] == ["admin", "editor"]

    assert client.get("/admin/", as_user="ada@example.com", groups=[]).status_code == 403
    assert captured.last.granted  # the app's own 403
    assert accounts(app)[0]["roles"] == ["editor"]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Role)).scalar_one() == 1


def test_known_service_token_is_a_machine_principal(
    client: AccessClient, app: Flask, captured: AccessCapture
) -> None:
    """A listed service token gets a machine account with its roles, created once."""
    with capture_user_loads(app) as loads:
        first = client.get("/api/me", as_service_token="ci.access")
        second = client.get("/api/me", as_service_token="ci.access")
    assert first.status_code == second.status_code == 200
    assert second.json is not None
    assert second.json["service_token"] == "ci.access"
    assert second.json["roles"] == ["deployer"]
    assert [load.created for load in loads] == [True, False]
    assert [account["service_token"] for account in accounts(app)] == ["ci.access"]
    assert client.get("/", as_service_token="ci.access").status_code == 403
    assert captured.last.reason is Reason.SERVICE_TOKEN_REFUSED


def test_unknown_service_token_is_refused(client: AccessClient, app: Flask) -> None:
    """A service token the loader does not list gets 403 NO_ACCOUNT and no row."""
    with capture_access(app) as captured:
        assert client.get("/api/me", as_service_token="stranger.access").status_code == 403
    assert captured.reasons == [Reason.NO_ACCOUNT]
    assert accounts(app) == []


def test_welcome_page_greets_whoever_comes(
    client: AccessClient, issuer: AccessIssuer, app: Flask
) -> None:
    """The optional page: a stranger, a user by name, an identity with no account, a bad token."""
    assert client.get("/welcome").get_data(as_text=True) == "Welcome, stranger."
    greeting = client.get("/welcome", token=issuer.user_token("ada@example.com", name="Ada"))
    assert greeting.get_data(as_text=True) == "Welcome back, Ada."
    no_account = client.get("/welcome", as_service_token="stranger.access")
    assert no_account.get_data(as_text=True) == (
        "Welcome! You are signed in, but have no account here."
    )
    expired = issuer.user_token("ada@example.com", expired=True)
    assert client.get("/welcome", token=expired).status_code == 401
    assert client.get("/health").json == {"status": "ok"}


def test_ensure_account_without_an_account_says_so(client: AccessClient) -> None:
    """ensure_account() for an identity the loader refuses raises LookupError."""
    with pytest.raises(LookupError, match=r"stranger\.access"):
        client.ensure_account(as_service_token="stranger.access")


@pytest.fixture
def served_app(app: Flask) -> Iterator[str]:
    """The app served by a threaded HTTP server on 127.0.0.1; its base URL."""
    with served(app) as url:
        yield url


def test_concurrent_first_visits_create_one_row(
    served_app: str, issuer: AccessIssuer, app: Flask
) -> None:
    """8 first requests of one user at once, over HTTP, threaded server: one row, one created."""
    token = issuer.user_token("ada@example.com", ["Admins"])
    start = threading.Barrier(8)
    answers: list[tuple[int, Any]] = []

    def visit() -> None:
        start.wait()
        response = requests.get(
            f"{served_app}/api/me", headers={"Cf-Access-Jwt-Assertion": token}, timeout=30
        )
        answers.append((response.status_code, response.json()["id"]))

    with capture_user_loads(app) as loads:
        visitors = [threading.Thread(target=visit) for _ in range(8)]
        for visitor in visitors:
            visitor.start()
        for visitor in visitors:
            visitor.join()
    rows = accounts(app)
    assert len(rows) == 1
    assert rows[0]["roles"] == ["admin"]
    assert sorted(status for status, _ in answers) == [200] * 8
    assert len({user_id for _, user_id in answers}) == 1
    assert sorted(load.created for load in loads) == [False] * 7 + [True]


@pytest.fixture
def login_app(config: dict[str, Any]) -> Iterator[Flask]:
    """The Flask-Login flavour of the example."""
    yield from closing_databases(login_flavour.create_app(config))


def test_flask_login_flavour(
    login_app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """@login_required and current_user work from the token; first visit creates; no cookie set."""
    client = AccessClient.for_app(login_app, issuer)
    with capture_user_loads(login_app) as loads:
        home = client.get("/", token=issuer.user_token("ada@example.com", ["Admins"], name="Ada"))
        admin = client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
        refused = client.get("/admin/", as_user="bob@example.com", groups=["Staff"])
    assert home.get_data(as_text=True) == "Hello, Ada."
    assert admin.status_code == 200
    assert refused.status_code == 403
    assert [(load.identity.email, load.created) for load in loads] == [
        ("ada@example.com", True),
        ("ada@example.com", False),
        ("bob@example.com", True),
    ]
    anonymous = client.get("/")
    assert anonymous.status_code == 401
    assert captured.denied == []  # Flask-Login's own 401: the access check refused nothing
    bad = client.get("/", token="not.a.token")
    assert bad.status_code == 401
    assert captured.last.reason is Reason.MALFORMED_TOKEN
    for response in (home, admin, refused, anonymous, bad):
        assert response.headers.getlist("Set-Cookie") == []


def test_user_load_records_the_user(client: AccessClient, app: Flask) -> None:
    """capture_user_loads() records the user the loader gave, with its identity."""
    with capture_user_loads(app) as loads:
        client.get("/", as_user="ada@example.com")
    assert len(loads) == 1
    assert isinstance(loads[0], UserLoad)
    assert isinstance(loads[0].user, User)
    assert loads[0].identity.email == "ada@example.com"
