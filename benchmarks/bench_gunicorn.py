"""Requests per second over loopback HTTP under gunicorn: protected against unprotected.

    python benchmarks/bench_gunicorn.py [--workers 2] [--seconds 5] [--rounds 3]

Runs the example app (``examples.protected_app:create_app()``) under gunicorn
on 127.0.0.1, trusting a stand-in server run by this process
(``AccessIssuer.serve()``), and loads it with ``wrk`` (``apt-get install wrk``)
or, without it, a small threaded Python client: ``/health`` (no token needed)
against ``/api/whoami`` (``@require_access``), both sent one user's token (so
the requests are the same size; after the first request in each worker the
verified-token cache answers). The two
routes alternate, ``--rounds`` times ``--seconds`` each; the figures are
medians. gunicorn is always stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from _support import check_python, describe_machine

check_python()

from flask_cf_access import TOKEN_HEADER  # noqa: E402
from flask_cf_access.testing import AccessIssuer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 8


class Gunicorn:
    """gunicorn serving the example app on 127.0.0.1, its log read in a thread."""

    def __init__(
        self,
        port: int,
        workers: int,
        environ: dict[str, str],
        options: tuple[str, ...] = (),
        app: str = "examples.protected_app:create_app()",
    ) -> None:
        self.port = port
        self.workers = workers
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "info",
                *options,
                app,
            ],
            cwd=ROOT,
            env={**os.environ, **environ},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.booted = threading.Semaphore(0)
        self.log: list[str] = []
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if "Booting worker" in line:
                self.booted.release()

    def wait_until_serving(self, timeout: float = 90.0) -> None:
        """Return once every worker booted and ``/health`` answers.

        A worker logs that it boots before it imports the app, which on a busy
        machine takes seconds: ``/health`` is asked again until the deadline.
        """
        deadline = time.monotonic() + timeout
        for _ in range(self.workers):
            if not self.booted.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise RuntimeError("gunicorn did not boot:\n" + "".join(self.log))
        while True:
            try:
                status = get(self.port, "/health", {}, timeout=5)
            except OSError:  # not answering yet (refused, or timed out)
                if time.monotonic() >= deadline:
                    raise
                continue
            if status != 200:
                raise RuntimeError(f"/health answered {status}:\n" + "".join(self.log))
            return

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)


def get(port: int, path: str, headers: dict[str, str], timeout: float = 10) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def load_with_wrk(port: int, path: str, headers: dict[str, str], seconds: float) -> float:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}{path}")
    output = subprocess.run(  # noqa: S603 (wrk, with our own arguments)
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"{path} answered errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return float(match.group(1))


def load_with_python(port: int, path: str, headers: dict[str, str], seconds: float) -> float:
    counts = [0] * CONNECTIONS
    failures: list[int] = []
    deadline = time.monotonic() + seconds

    def client(slot: int) -> None:
        while time.monotonic() < deadline:
            status = get(port, path, headers)
            if status != 200:
                failures.append(status)
                return
            counts[slot] += 1

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{path} answered {failures[0]}")
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = load_with_wrk if shutil.which("wrk") else load_with_python
    tool = "wrk" if load is load_with_wrk else "a threaded Python client (install wrk)"

    issuer = AccessIssuer()
    token = issuer.user_token("ada@example.com", groups=["Admins"])
    with issuer.serve() as server:
        gunicorn = Gunicorn(free_port(), args.workers, server.environ())
        try:
            gunicorn.wait_until_serving()
            # the same token on both, so both requests are the same size
            headers = {TOKEN_HEADER: token}
            routes = {
                "/health (unprotected)": ("/health", headers),
                "/api/whoami (protected)": ("/api/whoami", headers),
            }
            for path, _ in routes.values():  # warm every worker up
                load(gunicorn.port, path, headers, 1.0)
            print(describe_machine())
            print(
                f"gunicorn, {args.workers} sync workers; load: {tool}, {CONNECTIONS} connections;"
                f" {args.rounds} rounds of {args.seconds:g} s per route, alternating\n"
            )
            results: dict[str, list[float]] = {name: [] for name in routes}
            for _ in range(args.rounds):
                for name, (path, _) in routes.items():
                    results[name].append(load(gunicorn.port, path, headers, args.seconds))
        finally:
            gunicorn.stop()
        fetched = (
            server.calls["/cdn-cgi/access/certs"],
            server.calls["/cdn-cgi/access/get-identity"],
        )

    medians = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
    for name, values in results.items():
        rounds = ", ".join(f"{value:.0f}" for value in values)
        print(f"  {name:26s} {medians[name]:8.0f} req/s   (rounds: {rounds})")
    ratio = medians["/api/whoami (protected)"] / medians["/health (unprotected)"]
    print(f"\n  protected / unprotected throughput: {ratio:.2f}x")
    print(f"  certs fetched {fetched[0]} time(s), identity {fetched[1]} time(s) in all")


if __name__ == "__main__":
    main()
