"""The example app on a clock ``BENCH_CLOCK_OFFSET`` seconds off this host's, for
``bench_faults.py``: two hosts sharing Redis whose clocks disagree.

    gunicorn 'benchmarks.skewed_app:create_app()'

``CloudflareAccess(clock=...)`` is how tests give the extension a clock; the
example app makes its extension object at import, so its clock is set here,
before ``create_app()`` calls ``init_app``.
"""

from __future__ import annotations

import os
import time

from flask import Flask

from examples import protected_app


def skewed_time() -> float:
    """This host's time, off by ``BENCH_CLOCK_OFFSET`` seconds."""
    return time.time() + float(os.environ.get("BENCH_CLOCK_OFFSET", "0"))


def create_app() -> Flask:
    """The example app, its extension reading the skewed clock."""
    protected_app.cf_access._clock = skewed_time
    return protected_app.create_app()
