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

    from .identity import AccessIdentity
    from .keys import KeySet


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


class TokenCache(OrderedDict[str, VerifiedToken]):
    """A bounded, thread-safe map of verified tokens, keyed by the whole token.

    The key is the full token string, never a digest or a prefix of it, so no
    collision can let one token pass as another. At most ``max_size`` tokens
    are held; when full, the one verified longest ago goes first (an entry
    dropped while still in use is verified again once, on its next request).
    ``0`` remembers nothing.

    A hit is ``get``, the mapping's own, which takes no lock and runs no
    Python code: the verified-token cache is what a repeat request pays for.

    It only remembers: whoever reads an entry re-checks, on every hit, what
    time and key rotation can change (expiry, not-before, maximum age, the
    signing key still being published under its ``kid``, as the same key).
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("max_size must be 0 or more")
        super().__init__()
        self.max_size = max_size
        self._lock = threading.Lock()

    def put(self, token: str, entry: VerifiedToken) -> None:
        """Remember ``entry`` for ``token``, forgetting the oldest entries beyond the bound.

        Room is made before the entry goes in, so no reader ever sees more
        than ``max_size`` entries.
        """
        if not self.max_size:
            return
        with self._lock:
            self.pop(token, None)
            while len(self) >= self.max_size:
                self.popitem(last=False)
            self[token] = entry

    def discard(self, token: str) -> None:
        """Forget ``token`` if it is held."""
        with self._lock:
            self.pop(token, None)

    def __repr__(self) -> str:
        # Never the tokens: a repr ends up in logs and tracebacks.
        return f"<TokenCache {len(self)} of {self.max_size} tokens>"
