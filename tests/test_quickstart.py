"""The README's quick-start command, run as a subprocess and used over real HTTP."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from flask_cf_access.testing import StandInServer

from .example_runs import (
    READY,
    ROOT,
    Running,
    assert_signal_stops_both_servers,
    clean_environ,
    printed_tries,
    run_to_the_end,
)

pytestmark = pytest.mark.slow


def readme_section(title: str) -> str:
    """The text of the README section called ``title``."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def docs_shell_block(page: str, starting: str) -> str:
    """The ``code-block:: sh`` of docs/``page`` whose text starts with ``starting``."""
    text = (ROOT / "docs" / page).read_text()
    for match in re.finditer(r"^\.\. code-block:: sh\n\n((?:   .*\n|\n)+)", text, re.M):
        code = textwrap.dedent(match.group(1)).strip() + "\n"
        if code.startswith(starting):
            return code
    raise AssertionError(f"docs/{page} has no shell block starting {starting!r}")


def quickstart_command() -> list[str]:
    """The one command the README's quick start begins with, for this interpreter."""
    section = readme_section("Quick start")
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the quick start has a shell command"
    command = shlex.split(block.group(1).strip())
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The quick-start command on a free port, serving until the module's tests are done."""
    log = tmp_path_factory.mktemp("quickstart") / "stderr.log"
    with log.open("wb") as stderr:
        running = Running([*quickstart_command(), "--port", "0"], clean_environ(), stderr)
        try:
            running.wait_for(READY)
            yield running
        finally:
            running.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session that ignores proxy settings: only 127.0.0.1 is reached."""
    with requests.Session() as session:
        session.trust_env = False
        yield session


def test_quick_start_begins_with_the_command() -> None:
    """The quick start's first block is the one command; the code sample follows it."""
    section = readme_section("Quick start")
    assert section.index("```sh") < section.index("```python")
    assert quickstart_command()[1:] == ["-m", "examples.protected_app"]


def test_printed_curl_commands_get_the_printed_status(
    quickstart: Running, http: requests.Session
) -> None:
    """Every printed curl command, sent over HTTP, gets the status printed with it."""
    tries = printed_tries(quickstart.lines)
    assert {status for status, _ in tries} == {200, 401, 403}
    assert len(tries) == 4
    for status, curl in tries:
        assert curl.send()[0] == status, curl.url


def test_printed_tokens_cover_admin_user_and_service(quickstart: Running) -> None:
    """The printed tokens are an admin's, another user's and a service token's."""
    tokens = {}
    for _, curl in printed_tries(quickstart.lines):
        if curl.headers:
            parts = urlsplit(curl.url)
            whoami = dataclasses.replace(curl, url=f"http://{parts.netloc}/api/whoami")
            status, body = whoami.send()
            assert status == 200
            who = json.loads(body)
            tokens[who["name"]] = who["service_token"]
    assert tokens == {
        "ada@example.com": False,
        "bob@example.com": False,
        "example-client.access": True,
    }


def test_readme_command_line_example_runs(quickstart: Running) -> None:
    """The command line page's `flask cf-access` commands pass with the printed export line."""
    (export,) = [line for line in quickstart.lines if line.startswith("  export ")]
    settings = dict(item.split("=", 1) for item in shlex.split(export)[1:])
    assert settings["CF_ACCESS_TEAM_DOMAIN"] == "local-stand-in.invalid"
    assert urlsplit(settings["CF_ACCESS_STAND_IN"]).hostname == "127.0.0.1"
    commands = docs_shell_block("cli.rst", "flask --app examples.protected_app")
    bin_dir = str(Path(sys.executable).parent)
    environ = clean_environ(**settings, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    result = run_to_the_end(["bash", "-euo", "pipefail", "-c", commands], environ, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: the keys can be had" in result.stdout
    assert "4. Groups: Admins; one of Admins needed: yes" in result.stdout
    assert "Result: ACCEPTED. This app lets the user carol@example.com through." in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_both_servers(signum: signal.Signals, tmp_path: Path) -> None:
    """SIGTERM or SIGINT ends the command with status 0, both ports closed, no traceback."""
    assert_signal_stops_both_servers([*quickstart_command(), "--port", "0"], tmp_path, signum)


def test_real_team_mode_starts_no_stand_in(
    cf_access_server: StandInServer, tmp_path: Path, http: requests.Session
) -> None:
    """With CF_ACCESS_TEAM_DOMAIN set, the command trusts that team and mints nothing."""
    environ = clean_environ(**cf_access_server.environ())
    with (tmp_path / "stderr.log").open("wb") as stderr:
        running = Running([*quickstart_command(), "--port", "0"], environ, stderr)
        try:
            app_url = running.wait_for(READY).group(1)
            issuer = cf_access_server.issuer
            admin = {"Cf-Access-Jwt-Assertion": issuer.user_token("ada@example.com", ["Admins"])}
            assert http.get(app_url + "/admin/", headers=admin, timeout=10).status_code == 200
            assert http.get(app_url + "/admin/", timeout=10).status_code == 401
        finally:
            assert running.stop() == 0
    output = "\n".join(running.lines)
    assert f"Trusting the Access team {cf_access_server.issuer.team_domain}" in output
    assert "curl" not in output
    assert "CF_ACCESS_STAND_IN" not in output
    assert cf_access_server.calls["/cdn-cgi/access/certs"] == 1


def test_real_team_mode_needs_the_audience(tmp_path: Path) -> None:
    """A team without an audience stops the command with status 2, naming the key."""
    environ = clean_environ(CF_ACCESS_TEAM_DOMAIN="acme.cloudflareaccess.com")
    result = run_to_the_end([*quickstart_command(), "--port", "0"], environ)
    assert result.returncode == 2
    assert "CF_ACCESS_AUDIENCE" in result.stderr
    assert "ready" not in result.stdout
