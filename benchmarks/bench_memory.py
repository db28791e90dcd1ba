"""Peak memory while 100,000 distinct valid tokens are verified, against the cache's bound.

    python benchmarks/bench_memory.py [--tokens 100000] [--size 4096]

Tokens are minted (RSA signing is the slow part) by two helper processes and
streamed to this one, which verifies each once through ``AccessChecker.check``
with ``CF_ACCESS_TOKEN_CACHE_SIZE=--size``. ``tracemalloc`` traces this
process only, from just before the first token: the memory held after the
cache filled up must stay flat however many more tokens come, and the peak
must stay near ``size`` times the cost of one entry.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import tracemalloc
from typing import Any

from _support import check_python, describe_machine

check_python()

from cryptography.hazmat.primitives import serialization  # noqa: E402

from flask_cf_access import AccessSettings  # noqa: E402
from flask_cf_access._core.assembly import build_checker  # noqa: E402
from flask_cf_access.testing import AccessIssuer, SigningKey, encode_token  # noqa: E402

CHUNK = 500
_signer: dict[str, Any] = {}


def _start_minting(pem: bytes, kid: str, claims: dict[str, Any]) -> None:
    key = serialization.load_pem_private_key(pem, password=None)
    _signer["key"] = SigningKey(private_key=key, kid=kid, certificate_pem="")  # type: ignore[arg-type]
    _signer["claims"] = claims


def _mint_chunk(chunk: int) -> list[str]:
    key: SigningKey = _signer["key"]
    claims: dict[str, Any] = _signer["claims"]
    header = {"alg": "RS256", "kid": key.kid}
    return [
        encode_token(header, {**claims, "email": f"user{chunk}-{number}@example.com"}, key)
        for number in range(CHUNK)
    ]


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:6.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=4096, help="CF_ACCESS_TOKEN_CACHE_SIZE")
    args = parser.parse_args()
    chunks = max(1, args.tokens // CHUNK)
    total = chunks * CHUNK

    issuer = AccessIssuer()
    checker = build_checker(
        AccessSettings.from_mapping(issuer.settings(CF_ACCESS_TOKEN_CACHE_SIZE=args.size)),
        session=issuer.session(),
    )
    checker.keys.preload()
    now = int(time.time())
    claims = {
        "aud": [issuer.audience],
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "iss": issuer.issuer,
        "type": "app",
        "sub": "0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7",
        "identity_nonce": "6ei69kawdKzMIAPF",
        "country": "XX",
    }
    pem = issuer.signing_key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    print(describe_machine())
    print(f"{total} distinct valid tokens, CF_ACCESS_TOKEN_CACHE_SIZE={args.size}\n", flush=True)

    checkpoints = sorted({min(total, point) for point in (args.size, 10_000, total // 2, total)})
    held: dict[int, int] = {}
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with context.Pool(
        2, initializer=_start_minting, initargs=(pem, issuer.signing_key.kid, claims)
    ) as pool:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        seen = 0
        for tokens in pool.imap(_mint_chunk, range(chunks)):
            for token in tokens:
                checker.authenticate(token, None)
                seen += 1
                if seen in checkpoints:
                    held[seen] = tracemalloc.get_traced_memory()[0] - baseline
                assert len(checker.verifier.cache) <= args.size
            del tokens
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
    elapsed = time.perf_counter() - started

    entries = len(checker.verifier.cache)
    print(f"  tokens verified             {seen}")
    print(f"  entries in the token cache  {entries} (bound {args.size})")
    for point in checkpoints:
        print(f"  held after {point:>7} tokens  {megabytes(held[point])}")
    per_entry = held[total] / entries if entries else 0.0
    print(f"  peak during the run         {megabytes(peak)}")
    print(f"  held per cache entry        {per_entry / 1024:6.2f} KB")
    if entries:
        growth = held[total] / held[checkpoints[0]]
        print(f"  held at {total} / held at {checkpoints[0]}:  {growth:.2f}x (flat once full)")
        print(
            f"  peak / (bound x per-entry): {peak / (args.size * per_entry):.2f}x "
            "(the rest: minted tokens in flight, per-request garbage)"
        )
    print(f"\n  ({elapsed:.0f} s, mostly RSA signing in the helper processes)")


if __name__ == "__main__":
    main()
