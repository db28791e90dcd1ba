"""The browser module's own tests (``tests/js``), under Node's built-in test runner.

Skipped where ``node`` is not installed, except under CI (``CI`` set), where
they fail: CI installs Debian's ``nodejs``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

JS_TESTS = Path(__file__).parent / "js"


def test_browser_module_logic_under_node() -> None:
    """``node --test tests/js/`` passes: every case of the module's logic."""
    node = shutil.which("node")
    if node is None:
        message = "node is not installed (apt-get install nodejs)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must have it", pytrace=False)
        pytest.skip(message)
    result = subprocess.run(  # noqa: S603 (node, and our own test directory)
        [node, "--test", str(JS_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "# fail 0" in report
    passed = [line for line in report.splitlines() if line.startswith("# pass ")]
    assert passed, report
    assert int(passed[0].split()[-1]) >= 20, report
