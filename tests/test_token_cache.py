"""The verified-token cache and the lean first-seen path: faster, and refusing the same."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import math
import re
import string
import threading
from collections.abc import Callable, Mapping
from functools import partial
from importlib.metadata import version
from typing import Any

import pytest
from flask import Flask
from hypothesis import example, given, settings
from hypothesis import strategies as st
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidClaimError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry
from joserfc.util import urlsafe_b64decode

from flask_cf_access import AccessSettings, AccessUnauthorized, Reason
from flask_cf_access._core import verifier as verifier_module
from flask_cf_access._core.assembly import build_checker
from flask_cf_access._core.checker import AccessChecker
from flask_cf_access._core.claims import MAX_NUMERIC_DATE, ClaimsPolicy
from flask_cf_access._core.token_cache import TokenCache, VerifiedToken
from flask_cf_access._core.tokens import (
    check_token_shape,
    decode_segment,
    read_unverified_header,
)
from flask_cf_access.testing import AccessIssuer, SigningKey, capture_access, run_inline

from .conftest import AppFactory
from .support import START, FrozenClock, bearer, reason_of


def make_gate(issuer: AccessIssuer, clock: FrozenClock, **config: Any) -> AccessChecker:
    """A checker trusting ``issuer``, answered in-process, on the frozen clock."""
    settings = AccessSettings.from_mapping(issuer.settings(**config))
    return build_checker(settings, session=issuer.session(), clock=clock, background=run_inline)


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every header read and every signature check the verifier makes, in turn."""
    checks: list[str] = []
    read_header = read_unverified_header
    payload = verifier_module._KeyVerifier.payload

    def counted_read_header(segment: bytes) -> dict[str, Any]:
        checks.append("header read")
        return read_header(segment)

    def counted_payload(self: Any, *args: bytes) -> bytes:
        checks.append("signature")
        return payload(self, *args)

    monkeypatch.setattr(verifier_module, "read_unverified_header", counted_read_header)
    monkeypatch.setattr(verifier_module._KeyVerifier, "payload", counted_payload)
    return checks


# -- the cache ---------------------------------------------------------------


def test_repeat_token_skips_the_signature(
    issuer: AccessIssuer, clock: FrozenClock, signature_checks: list[str]
) -> None:
    """A token verified once is not signature-checked again, and gives the same claims."""
    checker = make_gate(issuer, clock)
    token = issuer.user_token("ada@example.com")
    first = checker.verifier.verify(token)
    assert signature_checks == ["header read", "signature"]
    assert checker.verifier.verify(token) is first
    assert checker.verifier.verify(token) is first
    assert signature_checks == ["header read", "signature"]


def test_first_seen_tokens_share_the_known_header(
    issuer: AccessIssuer, clock: FrozenClock, signature_checks: list[str]
) -> None:
    """Distinct tokens of one key are each signature-checked, the header parsed only once."""
    checker = make_gate(issuer, clock)
    for name in ("ada", "grace", "edsger"):
        checker.verifier.verify(issuer.user_token(f"{name}@example.com"))
    assert signature_checks == ["header read", "signature", "signature", "signature"]


def test_protected_view_repeat_token(
    make_app: AppFactory, issuer: AccessIssuer, signature_checks: list[str]
) -> None:
    """Through Flask, the second request of a token reaches the view without a signature check."""
    client = make_app().test_client()
    token = issuer.user_token("ada@example.com")
    assert (
        client.get("/", headers=bearer(token)).json == client.get("/", headers=bearer(token)).json
    )
    assert signature_checks.count("signature") == 1


