"""What refusing junk costs: a made-up ``kid`` against a bad RSA signature.

    python benchmarks/bench_junk.py [--tokens 200] [--rounds 15]

Both refusals go through the verifier of a real checker. A made-up ``kid``
names no published key; once its one forced fetch is spent (the least
refresh interval has not passed), each such token must be refused without a
fetch, a lock, a shared-cache read or a key import, so it should cost no more
than a token whose signature does not verify (one RSA check). Measured with 2
and with 100 published keys; the figures are medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
from collections.abc import Callable
from typing import Any

import requests
from _support import check_python, describe_machine, interleaved, median, quiet_logs, spread

check_python()

from flask_cf_access import AccessUnauthorized, Reason  # noqa: E402
from flask_cf_access._core.assembly import checker_from_mapping  # noqa: E402
from flask_cf_access._core.checker import AccessChecker  # noqa: E402
from flask_cf_access.testing import AccessIssuer, SigningKey  # noqa: E402


class CertsAdapter(requests.adapters.BaseAdapter):
    """Answers every request with a certs document, in process."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__()
        self._body = json.dumps(document).encode()

    def send(  # type: ignore[override]  # no request here needs the other arguments
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.url = request.url or ""
        response.request = request
        response.raw = _Raw(self._body)
        return response

    def close(self) -> None:
        pass


class _Raw:
    """Just enough of a urllib3 response for ``iter_content``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, amount: int, decode_content: bool = False) -> Any:
        yield self._body

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def gate_publishing(issuer: AccessIssuer, count: int) -> AccessChecker:
    """A checker whose team publishes the issuer's key and ``count - 1`` copies under other kids."""
    document = issuer.certs()
    (jwk,) = document["keys"]
    document["keys"] = [jwk, *({**jwk, "kid": f"extra-{index}"} for index in range(count - 1))]
    session = requests.Session()
    session.mount("https://", CertsAdapter(document))
    return checker_from_mapping(issuer.settings(), session=session)


def refusals(
    checker: AccessChecker, tokens: list[str], reason: Reason
) -> Callable[[], Callable[[], int]]:
    def prepare() -> Callable[[], int]:
        def run() -> int:
            for token in tokens:
                try:
                    checker.verifier.verify(token)
                except AccessUnauthorized as refusal:
                    if refusal.reason is not reason:
                        raise RuntimeError(f"refused for {refusal.reason}, not {reason}") from None
                else:
                    raise RuntimeError("a junk token passed")
            return len(tokens)

        return run

    return prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200, help="tokens of each kind per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    quiet_logs()

    issuer = AccessIssuer()
    stranger = SigningKey.generate()
    made_up = [
        issuer.mint(header={"alg": "RS256", "kid": secrets.token_hex(32)})
        for _ in range(args.tokens)
    ]
    # The team's kid, a stranger's signature: refused by the RSA check.
    bad_signature = [
        issuer.mint(key=stranger, header={"alg": "RS256", "kid": issuer.signing_key.kid})
        for _ in range(args.tokens)
    ]
    variants = {}
    for count in (2, 100):
        checker = gate_publishing(issuer, count)
        with contextlib.suppress(AccessUnauthorized):  # spend the interval's forced fetch
            checker.verifier.verify(made_up[0])
        variants[f"made-up kid, {count} keys"] = refusals(checker, made_up, Reason.UNKNOWN_KID)
        variants[f"bad signature, {count} keys"] = refusals(
            checker, bad_signature, Reason.BAD_SIGNATURE
        )
    results = interleaved(variants, args.rounds)

    print(describe_machine())
    print(f"{args.tokens} tokens of each kind per round, {args.rounds} interleaved rounds\n")
    for name, values in results.items():
        print(f"  {name:28s} {median(values):8.1f} µs per refusal   ({spread(values)})")
    print()
    for count in (2, 100):
        ratio = median(results[f"made-up kid, {count} keys"]) / median(
            results[f"bad signature, {count} keys"]
        )
        print(f"  unknown-kid / bad-signature refusal cost, {count} keys: {ratio:.2f}x")


if __name__ == "__main__":
    main()
