"""Microseconds per request, in-process: a posture rule against a group rule.

    python benchmarks/bench_context.py [--requests 2000] [--rounds 15]

Calls ``app.wsgi_app`` directly with a prepared environ for three views of
one repeat token: one needing a verified token only, one a group
(``@require_group``), one a passed device posture check and MFA
(``@require_context``), judged on a profile no older than
``CF_ACCESS_PROFILE_MAX_AGE``. Groups and profile come from one get-identity
answer, had before the rounds; within the freshness window a repeat request
asks nothing, so what is measured is the judging. Every variant runs once
per round, in turn; the figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from _support import (
    call_wsgi,
    check_python,
    describe_machine,
    interleaved,
    median,
    prepared_environ,
    spread,
)

check_python()

from flask import Flask  # noqa: E402

from flask_cf_access import (  # noqa: E402
    TOKEN_HEADER,
    CloudflareAccess,
    require_access,
    require_context,
    require_group,
)
from flask_cf_access.testing import AccessIssuer, identity_profile  # noqa: E402

DISK = "f6f9391e-6776-4878-9c60-0cc807dc7dc8"
#: The clock stands still, so the freshness window never ends during the rounds.
NOW = 1_800_000_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    issuer = AccessIssuer(clock=lambda: NOW)
    app = Flask("bench")
    app.config.update(issuer.settings())
    CloudflareAccess(app, session=issuer.session(), clock=lambda: NOW)

    @app.get("/token")
    @require_access
    def token_only() -> str:
        return "ok"

    @app.get("/group")
    @require_group("Admins")
    def group() -> str:
        return "ok"

    @app.get("/posture")
    @require_context(posture=[DISK], mfa=True)
    def posture() -> str:
        return "ok"

    token = issuer.user_token(
        "ada@example.com",
        ["Admins"],
        profile=identity_profile(amr=["pwd", "hwk"], posture={DISK: True}),
    )
    paths = ("/token", "/group", "/posture")
    environs = {path: prepared_environ(path, {TOKEN_HEADER: token}) for path in paths}
    for environ in environs.values():
        assert call_wsgi(app.wsgi_app, environ).startswith("200")
    n: int = args.requests

    def requests_to(path: str) -> Callable[[], Callable[[], int]]:
        environ = environs[path]

        def prepare() -> Callable[[], int]:
            def run() -> int:
                for _ in range(n):
                    call_wsgi(app.wsgi_app, environ)
                return n

            return run

        return prepare

    print(describe_machine())
    print(f"{n} requests per variant per round, {args.rounds} rounds, interleaved\n")
    names = {
        "token only": "/token",
        "group rule": "/group",
        "posture and MFA rule": "/posture",
    }
    results = interleaved({name: requests_to(path) for name, path in names.items()}, args.rounds)
    medians: dict[str, float] = {}
    print("Requests (app.wsgi_app, prepared environ, repeat token, identity had)")
    for name, values in results.items():
        medians[name] = median(values)
        print(f"  {name:24s} {medians[name]:8.1f} µs   ({spread(values)})")
    base = medians["token only"]
    group_cost = medians["group rule"] - base
    posture_cost = medians["posture and MFA rule"] - base
    print("\nAdded over a verified token alone")
    print(f"  group rule:            {group_cost:6.1f} µs")
    print(f"  posture and MFA rule:  {posture_cost:6.1f} µs")
    ratio = medians["posture and MFA rule"] / medians["group rule"]
    print(f"  posture / group rule:  {ratio:.3f}x")


if __name__ == "__main__":
    main()