def test_keyed_by_the_whole_token(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A token that differs from a remembered one only in its signature is checked, and refused."""
    checker = make_gate(issuer, clock)
    token = issuer.user_token("ada@example.com")
    checker.verifier.verify(token)
    signing_input, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    flipped = "B" if signature[middle] == "A" else "A"
    for forged_signature in (
        b64(bytes(256)),
        signature[:middle] + flipped + signature[middle + 1 :],
    ):
        forged = f"{signing_input}.{forged_signature}"
        assert reason_of(partial(checker.verifier.verify, forged)) == Reason.BAD_SIGNATURE
    assert len(checker.verifier.cache) == 1


def test_expiry_checked_on_every_hit(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A remembered token expires on time (with the leeway), and is then forgotten."""
    checker = make_gate(issuer, clock)
    token = issuer.mint(lifetime=60)
    checker.verifier.verify(token)
    clock.advance(60 + 29)
    assert reason_of(lambda: checker.verifier.verify(token)) is None
    clock.advance(2)
    assert reason_of(lambda: checker.verifier.verify(token)) == Reason.EXPIRED
    assert token not in checker.verifier.cache


def test_not_before_checked_on_every_hit(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A clock that steps back before nbf (past the leeway) refuses a remembered token."""
    checker = make_gate(issuer, clock)
    token = issuer.mint({"iat": START - 100})  # only nbf is ahead of the stepped-back clock
    checker.verifier.verify(token)
    clock.now = START - 31
    assert reason_of(lambda: checker.verifier.verify(token)) == Reason.NOT_YET_VALID
    assert token not in checker.verifier.cache


def test_max_age_checked_on_every_hit(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """CF_ACCESS_MAX_TOKEN_AGE ends a remembered token's life as it does a new one's."""
    checker = make_gate(issuer, clock, CF_ACCESS_MAX_TOKEN_AGE=300)
    token = issuer.mint()
    checker.verifier.verify(token)
    clock.advance(300 + 30)
    assert reason_of(lambda: checker.verifier.verify(token)) is None
    clock.advance(1)
    assert reason_of(lambda: checker.verifier.verify(token)) == Reason.TOKEN_TOO_OLD


@pytest.mark.parametrize("refetch", ["set grown stale", "unknown kid"])
def test_removed_key_ends_remembered_tokens(
    issuer: AccessIssuer, clock: FrozenClock, refetch: str
) -> None:
    """Once a fetch shows a key gone, tokens it signed are refused even if remembered.

    The set is fetched again once it is stale, or sooner for a token of an unknown kid.
    """
    checker = make_gate(issuer, clock)
    old_token = issuer.user_token("ada@example.com")
    checker.verifier.verify(old_token)
    issuer.rotate()
    issuer.drop_previous()
    new_token = issuer.user_token("grace@example.com")
    assert reason_of(lambda: checker.verifier.verify(old_token)) is None  # the set is still fresh
    if refetch == "set grown stale":
        clock.advance(900)  # CF_ACCESS_KEYS_MAX_AGE: the next use fetches the set again
    else:
        clock.advance(60)  # CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL: a new kid may force a fetch
        assert reason_of(lambda: checker.verifier.verify(new_token)) is None
    assert reason_of(lambda: checker.verifier.verify(old_token)) == Reason.UNKNOWN_KID
    assert old_token not in checker.verifier.cache
    assert reason_of(lambda: checker.verifier.verify(new_token)) is None


def test_rotation_keeps_tokens_of_the_previous_key(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """While the previous key is still published, its remembered tokens still pass."""
    checker = make_gate(issuer, clock)
    token = issuer.user_token("ada@example.com")
    checker.verifier.verify(token)
    issuer.rotate()
    clock.advance(900)
    assert reason_of(lambda: checker.verifier.verify(token)) is None


def test_remembered_token_takes_up_a_refetched_set(
    issuer: AccessIssuer, clock: FrozenClock, signature_checks: list[str]
) -> None:
    """After a refetch that still publishes its key, a remembered token needs no look-up again."""
    checker = make_gate(issuer, clock)
    token = issuer.user_token("ada@example.com")
    entry = checker.verifier.verify_entry(token)
    first_set = checker.keys.current
    assert entry.keyset is first_set
    clock.advance(900)
    assert checker.verifier.verify_entry(token) is entry
    assert checker.keys.current is not first_set
    assert entry.keyset is checker.keys.current
    assert signature_checks == ["header read", "signature"]


def test_expiry_beyond_floats_is_refused_not_remembered(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """An exp too large for a float is refused as malformed, and not remembered."""
    checker = make_gate(issuer, clock)
    token = issuer.mint({"exp": 10**400})
    assert reason_of(lambda: checker.verifier.verify(token)) == Reason.MALFORMED_CLAIMS
    assert token not in checker.verifier.cache


@pytest.mark.parametrize(
    "claims",
    [{"exp": START - 120}, {"aud": ["another-app"]}, {"iss": "https://other.example"}],
)
def test_refused_tokens_are_not_remembered(
    issuer: AccessIssuer, clock: FrozenClock, claims: dict[str, Any]
) -> None:
    """A token that fails any check leaves nothing in the cache."""
    checker = make_gate(issuer, clock)
    token = issuer.mint(claims)
    assert reason_of(lambda: checker.verifier.verify(token)) is not None
    assert len(checker.verifier.cache) == 0


def test_badly_signed_token_not_remembered(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A stranger's signature is refused every time, never remembered."""
    checker = make_gate(issuer, clock)
    stranger = SigningKey.generate()
    token = issuer.mint(header={"alg": "RS256", "kid": issuer.signing_key.kid}, key=stranger)
    for _ in range(2):
        assert reason_of(lambda: checker.verifier.verify(token)) == Reason.BAD_SIGNATURE
    assert len(checker.verifier.cache) == 0


def test_size_zero_disables_the_cache(
    issuer: AccessIssuer, clock: FrozenClock, signature_checks: list[str]
) -> None:
    """CF_ACCESS_TOKEN_CACHE_SIZE=0 checks the signature of every request."""
    checker = make_gate(issuer, clock, CF_ACCESS_TOKEN_CACHE_SIZE=0)
    token = issuer.user_token("ada@example.com")
    for _ in range(3):
        checker.verifier.verify(token)
    assert signature_checks.count("signature") == 3
    assert len(checker.verifier.cache) == 0


def test_distinct_tokens_stay_within_the_bound(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """However many distinct valid tokens come, the cache holds at most its size."""
    checker = make_gate(issuer, clock, CF_ACCESS_TOKEN_CACHE_SIZE=8)
    tokens = [issuer.user_token(f"user{number}@example.com") for number in range(40)]
    for token in tokens:
        checker.verifier.verify(token)
        assert len(checker.verifier.cache) <= 8
    assert len(checker.verifier.cache) == 8
    assert all(token in checker.verifier.cache for token in tokens[-8:])


def test_cache_bound_over_a_hundred_thousand_tokens() -> None:
    """100,000 distinct entries leave exactly max_size of them, the most recent."""
    cache = TokenCache(1000)
    claims: Mapping[str, Any] = {}
    for number in range(100_000):
        cache.put(f"token-{number}", VerifiedToken("kid", claims))
    assert len(cache) == 1000
    assert "token-99999" in cache
    assert "token-98999" not in cache


def test_the_token_verified_longest_ago_goes_first() -> None:
    """A hit changes nothing (it takes no lock); a token verified again is the newest."""
    cache = TokenCache(2)
    entry = VerifiedToken("kid", {})
    cache.put("a", entry)
    cache.put("b", entry)
    assert cache.get("a") is entry
    cache.put("c", entry)
    assert list(cache) == ["b", "c"]
    cache.put("b", entry)
    cache.put("d", entry)
    assert list(cache) == ["b", "d"]


def test_the_cache_never_shows_its_tokens() -> None:
    """Its repr, which logs and tracebacks print, counts the tokens and names none."""
    cache = TokenCache(4)
    cache.put("eyJhbGciOiJSUzI1NiJ9.secret.signature", VerifiedToken("kid", {}))
    assert repr(cache) == "<TokenCache 1 of 4 tokens>"
    assert "secret" not in str(cache)


def test_cache_is_thread_safe() -> None:
    """Threads putting and getting at once never break the bound or lose a fresh entry."""
    cache = TokenCache(64)
    entry = VerifiedToken("kid", {})
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(worker: int) -> None:
        try:
            start.wait()
            for number in range(5000):
                token = f"{worker}-{number}"
                cache.put(token, entry)
                cache.get(f"{worker}-{number - 1}")
                assert len(cache) <= 64  # room is made before an entry goes in
        except BaseException as exc:  # collected and re-raised in the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) == 64


def test_negative_size_refused() -> None:
    """A TokenCache cannot be built with a negative size."""
    with pytest.raises(ValueError, match="max_size"):
        TokenCache(-1)


# -- every reason stays, on a cold verifier and on a warm one -------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(issuer: AccessIssuer, header: dict[str, Any], payload: bytes) -> str:
    """A token of arbitrary payload bytes, genuinely signed by the team's key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing_input}.{b64(issuer.signing_key.sign(signing_input.encode()))}"


def non_canonical(segment: str) -> str:
    """The same bytes spelled with unused low bits set in the last character."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    assert len(segment) % 4 in (2, 3)
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


def non_canonical_payload_token(issuer: AccessIssuer) -> str:
    """A token signed over a payload segment spelled non-canonically."""
    header = {"alg": "RS256", "kid": issuer.signing_key.kid}
    for filler in range(4):
        claims = json.loads(base64.urlsafe_b64decode(issuer.mint().split(".")[1] + "==")) | {
            "x": "x" * filler
        }
        segment = b64(json.dumps(claims).encode())
        if len(segment) % 4 in (2, 3):
            signing_input = f"{b64(json.dumps(header).encode())}.{non_canonical(segment)}"
            signature = b64(issuer.signing_key.sign(signing_input.encode()))
            return f"{signing_input}.{signature}"
    raise AssertionError("no filler gave a padded segment")


def bad_tokens(issuer: AccessIssuer) -> dict[str, tuple[str, Reason]]:
    """Tokens broken in each way the verifier tells apart, with the reason expected."""
    kid = issuer.signing_key.kid
    good = issuer.user_token("ada@example.com")
    head, claims, signature = good.split(".")
    stranger = SigningKey.generate()
    return {
        "too large": ("a" * 20_000, Reason.TOKEN_TOO_LARGE),
        "two segments": (f"{head}.{claims}", Reason.MALFORMED_TOKEN),
        "four segments": (f"{good}.{signature}", Reason.MALFORMED_TOKEN),
        "header not json": (f"{b64(b'nope')}.{claims}.{signature}", Reason.MALFORMED_TOKEN),
        "header a list": (f"{b64(b'[1]')}.{claims}.{signature}", Reason.MALFORMED_TOKEN),
        "alg HS256": (issuer.mint(header={"alg": "HS256", "kid": kid}), Reason.BAD_ALGORITHM),
        "alg none": (issuer.mint(header={"alg": "none", "kid": kid}), Reason.BAD_ALGORITHM),
        "crit": (
            issuer.mint(header={"alg": "RS256", "kid": kid, "crit": ["exp"], "exp": 1}),
            Reason.CRITICAL_HEADER,
        ),
        "no kid": (issuer.mint(header={"alg": "RS256"}), Reason.MISSING_KID),
        "unknown kid": (issuer.mint(key=stranger), Reason.UNKNOWN_KID),
        "unsupported header member": (
            issuer.mint(header={"alg": "RS256", "kid": kid, "foo": "bar"}),
            Reason.MALFORMED_TOKEN,
        ),
        "header too long": (
            issuer.mint(header={"alg": "RS256", "kid": kid, "typ": "x" * 600}),
            Reason.MALFORMED_TOKEN,
        ),
        "b64 false": (
            issuer.mint(header={"alg": "RS256", "kid": kid, "b64": False}),
            Reason.MALFORMED_TOKEN,
        ),
        "stranger's signature": (
            issuer.mint(header={"alg": "RS256", "kid": kid}, key=stranger),
            Reason.BAD_SIGNATURE,
        ),
        "tampered claims": (
            f"{head}.{b64(json.dumps({'email': 'root@example.com'}).encode())}.{signature}",
            Reason.BAD_SIGNATURE,
        ),
        "non-canonical signature": (
            f"{head}.{claims}.{non_canonical(signature)}",
            Reason.BAD_SIGNATURE,
        ),
        "signature too long": (f"{head}.{claims}.{'A' * 1100}", Reason.MALFORMED_TOKEN),
        "non-canonical payload": (non_canonical_payload_token(issuer), Reason.MALFORMED_TOKEN),
        "payload not json": (
            signed(issuer, {"alg": "RS256", "kid": kid}, b"{"),
            Reason.MALFORMED_CLAIMS,
        ),
        "payload a list": (
            signed(issuer, {"alg": "RS256", "kid": kid}, b"[]"),
            Reason.MALFORMED_CLAIMS,
        ),
        "expired": (issuer.mint(lifetime=-60), Reason.EXPIRED),
        "wrong audience": (issuer.mint({"aud": ["x"]}), Reason.INVALID_AUDIENCE),
        "wrong issuer": (issuer.mint({"iss": "https://x.example"}), Reason.INVALID_ISSUER),
        "no exp": (issuer.mint({"exp": None}), Reason.MISSING_CLAIM),
        "org token": (issuer.mint({"type": "org"}), Reason.NOT_AN_APP_TOKEN),
    }


def test_every_reason_same_on_cold_and_warm_verifiers(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """The header memo and token cache never change which reason a bad token gets."""
    cases = bad_tokens(issuer)
    warm = make_gate(issuer, clock)
    remembered = issuer.user_token("grace@example.com")
    for _ in range(2):
        warm.verifier.verify(remembered)
    for name, (token, expected) in cases.items():
        cold = make_gate(issuer, clock)
        assert reason_of(partial(cold.verifier.verify, token)) == expected, name
        assert reason_of(partial(warm.verifier.verify, token)) == expected, name
    assert len(warm.verifier.cache) == 1


def test_header_memo_is_bounded(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Many distinct (genuine) headers never grow the memo past its bound."""
    checker = make_gate(issuer, clock)
    limit = verifier_module.MAX_KNOWN_HEADERS
    for number in range(limit + 5):
        header = {"alg": "RS256", "kid": issuer.signing_key.kid, "typ": f"t{number}"}
        checker.verifier.verify(issuer.mint(header=header))
        assert len(checker.verifier._known_headers) <= limit


# -- the lean pieces match what they replace ------------------------------------

URLSAFE = string.ascii_letters + string.digits + "-_"


@given(st.text(alphabet=URLSAFE, min_size=1, max_size=64))
def test_b64url_decode_matches_joserfc(segment: str) -> None:
    """The verifier's base64url decoding accepts and refuses exactly what joserfc's does,
    for each of a token's segments as the shape check spells it."""
    data = segment.encode()
    try:
        expected: bytes | None = urlsafe_b64decode(data)
    except ValueError:
        expected = None
    _, header, payload, signature = check_token_shape(f"{segment}.{segment}.{segment}")
    for spelled in (header, payload, signature):
        try:
            actual: bytes | None = decode_segment(spelled)
        except ValueError:
            actual = None
        assert actual == expected


class RangedRegistry(JWTClaimsRegistry):
    """joserfc's registry, refusing NumericDates outside 1970 to 9999 as the policy does."""

    @staticmethod
    def _check_range(value: object) -> None:
        """A finite number outside the range: malformed, whichever time claim it is."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if isinstance(value, float) and not math.isfinite(value):
            return  # not a NumericDate: the registry's own check refuses it
        if not 0 <= value < MAX_NUMERIC_DATE:
            raise InvalidClaimError("range")

    def validate_exp(self, value: object) -> None:
        self._check_range(value)
        super().validate_exp(value)

    def validate_nbf(self, value: object) -> None:
        self._check_range(value)
        super().validate_nbf(value)

    def validate_iat(self, value: object) -> None:
        self._check_range(value)
        super().validate_iat(value)


#: The written-out checks follow the claims registry of joserfc 1.8; earlier
#: releases (the newest on Python 3.10 is 1.7) take ``exp: false`` for 0 and
#: still admit a token at the leeway's edge, so there they are no oracle.
needs_registry_of_joserfc_1_8 = pytest.mark.skipif(
    tuple(int(part) for part in version("joserfc").split(".")[:2]) < (1, 8),
    reason="the oracle is joserfc 1.8's claims registry",
)


#: The order in which the policy checks the claims the registry checks by value.
POLICY_ORDER = ("iss", "aud", "exp", "nbf", "iat")


def in_policy_order(claims: Mapping[str, Any]) -> dict[str, Any]:
    """``claims`` with those of :data:`POLICY_ORDER` first, in that order."""
    ordered = {name: claims[name] for name in POLICY_ORDER if name in claims}
    return ordered | {name: value for name, value in claims.items() if name not in ordered}


class RegistryPolicy:
    """The claims policy as written on joserfc's JWTClaimsRegistry, for comparison."""

    def __init__(self, settings: AccessSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = RangedRegistry(
            now=lambda: int(clock()),
            leeway=settings.leeway,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "values": list(settings.audience)},
            exp={"essential": True},
        )

    def check(self, claims: dict[str, Any]) -> None:
        reasons = {
            "nbf": Reason.NOT_YET_VALID,
            "iat": Reason.ISSUED_IN_FUTURE,
            "iss": Reason.INVALID_ISSUER,
            "aud": Reason.INVALID_AUDIENCE,
            "exp": Reason.MALFORMED_CLAIMS,
        }
        for name in ("email", "sub", "common_name", "identity_nonce", "country", "type", "jti"):
            if name in claims and not isinstance(claims[name], str):
                raise AccessUnauthorized(Reason.MALFORMED_CLAIMS)
        try:
            # The registry looks at claims in the token's order; the policy's
            # order is fixed: the registered claims first, in its order.
            self.registry.validate(in_policy_order(claims))
        except ExpiredTokenError as exc:
            raise AccessUnauthorized(Reason.EXPIRED) from exc
        except MissingClaimError as exc:
            raise AccessUnauthorized(Reason.MISSING_CLAIM) from exc
        except InvalidClaimError as exc:
            raise AccessUnauthorized(reasons.get(exc.claim, Reason.MALFORMED_CLAIMS)) from exc
        except ClaimError as exc:
            raise AccessUnauthorized(Reason.MALFORMED_CLAIMS) from exc
        if claims.get("type", "app") != "app":
            raise AccessUnauthorized(Reason.NOT_AN_APP_TOKEN)
        max_age = self.settings.max_token_age
        if max_age is None:
            return
        issued_at = claims.get("iat")
        if isinstance(issued_at, bool) or not isinstance(issued_at, (int, float)):
            raise AccessUnauthorized(Reason.MISSING_CLAIM)
        if self.clock() - issued_at > max_age + self.settings.leeway:
            raise AccessUnauthorized(Reason.TOKEN_TOO_OLD)


TEAM = "test-team.cloudflareaccess.com"
AUDIENCES = ["aud-one", "aud-two"]
NOW = int(START)


def claim_values() -> st.SearchStrategy[Any]:
    times = st.integers(NOW - 400, NOW + 400)
    return st.one_of(
        st.none(),
        st.booleans(),
        times,
        times.map(float),
        st.sampled_from([-1, -1.5, -(10**400), 10**400, MAX_NUMERIC_DATE, MAX_NUMERIC_DATE - 1]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["", "app", "org", f"https://{TEAM}", "https://other.example", *AUDIENCES]),
        st.lists(st.sampled_from([*AUDIENCES, "other", 5, None]), max_size=3),
        st.dictionaries(st.just("groups"), st.just(["x"])),
    )


NAMES = ["iss", "aud", "exp", "nbf", "iat", "jti", "sub", "type", "email", "custom", "country"]
USUAL = {"iss": f"https://{TEAM}", "aud": AUDIENCES[1:], "exp": NOW + 60, "iat": NOW, "nbf": NOW}


@pytest.mark.slow
@needs_registry_of_joserfc_1_8
@settings(max_examples=600, deadline=None)
@given(
    data=st.data(),
    changed=st.dictionaries(st.sampled_from(NAMES), claim_values()),
    max_age=st.sampled_from([None, 120]),
    skew=st.integers(-40, 40),
)
def test_claims_checks_match_joserfc_registry(
    data: st.DataObject, changed: dict[str, Any], max_age: int | None, skew: int
) -> None:
    """The written-out claims checks refuse exactly what the registry did, with the same reason."""
    items = list((USUAL | changed).items())
    claims = dict(data.draw(st.permutations(items)))
    access_settings = AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": TEAM,
            "CF_ACCESS_AUDIENCE": AUDIENCES,
            "CF_ACCESS_MAX_TOKEN_AGE": max_age,
        }
    )
    clock = FrozenClock(START + skew + 0.5)
    expected = reason_of(lambda: RegistryPolicy(access_settings, clock).check(claims))
    assert reason_of(lambda: ClaimsPolicy(access_settings, clock).check(claims)) == expected


@needs_registry_of_joserfc_1_8
@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("max_age", [None, 60])
def test_time_checks_match_joserfc_registry_at_every_second(name: str, max_age: int | None) -> None:
    """Around the leeway's edges, second by second, both policies agree on every time claim."""
    access_settings = AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": TEAM,
            "CF_ACCESS_AUDIENCE": AUDIENCES,
            "CF_ACCESS_MAX_TOKEN_AGE": max_age,
        }
    )
    for fraction in (0.0, 0.5, 0.999):
        clock = FrozenClock(START + fraction)
        for offset in range(-100, 101):
            for value in (NOW + offset, NOW + offset + 0.5):
                claims = USUAL | {name: value}
                expected = reason_of(partial(RegistryPolicy(access_settings, clock).check, claims))
                actual = reason_of(partial(ClaimsPolicy(access_settings, clock).check, claims))
                assert actual == expected, (name, value, fraction)


#: One way to fail each check of the policy, in the policy's documented order.
FAILURES_IN_ORDER: list[tuple[str, dict[str, Any], Reason]] = [
    ("claim types", {"jti": 5}, Reason.MALFORMED_CLAIMS),
    ("required claims", {"exp": None}, Reason.MISSING_CLAIM),
    ("iss", {"iss": "x"}, Reason.INVALID_ISSUER),
    ("aud", {"aud": ["x"]}, Reason.INVALID_AUDIENCE),
    ("exp", {"exp": NOW - 100}, Reason.EXPIRED),
    ("nbf", {"nbf": NOW + 100}, Reason.NOT_YET_VALID),
    ("iat", {"iat": NOW + 100}, Reason.ISSUED_IN_FUTURE),
    ("type", {"type": "org"}, Reason.NOT_AN_APP_TOKEN),
    ("max age", {"iat": NOW - 1000}, Reason.TOKEN_TOO_OLD),
]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        pair
        for pair in itertools.combinations(FAILURES_IN_ORDER, 2)
        if not pair[0][1].keys() & pair[1][1].keys()
    ],
    ids=lambda failure: str(failure[0]),
)
def test_first_failing_check_in_the_fixed_order_names_the_reason(
    earlier: tuple[str, dict[str, Any], Reason], later: tuple[str, dict[str, Any], Reason]
) -> None:
    """With two bad claims, the check that comes first in the policy's order names the reason,
    whichever claim comes first in the token."""
    access_settings = AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": TEAM,
            "CF_ACCESS_AUDIENCE": AUDIENCES,
            "CF_ACCESS_MAX_TOKEN_AGE": 60,
        }
    )
    policy = ClaimsPolicy(access_settings, FrozenClock())
    for first, second in ((earlier, later), (later, earlier)):
        claims = {**first[1], **second[1]}
        claims |= {name: value for name, value in USUAL.items() if name not in claims}
        assert reason_of(partial(policy.check, claims)) == earlier[2], list(claims)


