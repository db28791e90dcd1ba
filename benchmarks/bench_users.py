"""Microseconds per request, in-process: what the user loader adds to a protected view.

    python benchmarks/bench_users.py [--requests 2000] [--rounds 15]

Calls ``app.wsgi_app`` directly with a prepared environ (no test client, no
HTTP) for the same protected view twice: once answering from the identity
(``current_identity.email``: the loader never runs), once from the app's user
(``current_user.email``: the loader, an in-memory dict lookup, runs once per
request). The token is a repeat one, so verification is the cheap cache hit
both times and the difference is the loader's plumbing. Every variant runs
once per round, in turn; the figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

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
    AccessIdentity,
    CloudflareAccess,
    current_identity,
    current_user,
    require_access,
)
from flask_cf_access.testing import AccessIssuer  # noqa: E402


@dataclass(frozen=True)
class Account:
    """The app's own user."""

    email: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    issuer = AccessIssuer()
    app = Flask("bench")
    app.config.update(issuer.settings())
    cf_access = CloudflareAccess(app, session=issuer.session())
    accounts = {"ada@example.com": Account("ada@example.com")}

    @cf_access.user_loader
    def load_user(identity: AccessIdentity) -> Account | None:
        return accounts.get(identity.email or "")

    @app.get("/identity")
    @require_access
    def from_identity() -> str:
        return str(current_identity.email)

    @app.get("/user")
    @require_access
    def from_user() -> str:
        return str(current_user.email)

    token = issuer.user_token("ada@example.com")
    environs = {
        path: prepared_environ(path, {TOKEN_HEADER: token}) for path in ("/identity", "/user")
    }
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
    results = interleaved(
        {
            "protected view, identity only": requests_to("/identity"),
            "protected view, current_user via loader": requests_to("/user"),
        },
        args.rounds,
    )
    medians: dict[str, float] = {}
    print("Requests (app.wsgi_app, prepared environ, repeat token)")
    for name, values in results.items():
        medians[name] = median(values)
        print(f"  {name:42s} {medians[name]:8.1f} µs   ({spread(values)})")
    with_loader = medians["protected view, current_user via loader"]
    without = medians["protected view, identity only"]
    print("\nRatio")
    print(f"  current_user via loader / identity only:    {with_loader / without:.3f}x")
    print(f"  added per request:                          {with_loader - without:.1f} µs")


if __name__ == "__main__":
    main()
