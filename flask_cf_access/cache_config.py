"""Turns the ``CF_ACCESS_CACHE`` setting into a cachelib cache."""

from __future__ import annotations

from cachelib import BaseCache

from .errors import ConfigurationError


def cache_from_setting(value: object) -> BaseCache | None:
    """The cache to share keys and identities through; ``None`` for in-process.

    :raises ConfigurationError: naming ``CF_ACCESS_CACHE`` for anything else.
    """
    if value is None or isinstance(value, BaseCache):
        return value
    raise ConfigurationError("CF_ACCESS_CACHE must be a cachelib BaseCache instance or None.")