def test_policy_order_is_the_documented_one() -> None:
    """The policy explains its checks under the names, and in the order, its docstring lists."""
    access_settings = AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": TEAM,
            "CF_ACCESS_AUDIENCE": AUDIENCES,
            "CF_ACCESS_MAX_TOKEN_AGE": 60,
        }
    )
    names = [name for name, _ in ClaimsPolicy(access_settings, FrozenClock()).explain(USUAL)]
    assert names == [name for name, _, _ in FAILURES_IN_ORDER]
    documented = re.findall(r"^\s*\d\. ``([a-z ]+)``:", ClaimsPolicy.__doc__ or "", re.M)
    assert documented == names


def test_protected_app_still_refuses_after_warmup(
    make_app: AppFactory, issuer: AccessIssuer
) -> None:
    """An app that has remembered tokens still answers 401 to a forged one."""
    app: Flask = make_app()
    client = app.test_client()
    token = issuer.user_token("ada@example.com")
    assert client.get("/", headers=bearer(token)).status_code == 200
    forged = token.rsplit(".", 1)[0] + "." + b64(bytes(256))
    with capture_access(app) as captured:
        assert client.get("/", headers=bearer(forged)).status_code == 401
    assert captured.reasons == [Reason.BAD_SIGNATURE]


@functools.cache
def shared_issuer() -> tuple[AccessIssuer, FrozenClock]:
    """One stand-in team for every example (a key costs tens of milliseconds)."""
    clock = FrozenClock()
    return AccessIssuer(clock=clock), clock


