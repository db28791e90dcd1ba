"""Requests a stand-in server answered, by path."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping


class RequestCounts(Mapping[str, int]):
    """Requests answered, by path; thread-safe. A path never asked for counts 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, path: str) -> None:
        """Count one request for ``path``."""
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()

    def __getitem__(self, path: str) -> int:
        with self._lock:
            return self._counts.get(path, 0)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            return path in self._counts

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._counts))

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    def __repr__(self) -> str:
        with self._lock:
            return f"RequestCounts({self._counts!r})"
