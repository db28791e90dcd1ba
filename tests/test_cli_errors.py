"""``flask cf-access`` on an app whose settings are refused: one line, exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskCliRunner

from flask_cf_access import CloudflareAccess, ConfigurationError
from flask_cf_access.cli import cli
from flask_cf_access.testing import run_inline

COMMANDS = [["check"], ["verify", "a.b.c"], ["mint", "--email", "ada@example.com"]]
APP_MODULE = """
from flask import Flask
from flask_cf_access import CloudflareAccess

{body}
"""
MODULE_APP = "app = Flask(__name__)\nCloudflareAccess(app)\n"
FACTORY_APP = """
def create_app():
    app = Flask(__name__)
    CloudflareAccess(app)
    return app
"""


def flask_command(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``flask --app unset_app cf-access ARGS`` for an app module holding ``body``."""
    (tmp_path / "unset_app.py").write_text(APP_MODULE.format(body=body))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CF_ACCESS_", "FLASK_"))}
    return subprocess.run(  # noqa: S603 (our interpreter, our arguments)
        [sys.executable, "-m", "flask", "--app", "unset_app", "cf-access", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
@pytest.mark.parametrize("body", [MODULE_APP, FACTORY_APP], ids=["module", "factory"])
def test_app_without_settings_gives_one_line(tmp_path: Path, body: str, args: list[str]) -> None:
    """Every cf-access command prints the ConfigurationError's message, no traceback, exit 1."""
    result = flask_command(tmp_path, body, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: the app cannot load: CF_ACCESS_TEAM_DOMAIN is required,"
        " e.g. 'acme.cloudflareaccess.com'."
    ]


def refusing_factory() -> Flask:
    """An app factory that turns a refused setting into an error of its own."""
    app = Flask("wrapping")
    app.config["CF_ACCESS_TEAM_DOMAIN"] = "team.invalid"
    app.config["CF_ACCESS_AUDIENCE"] = "aud"
    app.config["CF_ACCESS_LEEWAY"] = "thirty"
    try:
        CloudflareAccess(app, background=run_inline)
    except ConfigurationError as exc:
        raise RuntimeError("the app could not be set up") from exc
    return app


def test_setting_error_raised_through_another_is_reported() -> None:
    """A ConfigurationError behind the factory's own error is still reported in one line."""
    runner = FlaskCliRunner(Flask("unused"))
    result = runner.invoke(cli, ["check"], obj=ScriptInfo(create_app=refusing_factory))
    assert result.exit_code == 1
    assert "CF_ACCESS_LEEWAY must be a whole number." in result.output
    assert isinstance(result.exception, SystemExit)


def broken_factory() -> Flask:
    raise ZeroDivisionError("a bug of the app's own")


def test_other_loading_errors_are_not_hidden() -> None:
    """An app that fails for a reason other than its settings raises as before."""
    runner = FlaskCliRunner(Flask("unused"))
    result = runner.invoke(cli, ["check"], obj=ScriptInfo(create_app=broken_factory))
    assert isinstance(result.exception, ZeroDivisionError)