@settings(max_examples=200, deadline=None)
@example(nbf=0.5, iat=0, exp=100, max_age=None, steps=[-29.4])  # a fractional nbf's edge
@example(nbf=0, iat=-10, exp=500, max_age=60, steps=[79.5, 0.6])  # the maximum age's edge
@given(
    nbf=st.one_of(st.integers(-100, 100), st.floats(-100, 100, allow_nan=False)),
    iat=st.one_of(st.integers(-100, 100), st.floats(-100, 100, allow_nan=False)),
    exp=st.integers(1, 300),
    max_age=st.one_of(st.none(), st.integers(1, 200)),
    steps=st.lists(st.floats(-60, 120, allow_nan=False), min_size=1, max_size=6),
)
def test_remembered_token_ages_as_a_fresh_one(
    nbf: float, iat: float, exp: int, max_age: int | None, steps: list[float]
) -> None:
    """A remembered token is refused at the very moment, and for the reason, a fresh check is
    (the clock may also step back, as a corrected clock does)."""
    issuer, clock = shared_issuer()
    clock.now = START
    config: dict[str, Any] = {"CF_ACCESS_LOAD_KEYS_ON_INIT": False}
    if max_age is not None:
        config["CF_ACCESS_MAX_TOKEN_AGE"] = max_age
    warm = make_gate(issuer, clock, **config)
    cold = make_gate(issuer, clock, CF_ACCESS_TOKEN_CACHE_SIZE=0, **config)
    now = clock()
    token = issuer.mint({"nbf": now + nbf, "iat": now + iat, "exp": now + exp})
    if reason_of(lambda: warm.verifier.verify(token)) is not None:
        return  # refused from the start: nothing is remembered
    for step in steps:
        clock.advance(step)
        assert reason_of(lambda: warm.verifier.verify(token)) == reason_of(
            lambda: cold.verifier.verify(token)
        )
