"""A remembered token is bound to the key material it verified with, not to its ``kid``."""

from __future__ import annotations

import pytest
import responses
from flask import Flask

from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer, SigningKey

from .support import FrozenClock, count_calls
from .verdicts import verdict

#: Past CF_ACCESS_KEYS_MAX_AGE (900 s) and CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL.
PAST_KEYS_MAX_AGE = 901


def publish_other_key_under_same_kid(issuer: AccessIssuer) -> SigningKey:
    """The team signs with, and publishes, new key material under the current ``kid``."""
    fresh = SigningKey.generate()
    old = issuer.signing_key
    issuer.signing_key = SigningKey(fresh.private_key, old.kid, fresh.certificate_pem)
    return old


def refetch(app: Flask, issuer: AccessIssuer, clock: FrozenClock, how: str) -> None:
    """Make the app fetch the certs again: the set grew stale, or a kid it lacks came in."""
    clock.advance(PAST_KEYS_MAX_AGE if how == "stale" else 61)
    if how == "unknown kid":
        stranger = SigningKey.generate()
        token = issuer.mint({"email": "eve@example.com"}, key=stranger)
        assert verdict(app, token) == (401, Reason.UNKNOWN_KID)


@pytest.mark.parametrize("how", ["stale", "unknown kid"])
def test_remembered_token_refused_once_its_kid_names_other_key(
    app: Flask,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
    how: str,
) -> None:
    """New key material under the same kid: a remembered token of the old key is refused."""
    token = issuer.user_token("ada@example.com")
    assert verdict(app, token) == (200, None)
    old_key = publish_other_key_under_same_kid(issuer)
    refetch(app, issuer, clock, how)
    assert verdict(app, token) == (401, Reason.BAD_SIGNATURE)
    assert count_calls(mocked_team, issuer.certs_url) == 2
    assert verdict(app, token) == (401, Reason.BAD_SIGNATURE)
    fresh_with_old_key = issuer.mint({"email": "bob@example.com"}, key=old_key)
    assert verdict(app, fresh_with_old_key) == (401, Reason.BAD_SIGNATURE)
    assert verdict(app, issuer.user_token("ada@example.com")) == (200, None)


def test_remembered_token_kept_when_same_key_is_published_again(
    app: Flask, issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """A refetched set publishing the same key material still admits the remembered token."""
    token = issuer.user_token("ada@example.com")
    assert verdict(app, token) == (200, None)
    for _ in range(3):
        clock.advance(PAST_KEYS_MAX_AGE)
        assert verdict(app, token) == (200, None)
    assert count_calls(mocked_team, issuer.certs_url) == 4
