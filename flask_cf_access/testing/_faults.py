"""Faults a stand-in server can be told to answer with, to test an app against a failing team."""

from __future__ import annotations

from dataclasses import dataclass

#: What each kind of fault does to a request it is set for.
FAULT_KINDS = {
    "refuse": "close the connection without an answer",
    "hang": "answer nothing until the fault is cleared or the server closed",
    "error": "answer HTTP 500 with a JSON error",
    "garbage": "answer 200 with a body that is not JSON",
    "slow": "answer as usual, after ``seconds``",
}


@dataclass(frozen=True)
class Fault:
    """One fault for :meth:`StandInServer.inject`: a kind from :data:`FAULT_KINDS`.

    :param seconds: how long a ``"slow"`` fault holds the answer back.
    """

    kind: str
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}: one of {', '.join(FAULT_KINDS)}")
        if self.kind == "slow" and not self.seconds > 0:
            raise ValueError("a 'slow' fault needs seconds > 0")
