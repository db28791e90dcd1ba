"""Helpers the tests share: a frozen clock, the token header, call counts."""

from __future__ import annotations

import responses

#: 2027-01-15T08:00:00Z: tests never read the real clock.
START = 1_800_000_000.0


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def count_calls(mock: responses.RequestsMock, url: str) -> int:
    """How many requests ``mock`` answered for ``url``."""
    return sum(1 for call in mock.calls if call.request.url == url)


def bearer(token: str) -> dict[str, str]:
    """The header Cloudflare Access puts the token in."""
    return {"Cf-Access-Jwt-Assertion": token}
