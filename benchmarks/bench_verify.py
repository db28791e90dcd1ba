"""Microseconds per request, in-process: what verifying a token costs a Flask view.

    python benchmarks/bench_verify.py [--tokens 1000] [--rounds 21] [--clock cpu|wall]

Calls ``app.wsgi_app`` directly with a prepared environ (no test client, no
HTTP), for a bare view and for the same view under ``@require_access``, with a
repeat token (the verified-token cache) and with first-seen tokens (a full
verification each), and under ``@require_role("admin")`` with the repeat token
(roles resolved once per token). Beside them: ``TokenVerifier.verify`` alone on first-seen
tokens, and the raw ``cryptography`` RS256 verification of the same tokens
(base64url-decoding the signature, then ``RSAPublicKey.verify``), which no
verifier can beat; and a view that does that raw work itself on first-seen
tokens, inside the request (base64url, JSON, RSA verify, exp/aud/iss), the
limit a protected view with first-seen tokens is measured against. Every
variant runs once per round, in turn (the order rotated each round); the
figures are medians over the rounds.
By default each is timed with the CPU time of the benchmark's thread, which
time given to other processes does not inflate (``--clock wall`` for the wall
clock).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from collections.abc import Callable

from _support import (
    CLOCKS,
    call_wsgi,
    check_python,
    describe_machine,
    interleaved,
    median,
    paired_ratios,
    prepared_environ,
    spread,
)

check_python()

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from flask import Flask, abort, request  # noqa: E402

from flask_cf_access import (  # noqa: E402
    TOKEN_HEADER,
    CloudflareAccess,
    require_access,
    require_role,
)
from flask_cf_access._core.checker import AccessChecker  # noqa: E402
from flask_cf_access._flask.app_state import access_state  # noqa: E402
from flask_cf_access.testing import AccessIssuer  # noqa: E402


def fresh_copies(tokens: list[str]) -> list[str]:
    """New string objects equal to ``tokens``, so no hash is already computed."""
    return [(token + ".")[:-1] for token in tokens]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000, help="first-seen tokens per round")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="thread CPU time or wall clock"
    )
    args = parser.parse_args()

    issuer = AccessIssuer()
    app = Flask("bench")
    app.config.update(issuer.settings(CF_ACCESS_ROLES={"admin": ["Admins"]}))
    CloudflareAccess(app, session=issuer.session())

    @app.get("/bare")
    def bare() -> str:
        return "ok"

    @app.get("/protected")
    @require_access
    def protected() -> str:
        return "ok"

    @app.get("/role")
    @require_role("admin")
    def role() -> str:
        return "ok"

    public_key = issuer.signing_key.private_key.public_key()
    pad, sha256 = padding.PKCS1v15(), hashes.SHA256()
    audience, issuer_url = issuer.audience, issuer.issuer

    def b64url(segment: str) -> bytes:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))

    @app.get("/raw")
    def raw() -> str:
        """The raw cryptography work on the request's token, and nothing else."""
        token = request.headers.get(TOKEN_HEADER)
        if token is None:
            abort(401)
        signing_input, _, signature = token.rpartition(".")
        claims = json.loads(b64url(signing_input.partition(".")[2]))
        public_key.verify(b64url(signature), signing_input.encode(), pad, sha256)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if claims["exp"] <= time.time() or audience not in audiences:
            abort(401)
        if claims["iss"] != issuer_url:
            abort(401)
        return "ok"

    checker: AccessChecker = access_state(app).checker
    verifier = checker.verifier
    repeat = issuer.user_token("ada@example.com", ["Admins"])
    print(f"Minting {args.tokens} tokens...", flush=True)
    tokens = [issuer.user_token(f"user{number}@example.com") for number in range(args.tokens)]
    n = len(tokens)

    bare_environ = prepared_environ("/bare", {TOKEN_HEADER: repeat})
    repeat_environ = prepared_environ("/protected", {TOKEN_HEADER: repeat})
    role_environ = prepared_environ("/role", {TOKEN_HEADER: repeat})
    for environ in (bare_environ, repeat_environ, role_environ):
        assert call_wsgi(app.wsgi_app, environ).startswith("200")

    def bare_requests() -> Callable[[], int]:
        def run() -> int:
            for _ in range(n):
                call_wsgi(app.wsgi_app, bare_environ)
            return n

        return run

    def repeat_requests() -> Callable[[], int]:
        def run() -> int:
            for _ in range(n):
                call_wsgi(app.wsgi_app, repeat_environ)
            return n

        return run

    def role_requests() -> Callable[[], int]:
        def run() -> int:
            for _ in range(n):
                call_wsgi(app.wsgi_app, role_environ)
            return n

        return run

    def first_seen_requests() -> Callable[[], int]:
        verifier.cache.clear()
        environs = [
            {**repeat_environ, "HTTP_CF_ACCESS_JWT_ASSERTION": token}
            for token in fresh_copies(tokens)
        ]

        def run() -> int:
            for environ in environs:
                call_wsgi(app.wsgi_app, environ)
            verifier.verify(repeat)  # remembered again, for the repeat variants
            return n

        return run

    def raw_first_seen_requests() -> Callable[[], int]:
        raw_environ = prepared_environ("/raw", {TOKEN_HEADER: repeat})
        assert call_wsgi(app.wsgi_app, raw_environ).startswith("200")
        environs = [
            {**raw_environ, "HTTP_CF_ACCESS_JWT_ASSERTION": token} for token in fresh_copies(tokens)
        ]

        def run() -> int:
            for environ in environs:
                call_wsgi(app.wsgi_app, environ)
            return n

        return run

    def first_seen_verify() -> Callable[[], int]:
        verifier.cache.clear()
        fresh = fresh_copies(tokens)

        def run() -> int:
            for token in fresh:
                verifier.verify(token)
            verifier.verify(repeat)
            return n

        return run

    def repeat_verify() -> Callable[[], int]:
        def run() -> int:
            for _ in range(n):
                verifier.verify(repeat)
            return n

        return run

    def raw_rs256() -> Callable[[], int]:
        fresh = fresh_copies(tokens)

        def run() -> int:
            for token in fresh:
                signing_input, _, signature = token.rpartition(".")
                public_key.verify(
                    base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                    signing_input.encode(),
                    pad,
                    sha256,
                )
            return n

        return run

    print(describe_machine())
    print(
        f"{n} operations per variant per round, {args.rounds} rounds, interleaved,"
        f" timed by the {'thread CPU time' if args.clock == 'cpu' else 'wall clock'}\n"
    )
    # Like is compared with like: the WSGI requests interleaved with each
    # other, then the verifications with the raw check, so that neither group
    # runs on caches the other just filled with its own code and data.
    groups = {
        "Requests (app.wsgi_app, prepared environ)": {
            "bare view": bare_requests,
            "protected view, repeat token": repeat_requests,
            "role view, repeat token": role_requests,
            "protected view, first-seen token": first_seen_requests,
            "raw-work view, first-seen token": raw_first_seen_requests,
        },
        "Verifications": {
            "TokenVerifier.verify, first-seen": first_seen_verify,
            "TokenVerifier.verify, repeat": repeat_verify,
            "raw cryptography RS256 verify": raw_rs256,
        },
    }
    rounds: dict[str, list[float]] = {}
    for title, variants in groups.items():
        print(title)
        results = interleaved(variants, args.rounds, CLOCKS[args.clock])
        for name, values in results.items():
            rounds[name] = values
            print(f"  {name:34s} {median(values):8.1f} µs   ({spread(values)})")
        print()

    # (label, numerator, denominator, target): each the median of the ratios
    # of the two variants round by round, to three places, so that one just
    # over its target does not print as on it.
    ratios: list[tuple[str, str, str, float | None]] = [
        (
            "first-seen verify / raw RS256 verify",
            "TokenVerifier.verify, first-seen",
            "raw cryptography RS256 verify",
            1.50,
        ),
        ("protected repeat / bare view", "protected view, repeat token", "bare view", 1.10),
        ("role-protected repeat / bare view", "role view, repeat token", "bare view", 1.10),
        ("protected first-seen / bare view", "protected view, first-seen token", "bare view", None),
        (
            "protected first-seen / raw-work view",
            "protected view, first-seen token",
            "raw-work view, first-seen token",
            1.15,
        ),
        (
            "repeat verify / first-seen verify",
            "TokenVerifier.verify, repeat",
            "TokenVerifier.verify, first-seen",
            None,
        ),
    ]
    print("Ratios (median over the rounds of each round's ratio)")
    for label, top, bottom, target in ratios:
        per_round = paired_ratios(rounds[top], rounds[bottom])
        value = median(per_round)
        verdict = ""
        if target is not None:
            verdict = f"   (target <= {target:.2f}x: {'met' if value <= target else 'MISSED'})"
        quartiles = statistics.quantiles(per_round, n=4)
        print(
            f"  {label + ':':44s} {value:.3f}x"
            f"  (IQR {quartiles[0]:.3f}-{quartiles[2]:.3f}){verdict}"
        )


if __name__ == "__main__":
    main()
