"""``flask cf-access`` agrees with the app: verify asks the user loader and the route,
routes fetches no keys, check fetches once and says so once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskCliRunner

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    NewUser,
    Reason,
    current_user,
    require_access,
    require_group,
)
from flask_cf_access.cli import cli
from flask_cf_access.testing import (
    AccessClient,
    AccessIssuer,
    StandInServer,
    capture_access,
    run_inline,
)

CERTS = "/cdn-cgi/access/certs"


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A stand-in team over HTTP."""
    with AccessIssuer().serve() as server:
        yield server


def loaded_by_the_command(factory: Callable[[], Flask], *args: str) -> Result:
    """``flask cf-access ARGS`` loading the app itself, as ``flask --app`` does."""
    runner = FlaskCliRunner(Flask("unused"))
    return runner.invoke(cli, list(args), obj=ScriptInfo(create_app=factory))


def accounts_app(settings: dict[str, Any], accounts: dict[str, str]) -> Flask:
    """An app whose user loader knows the e-mails in ``accounts`` (and creates ``new@…``)."""
    app = Flask("accounts", static_folder=None)
    app.config.update(settings)
    cf_access = CloudflareAccess(app, background=run_inline)

    @cf_access.user_loader
    def load_user(identity: AccessIdentity) -> Any:
        if identity.email == "new@example.com" and identity.email not in accounts:
            accounts[identity.email] = "created"
            return NewUser(accounts[identity.email])
        return accounts.get(identity.email or "")

    @app.get("/me")
    @require_access
    def me() -> str:
        return str(current_user)

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> str:
        return str(current_user)

    @app.get("/greet")
    @require_access(optional=True)
    def greet() -> str:
        return f"Hello, {current_user or 'stranger'}"

    @app.get("/open")
    @require_access(account=False)
    def open_to_all() -> str:
        return f"Hello, {current_user or 'stranger'}"

    @app.get("/health")
    @cf_access.public
    def health() -> str:
        return "ok"

    return app


@pytest.mark.parametrize(
    ("email", "groups", "args", "reason"),
    [
        ("ada@example.com", ["Admins"], [], None),
        ("new@example.com", [], [], None),
        ("eve@example.com", ["Admins"], [], Reason.NO_ACCOUNT),
        ("ada@example.com", ["Admins"], ["--path", "/admin"], None),
        ("ada@example.com", ["Staff"], ["--path", "/admin"], Reason.NOT_IN_GROUP),
        ("eve@example.com", ["Admins"], ["--path", "/admin"], Reason.NO_ACCOUNT),
        ("ada@example.com", ["Staff"], ["--path", "/me"], None),
        ("eve@example.com", [], ["--path", "/greet"], None),
        ("eve@example.com", [], ["--path", "/open"], None),
    ],
)
def test_verify_says_what_the_app_does(
    stand_in: StandInServer,
    email: str,
    groups: list[str],
    args: list[str],
    reason: Reason | None,
) -> None:
    """verify's result is the app's own answer to the token, user loader and route included."""
    accounts = {"ada@example.com": "Ada"}
    app = accounts_app(stand_in.settings(), dict(accounts))
    token = stand_in.issuer.user_token(email, groups)
    result = app.test_cli_runner().invoke(cli, ["verify", token, *args])

    served = accounts_app(stand_in.settings(), dict(accounts))
    served.test_client_class = AccessClient
    path = args[1] if args else "/me"
    with capture_access(served) as captured:
        status = served.test_client().get(path, headers={"Cf-Access-Jwt-Assertion": token})
    if reason is None:
        assert result.exit_code == 0, result.output
        assert "Result: ACCEPTED" in result.output
        assert status.status_code == 200
        assert captured.reasons == []
    else:
        assert result.exit_code == 1, result.output
        assert (
            f"Result: REFUSED ({reason}): {reason.description}. The app answers {reason.status}."
            in result.output
        )
        assert captured.reasons == [reason]


def test_verify_on_a_public_route(stand_in: StandInServer) -> None:
    """--path of a public route: the app lets every request through there."""
    app = accounts_app(stand_in.settings(), {})
    result = app.test_cli_runner().invoke(cli, ["verify", "not-a-token", "--path", "/health"])
    assert result.exit_code == 0, result.output
    assert "checks no token" in result.output


def test_verify_on_no_route(stand_in: StandInServer) -> None:
    """--path that no route answers is an error, not a guess."""
    app = accounts_app(stand_in.settings(), {})
    token = stand_in.issuer.user_token("ada@example.com")
    result = app.test_cli_runner().invoke(cli, ["verify", token, "--path", "/nowhere"])
    assert result.exit_code == 1
    assert "no route of this app answers GET /nowhere" in result.output


def test_routes_fetches_no_keys(stand_in: StandInServer) -> None:
    """routes needs no keys: loading the app for it fetches none, even from a hanging URL."""
    stand_in.inject("certs", "hang")
    settings = stand_in.settings(CF_ACCESS_HTTP_TIMEOUT=1)
    result = loaded_by_the_command(lambda: accounts_app(settings, {}), "routes", "--strict")
    assert result.exit_code == 0, result.output
    assert "/admin" in result.output
    assert stand_in.calls[CERTS] == 0


def test_check_fetches_once_and_says_so_once(
    stand_in: StandInServer, caplog: pytest.LogCaptureFixture
) -> None:
    """check fetches the keys once and reports a failure once (no log line from loading)."""
    stand_in.inject("certs", "error")
    caplog.set_level(logging.DEBUG, "flask_cf_access")
    settings = stand_in.settings()
    result = loaded_by_the_command(lambda: accounts_app(settings, {}), "check")
    assert result.exit_code == 1
    assert result.output.count("answered HTTP 500") == 1
    assert stand_in.calls[CERTS] == 1
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []


def test_check_fetches_once_when_it_works(stand_in: StandInServer) -> None:
    """A working team: one fetch, by check itself."""
    settings = stand_in.settings()
    result = loaded_by_the_command(lambda: accounts_app(settings, {}), "check")
    assert result.exit_code == 0, result.output
    assert stand_in.calls[CERTS] == 1


def test_serving_still_loads_keys_on_init(stand_in: StandInServer) -> None:
    """Outside the command line, init_app still loads the keys."""
    accounts_app(stand_in.settings(), {})
    assert stand_in.calls[CERTS] == 1
