"""The object graph of one configured team and app, built once from its settings.

The key store and the identity endpoint, reaching Cloudflare through one
session and sharing one cache; the verifier with its claims policy; the policy
on identities; the application map. :class:`~flask_cf_access._checker.AccessChecker`
runs every request through them and builds none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import requests
from cachelib import SimpleCache

from .applications import ApplicationMap
from .checker import AccessChecker
from .claims import ClaimsPolicy
from .clock import Clock, system_time
from .fetch import fork_safe_session
from .identity_endpoint import IdentityEndpoint
from .keys import KeyStore
from .requirements import AccessPolicy
from .settings import AccessSettings
from .shared_cache import SharedCache
from .single_flight import Background, run_in_thread
from .verifier import TokenVerifier


class _Reach(TypedDict):
    """How the key store and the identity endpoint reach Cloudflare and keep what they learn."""

    session: requests.Session
    timeout: float
    cache: SharedCache
    clock: Clock


def build_checker(
    settings: AccessSettings,
    *,
    session: requests.Session | None = None,
    clock: Clock = system_time,
    background: Background = run_in_thread,
) -> AccessChecker:
    """The checker of ``settings``, with every part it runs requests through.

    Keys and identities are shared through ``settings.cache`` (in-process when
    ``None``); every call to Cloudflare goes through ``session`` (by default
    one made safe to use across a fork), and is started through ``background``
    (key fetches and refreshes, get-identity calls and probes; a daemon thread
    by default). Nothing is fetched here.
    """
    cache = SharedCache(
        settings.cache if settings.cache is not None else SimpleCache(), clock=clock
    )
    session = session if session is not None else fork_safe_session()
    reach = _Reach(session=session, timeout=settings.http_timeout, cache=cache, clock=clock)
    # How long a request waits for keys or an identity being fetched.
    budget = min(settings.upstream_wait, settings.http_timeout)
    keys = KeyStore(
        certs_url=settings.certs_url,
        budget=budget,
        max_age=settings.keys_max_age,
        min_refresh_interval=settings.keys_min_refresh_interval,
        background=background,
        **reach,
    )
    return AccessChecker(
        settings,
        clock=clock,
        cache=cache,
        session=session,
        keys=keys,
        identity_endpoint=IdentityEndpoint(
            url=settings.identity_url,
            budget=budget,
            slots=settings.identity_concurrency,
            background=background,
            **reach,
        ),
        verifier=TokenVerifier(keys, ClaimsPolicy(settings, clock)),
        policy=AccessPolicy(settings),
        applications=ApplicationMap(settings.applications) if settings.applications else None,
    )


def checker_from_mapping(
    config: Mapping[str, Any],
    *,
    session: requests.Session | None = None,
    clock: Clock | None = None,
    background: Background | None = None,
) -> AccessChecker:
    """A checker from ``CF_ACCESS_*`` settings (``app.config``, ``os.environ``…).

    Loads the keys unless ``CF_ACCESS_LOAD_KEYS_ON_INIT`` is false; a
    failure to load them is logged, not raised.

    :raises ConfigurationError: naming the first missing or invalid setting.
    """
    settings = AccessSettings.from_mapping(config)
    checker = build_checker(
        settings,
        session=session,
        clock=clock or system_time,
        background=background or run_in_thread,
    )
    if settings.load_keys_on_init:
        checker.keys.preload()
    return checker
