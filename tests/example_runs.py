"""Running an example's ``python -m examples.…`` command and trying what it prints."""

from __future__ import annotations

import http.client
import itertools
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Bound on every wait for the subprocess; never a fixed sleep. Generous: on a
#: machine running several suites at once, importing the app alone took over a minute.
START_TIMEOUT = 180.0
#: The line an example prints once it serves.
READY = re.compile(r"^Example app ready on (http://127\.0\.0\.1:\d+)/")


def clean_environ(**extra: str) -> dict[str, str]:
    """This environment without CF_ACCESS_* and PORT, plus ``extra``."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CF_ACCESS_", "PYTEST_")) and name != "PORT"
    }
    environ.update(extra)
    return environ


def example_command(module: str, *args: str) -> list[str]:
    """``python -m <module> <args>`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


class Running:
    """A subprocess whose stdout lines are read by a thread, waited for with a bound."""

    def __init__(
        self,
        args: list[str],
        environ: dict[str, str],
        stderr: IO[bytes],
        *,
        sigint_ignored: bool = False,
    ) -> None:
        """``sigint_ignored`` starts it as a shell starts a background job: SIGINT ignored."""
        self.process = subprocess.Popen(  # noqa: S603
            args,
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """The first line matching ``pattern``; fails after START_TIMEOUT or at exit."""
        while True:
            try:
                line = self._queue.get(timeout=START_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no line matching {pattern.pattern!r}: {self.lines}")
            if line is None:
                pytest.fail(
                    f"exited {self.process.wait()} before {pattern.pattern!r}: {self.lines}"
                )
            self.lines.append(line)
            match = pattern.search(line)
            if match:
                return match

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` (SIGTERM), then the exit status (bounded wait)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=START_TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=START_TIMEOUT)
            assert self.process.stdout is not None
            self.process.stdout.close()
        return status


def run_to_the_end(
    command: list[str], environ: dict[str, str], *, timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` from the repository root until it exits; its output as text."""
    return subprocess.run(  # noqa: S603
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout
    )


def assert_signal_stops_both_servers(
    command: list[str], tmp_path: Path, signum: int, *, sigint_ignored: bool = False
) -> None:
    """``signum`` ends ``command`` (an example serving an app and a stand-in team) with
    status 0 and no traceback, and both of its ports are closed."""
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        running = Running(command, clean_environ(), stderr, sigint_ignored=sigint_ignored)
        try:
            app_url = running.wait_for(READY).group(1)
        finally:
            status = running.stop(signum)
    assert status == 0
    assert "Traceback" not in log.read_text()
    stand_in = re.search(r"its keys served at (http://\S+)\.$", "\n".join(running.lines), re.M)
    assert stand_in
    assert refused(urlsplit(app_url).port or 0)
    assert refused(urlsplit(stand_in.group(1)).port or 0)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass(frozen=True)
class PrintedCurl:
    """A printed ``curl -i [--path-as-is] URL [-H 'Name: value']…`` command."""

    url: str
    headers: dict[str, str]
    #: ``--path-as-is``: curl sends ``.`` and ``..`` segments instead of resolving them.
    path_as_is: bool = False

    @classmethod
    def parse(cls, command: str) -> PrintedCurl:
        """The command as printed, one shell line; fails on an option it does not know."""
        argv = shlex.split(command)
        assert argv[:2] == ["curl", "-i"], command
        rest = argv[2:]
        path_as_is = rest[0] == "--path-as-is"
        if path_as_is:
            rest = rest[1:]
        url, *rest = rest
        assert not url.startswith("-"), command
        headers = {}
        while rest:
            flag, value, *rest = rest
            assert flag == "-H", command
            name, _, content = value.partition(": ")
            headers[name] = content
        return cls(url, headers, path_as_is)

    def send(self) -> tuple[int, bytes]:
        """The status and body the command gets, over HTTP to 127.0.0.1, as curl sends it."""
        parts = urlsplit(self.url)
        assert parts.scheme == "http"
        assert parts.hostname == "127.0.0.1"
        assert parts.port is not None
        segments = parts.path.split("/")
        # curl resolves dot segments unless told not to; the printed status is for what it sends.
        assert self.path_as_is or not {".", ".."} & set(segments), self.url
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
        try:
            connection.request("GET", target, headers=self.headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def printed_tries(lines: list[str]) -> list[tuple[int, PrintedCurl]]:
    """(expected status, command) for each ``# …: expect NNN`` + ``curl …`` pair printed."""
    tries = []
    for comment, command in itertools.pairwise(lines):
        expected = re.search(r"^# .*: expect (\d{3})$", comment)
        if expected and command.startswith("curl "):
            tries.append((int(expected.group(1)), PrintedCurl.parse(command)))
    return tries


def refused(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False
