"""Stopping the servers the tests start as subprocesses."""

from __future__ import annotations

import subprocess
import threading
from typing import Any


def stop_process(process: subprocess.Popen[Any], reader: threading.Thread, timeout: float) -> None:
    """Terminate ``process`` (kill it if it will not stop), then finish reading its output.

    Safe to call twice.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    reader.join(timeout)
    if process.stdout is not None:
        process.stdout.close()
