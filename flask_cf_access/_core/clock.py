"""The default clock: wall-clock seconds, as every process and host reads them."""

from __future__ import annotations

import time
from collections.abc import Callable

#: A time source: seconds since the epoch.
Clock = Callable[[], float]


def system_time() -> float:
    """The time now: ``time.time()``, looked up at each call.

    The default clock everywhere. ``time.time`` itself, kept as a default
    argument or an attribute, is out of reach of freezegun (time-machine
    reaches it); a lookup at each call is honoured by both, so the test
    suites of applications that freeze time see tokens expire.
    """
    return time.time()
