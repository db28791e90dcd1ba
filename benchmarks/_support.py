"""What the benchmark scripts share: interleaved rounds, medians, a WSGI caller."""

from __future__ import annotations

import gc
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.test import EnvironBuilder

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def describe_machine() -> str:
    """One line on what ran the benchmark."""
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPU(s), {platform.system()}"
    )


#: A variant prepares its round (untimed) and returns the timed part, which
#: answers how many operations it ran.
Variant = Callable[[], Callable[[], int]]


#: The clocks a benchmark can be timed with: the wall clock, or the CPU time
#: of the benchmark's own thread, which a neighbour taking the CPU away from
#: it does not add to (what a shared, busy machine needs to resolve a few %).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}


def interleaved(
    variants: Mapping[str, Variant], rounds: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Microseconds per operation of each variant, one figure per round.

    In every round each variant runs once, in turn, so that a noisy
    neighbour or a change of CPU frequency hits them all alike; the order is
    rotated by one each round, so that no variant always runs first (after
    another round's heaviest variant) or last. Each starts after a full
    garbage collection, so that none pays for another's garbage (the
    collector stays on: what a variant allocates, it pays for). ``clock``
    times them (one of :data:`CLOCKS`).
    """
    results: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(rounds):
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:
            run = variants[name]()
            gc.collect()
            started = clock()
            operations = run()
            elapsed = clock() - started
            results[name].append(elapsed / operations * 1e6)
    return results


def paired_ratios(top: list[float], bottom: list[float]) -> list[float]:
    """``top`` over ``bottom`` round by round, for variants timed by :func:`interleaved`.

    Both were measured within the same round, seconds apart: a slow stretch
    of the machine slows both, so their ratio moves less than either figure.
    The median of these is steadier than the ratio of the two medians.
    """
    return [upper / lower for upper, lower in zip(top, bottom, strict=True)]


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """The inter-quartile range, as text, to show how noisy a figure is."""
    quartiles = statistics.quantiles(values, n=4)
    return f"IQR {quartiles[0]:.1f}-{quartiles[2]:.1f}"


def prepared_environ(path: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A WSGI environ for GET ``path``, built once and copied for each call."""
    return EnvironBuilder(path=path, headers=list((headers or {}).items())).get_environ()


class _StartResponse:
    """A WSGI ``start_response`` that only remembers the status line."""

    status = ""

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status = status


def call_wsgi(app: WSGIApp, environ: Mapping[str, Any]) -> str:
    """Call ``app`` with a copy of ``environ`` (no test client), drain it; the status line."""
    start_response = _StartResponse()
    body = app(dict(environ), start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return start_response.status


def quiet_logs() -> None:
    """Keep the extension's one-line refusals (expected here by the thousand) off the screen."""
    logging.getLogger("flask_cf_access").setLevel(logging.CRITICAL)


def check_python() -> None:
    """Refuse to run from an interpreter without the project installed."""
    try:
        import flask_cf_access  # noqa: F401
    except ImportError:
        sys.exit("Install the project first: pip install -e '.[test]'")
