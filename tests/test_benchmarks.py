"""The benchmark scripts run (on tiny inputs), so the figures in the README stay reproducible.

They measure nothing here: timings are for the scripts themselves to print.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "arguments", "expected"),
    [
        (
            "bench_verify.py",
            ["--tokens", "20", "--rounds", "2"],
            "protected first-seen / raw-work view",
        ),
        (
            "bench_fetches.py",
            ["--requests", "200", "--workers", "2", "--minutes", "1"],
            "Certs fetches under a flood",
        ),
        ("bench_memory.py", ["--tokens", "300", "--size", "100"], "held per cache entry"),
        (
            "bench_users.py",
            ["--requests", "20", "--rounds", "2"],
            "current_user via loader / identity only",
        ),
        (
            "bench_junk.py",
            ["--tokens", "10", "--rounds", "2"],
            "unknown-kid / bad-signature refusal cost",
        ),
        ("bench_faults.py", ["--quick"], "Fault benchmark done"),
        ("bench_context.py", ["--requests", "20", "--rounds", "2"], "posture / group rule"),
        (
            "bench_gunicorn.py",
            ["--workers", "1", "--seconds", "1", "--rounds", "1"],
            "protected / unprotected throughput",
        ),
    ],
)
def test_benchmark_script_runs(script: str, arguments: list[str], expected: str) -> None:
    """Each script finishes on a small input and prints its figures."""
    finished = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [sys.executable, str(ROOT / "benchmarks" / script), *arguments],
        cwd=ROOT,
        # The scripts import the package from this tree, not from wherever it is installed.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert expected in finished.stdout
