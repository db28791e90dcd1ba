"""``python -m examples.plain_wsgi_app``, run as a subprocess and used over real HTTP."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flask_cf_access.testing import StandInServer

from .example_runs import (
    READY,
    PrintedCurl,
    Running,
    assert_signal_stops_both_servers,
    clean_environ,
    example_command,
    printed_tries,
    run_to_the_end,
)

pytestmark = pytest.mark.slow

MODULE = "examples.plain_wsgi_app"


class Started:
    """The running example, and where its standard error goes."""

    def __init__(self, running: Running, stderr_log: Path) -> None:
        self.running = running
        self.stderr_log = stderr_log

    def tries(self) -> list[tuple[int, PrintedCurl]]:
        """The printed (expected status, curl command) pairs."""
        return printed_tries(self.running.lines)

    def stderr(self) -> str:
        """What it wrote to standard error so far (request and refusal logs)."""
        return self.stderr_log.read_text()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """The example on a free port, serving until the module's tests are done."""
    log = tmp_path_factory.mktemp("plain_wsgi") / "stderr.log"
    with log.open("wb") as stderr:
        running = Running(example_command(MODULE, "--port", "0"), clean_environ(), stderr)
        try:
            running.wait_for(READY)
            yield Started(running, log)
        finally:
            running.stop()


def test_printed_curl_commands_get_the_printed_status(example: Started) -> None:
    """Every printed curl command, sent as curl sends it, gets the status printed with it."""
    tries = example.tries()
    assert [status for status, _ in tries] == [200, 401, 200, 403, 200, 403, 400]
    for status, curl in tries:
        assert curl.send()[0] == status, curl.url


def test_refusals_are_for_the_reason_each_try_shows(example: Started) -> None:
    """Each refused try is logged with its own reason: no token, group, service only, path."""
    for status, curl in example.tries():
        if status >= 400:
            curl.send()
    refusals = re.findall(r"Cloudflare Access refused GET (\S+): (\d{3}) (\w+)", example.stderr())
    assert set(refusals) == {
        ("/", "401", "missing_token"),
        ("/admin", "403", "not_in_group"),
        ("/api/status", "403", "service_token_required"),
        ("/healthz/../admin", "400", "ambiguous_path"),
    }


def test_admin_is_told_to_the_app(example: Started) -> None:
    """Ada's printed command reaches the app with her e-mail, groups and department."""
    (admin,) = [
        curl
        for status, curl in example.tries()
        if status == 200 and urlsplit(curl.url).path == "/admin"
    ]
    status, body = admin.send()
    assert status == 200
    assert json.loads(body) == {
        "user": "ada@example.com",
        "email": "ada@example.com",
        "groups": ["Admins"],
        "department": "R&D",
    }


def test_dot_segment_try_needs_path_as_is(example: Started) -> None:
    """The 400 try tells curl to send its dot segment as it is; only that one does."""
    flagged = [(status, curl.url) for status, curl in example.tries() if curl.path_as_is]
    assert [(status, urlsplit(url).path) for status, url in flagged] == [(400, "/healthz/../admin")]


def test_ready_line_names_the_port_it_serves(example: Started) -> None:
    """--port 0 picks a free port; the ready line and every command name it."""
    (ready,) = [line for line in example.running.lines if READY.search(line)]
    match = READY.search(ready)
    assert match is not None
    port = urlsplit(match.group(1)).port
    assert port
    assert {urlsplit(curl.url).port for _, curl in example.tries()} == {port}


@pytest.mark.parametrize(
    ("signum", "sigint_ignored"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "SIGINT-in-a-background-job"],
)
def test_signal_stops_it_cleanly(
    signum: signal.Signals, sigint_ignored: bool, tmp_path: Path
) -> None:
    """Ctrl+C (SIGINT), even as a background job, or SIGTERM: status 0, no traceback, ports shut."""
    assert_signal_stops_both_servers(
        example_command(MODULE, "--port", "0"), tmp_path, signum, sigint_ignored=sigint_ignored
    )


def test_help_names_the_options() -> None:
    """--help exits 0 and explains --host and --port, 0 for a free port."""
    result = run_to_the_end(example_command(MODULE, "--help"), clean_environ())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {MODULE} [-h] [--host HOST] [--port PORT]")
    assert "default: $PORT or 8000; 0 picks a free port" in result.stdout
    assert result.stderr == ""


def test_bad_port_is_a_usage_error() -> None:
    """A PORT that is not a number stops it with argparse's status 2 and message, no traceback."""
    result = run_to_the_end(example_command(MODULE), clean_environ(PORT="http"))
    assert result.returncode == 2
    assert "argument --port: invalid int value: 'http'" in result.stderr
    assert "Traceback" not in result.stderr


def test_real_team_mode_starts_no_stand_in(cf_access_server: StandInServer, tmp_path: Path) -> None:
    """With CF_ACCESS_TEAM_DOMAIN set, it trusts that team, prints no tokens, starts nothing."""
    environ = clean_environ(**cf_access_server.environ())
    with (tmp_path / "stderr.log").open("wb") as stderr:
        running = Running(example_command(MODULE, "--port", "0"), environ, stderr)
        try:
            app_url = running.wait_for(READY).group(1)
            issuer = cf_access_server.issuer
            header = {"Cf-Access-Jwt-Assertion": issuer.user_token("ada@example.com", ["Admins"])}
            assert PrintedCurl(app_url + "/admin", header).send()[0] == 200
            assert PrintedCurl(app_url + "/admin", {}).send()[0] == 401
        finally:
            assert running.stop() == 0
    output = "\n".join(running.lines)
    assert f"Trusting the Access team {cf_access_server.issuer.team_domain}" in output
    assert "curl" not in output
    assert "stand-in" not in output
    assert cf_access_server.calls["/cdn-cgi/access/certs"] == 1


def test_real_team_mode_needs_the_audience() -> None:
    """A team without an audience stops it with status 2, naming the key, never ready."""
    result = run_to_the_end(
        example_command(MODULE, "--port", "0"),
        clean_environ(CF_ACCESS_TEAM_DOMAIN="acme.cloudflareaccess.com"),
    )
    assert result.returncode == 2
    assert "CF_ACCESS_AUDIENCE" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ready" not in result.stdout
