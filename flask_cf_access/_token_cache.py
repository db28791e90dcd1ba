"""Tokens that passed every check, remembered so a repeat skips the signature check."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joserfc.jwk import RSAKey

    from ._identity import AccessIdentity
    from ._keys import KeySet


@dataclass(eq=False, slots=True)
class VerifiedToken:
    """What a verified token said, the key it verified with, and what was learnt since.

    :param kid: the ``kid`` of the key that signed it.
    :param claims: its verified claims, read-only.
    :param keyset: the published set its ``kid`` was last found in; while that
        set is in use and fresh, the key needs no look-up.
    :param window: clock times ``[start, end)`` in which its time checks surely
        pass (:meth:`~flask_cf_access._claims.ClaimsPolicy.window`); by default
        none, so that every hit runs the full time checks.
    :param key: the key its signature verified with. A hit that finds another
        key material under ``kid`` (the team published a new key under the
        same ``kid``) does not count; without a key, no hit counts once
        ``keyset`` is no longer in use.
    """

    kid: str
    claims: Mapping[str, Any]
    keyset: KeySet | None = None
    window: tuple[float, float] = (math.inf, -math.inf)
    key: RSAKey | None = None
    #: The identity these claims speak for, once a request has asked;
    #: every later request with the token gets the same one.
    identity: AccessIdentity | None = field(default=None, init=False)


class TokenCache:
    """A bounded, thread-safe LRU of verified tokens, keyed by the whole token.

    The key is the full token string, never a digest or a prefix of it, so no
    collision can let one token pass as another. At most ``max_size`` tokens
    are held, the least recently used going first; ``0`` remembers nothing.

    It only remembers: whoever reads an entry re-checks, on every hit, what
    time and key rotation can change (expiry, not-before, maximum age, the
    signing key still being published under its ``kid``, as the same key).
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("max_size must be 0 or more")
        self.max_size = max_size
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> VerifiedToken | None:
        """The entry of ``token``, now the most recently used, or ``None``.

        Readers take no lock: each step is one atomic operation on the
        ordered dict, and an entry dropped between them is still returned.
        """
        entries = self._entries
        entry = entries.get(token)
        if entry is not None:
            # Not contextlib.suppress: a context manager would cost more than the hit.
            try:  # noqa: SIM105
                entries.move_to_end(token)
            except KeyError:  # dropped by another thread since the look-up
                pass
        return entry

    def put(self, token: str, entry: VerifiedToken) -> None:
        """Remember ``entry`` for ``token``, forgetting the least recently used beyond the bound."""
        if not self.max_size:
            return
        entries = self._entries
        with self._lock:
            if token in entries:
                entries.move_to_end(token)
            entries[token] = entry
            while len(entries) > self.max_size:
                entries.popitem(last=False)

    def discard(self, token: str) -> None:
        """Forget ``token`` if it is held."""
        with self._lock:
            self._entries.pop(token, None)

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries
