"""How many times Cloudflare is asked: certs under an unknown-kid flood, identity per user.

    python benchmarks/bench_fetches.py [--requests 20000] [--workers 4] [--minutes 10]

Everything runs in this process on a simulated clock: each "worker" is an app
of its own (its own key store and identity client, as a gunicorn worker has),
fetching over HTTP from the stand-in server (``AccessIssuer.serve()`` on
127.0.0.1), which counts what it answers. With a shared cache the workers
share one cachelib ``SimpleCache`` instance, which is what Redis is to real
workers (``CF_ACCESS_CACHE=redis://…``).

1. A flood of tokens naming made-up key ids, spread over ``--minutes``
   simulated minutes and round-robin over the workers: certs fetches,
   against the bound (one at start-up per worker, then at most one per
   ``CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL`` across the workers sharing a cache).
2. ``--requests`` requests of one user to a group-gated route: identity
   fetches (one per shared cache, or one per worker without one).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import secrets

from _support import call_wsgi, check_python, describe_machine, prepared_environ, quiet_logs

check_python()

from cachelib import BaseCache, SimpleCache  # noqa: E402
from flask import Flask  # noqa: E402

from flask_cf_access import (  # noqa: E402
    TOKEN_HEADER,
    CloudflareAccess,
    require_group,
)
from flask_cf_access.testing import AccessIssuer, StandInServer  # noqa: E402

CERTS = "/cdn-cgi/access/certs"
IDENTITY = "/cdn-cgi/access/get-identity"


class Clock:
    """A simulated clock the benchmark moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unknown_kid_token(issuer: AccessIssuer) -> str:
    """A token naming a random key id, with a random signature (never reached)."""
    header = {"alg": "RS256", "kid": secrets.token_hex(32)}
    claims = {"iss": issuer.issuer, "aud": [issuer.audience], "exp": issuer.clock() + 600}
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(bytes(256))]
    )


def make_workers(
    server: StandInServer, clock: Clock, count: int, shared: BaseCache | None
) -> list[Flask]:
    """``count`` apps trusting the stand-in ``server``, over HTTP to 127.0.0.1."""
    workers = []
    for _ in range(count):
        app = Flask("bench")
        app.config.update(server.settings(CF_ACCESS_CACHE=shared))
        CloudflareAccess(app, clock=clock)

        @app.get("/admin")
        @require_group("Admins")
        def admin() -> str:
            return "ok"

        workers.append(app)
    return workers


def flood(
    server: StandInServer, clock: Clock, workers: int, shared: bool, requests: int, minutes: int
) -> tuple[int, int]:
    """Certs fetches (start-up included) for ``requests`` unknown-kid tokens; and the bound."""
    server.calls.reset()
    start = clock.now
    apps = make_workers(server, clock, workers, SimpleCache() if shared else None)
    environs = [
        prepared_environ("/admin", {TOKEN_HEADER: unknown_kid_token(server.issuer)})
        for _ in range(min(requests, 2000))
    ]
    step = minutes * 60 / requests
    for number in range(requests):
        clock.now = start + number * step
        status = call_wsgi(apps[number % workers].wsgi_app, environs[number % len(environs)])
        assert status.startswith("401"), status
    clock.now = start
    seconds = minutes * 60
    # CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL and CF_ACCESS_KEYS_MAX_AGE at their defaults
    per_cache = 1 + math.ceil(seconds / 60) + math.ceil(seconds / 900)
    bound = per_cache if shared else per_cache * workers
    return server.calls[CERTS], bound


def identity(server: StandInServer, clock: Clock, workers: int, shared: bool, requests: int) -> int:
    """Identity fetches for ``requests`` requests of one user, round-robin over the workers."""
    server.calls.reset()
    apps = make_workers(server, clock, workers, SimpleCache() if shared else None)
    token = server.issuer.user_token("ada@example.com", groups=["Admins"])
    environ = prepared_environ("/admin", {TOKEN_HEADER: token})
    for number in range(requests):
        status = call_wsgi(apps[number % workers].wsgi_app, environ)
        assert status.startswith("200"), status
    return server.calls[IDENTITY]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--minutes", type=int, default=10)
    args = parser.parse_args()
    quiet_logs()
    clock = Clock(1_800_000_000.0)
    with AccessIssuer(clock=clock).serve() as server:
        report(server, clock, args)


def report(server: StandInServer, clock: Clock, args: argparse.Namespace) -> None:
    """Run both scenarios, with and without a shared cache, and print the counts."""

    print(describe_machine())
    print(
        f"{args.requests} requests, {args.workers} workers, "
        f"unknown-kid flood over {args.minutes} simulated minutes\n"
    )
    print("Certs fetches under a flood of unknown kids")
    for shared in (True, False):
        fetched, bound = flood(server, clock, args.workers, shared, args.requests, args.minutes)
        label = "shared cache" if shared else "no shared cache"
        print(
            f"  {label:16s} {fetched:5d} fetches for {args.requests} requests "
            f"(bound {bound}; {fetched / args.requests:.5f} per request)"
        )
    print("\nIdentity fetches for one user on a group-gated route")
    for shared in (True, False):
        fetched = identity(server, clock, args.workers, shared, args.requests)
        label = "shared cache" if shared else "no shared cache"
        print(f"  {label:16s} {fetched:5d} fetches for {args.requests} requests")


if __name__ == "__main__":
    main()
