"""The policy prepares each requirement's judge once and keeps a bounded number of them."""

from __future__ import annotations

from typing import Any

import pytest

from flask_cf_access import AccessForbidden, AccessIdentity, AccessSettings, Reason, require
from flask_cf_access._groups import Group
from flask_cf_access._requirements import ANY_TOKEN, AccessPolicy
from flask_cf_access.testing import AccessIssuer


def policy_for(issuer: AccessIssuer, **config: Any) -> AccessPolicy:
    """The policy of an app trusting ``issuer``, with ``config`` on top."""
    return AccessPolicy(AccessSettings.from_mapping(issuer.settings(**config)))


def user(policy: AccessPolicy, *groups: str) -> AccessIdentity:
    """A user identity in ``groups``."""
    claims = {"sub": "u1", "email": "ada@example.com"}
    return AccessIdentity(claims, lambda: tuple(Group(name=name) for name in groups), policy)


def test_equal_requirements_share_one_judge(issuer: AccessIssuer) -> None:
    """A requirement built again with the same parts is judged by the judge already prepared."""
    policy = policy_for(issuer, CF_ACCESS_ROLES={"admin": ["Admins"]})
    first = policy.judges[require(roles=["admin"])]
    again = policy.judges[require(roles=["admin"])]
    assert first is again
    assert len(policy.judges) == 1


def test_any_token_needs_no_judge_without_app_wide_rules(issuer: AccessIssuer) -> None:
    """Any verified token passes when no app-wide rule applies: nothing is judged."""
    assert policy_for(issuer).judges[ANY_TOKEN] is None
    strict = policy_for(issuer, CF_ACCESS_ALLOWED_EMAIL_DOMAINS=["example.org"])
    with pytest.raises(AccessForbidden) as refused:
        strict.authorize(user(strict), ANY_TOKEN)
    assert refused.value.reason == Reason.EMAIL_NOT_ALLOWED


def test_prepared_judges_are_bounded(issuer: AccessIssuer) -> None:
    """An app building a new requirement per request cannot grow the prepared judges without end."""
    policy = policy_for(issuer)
    limit = policy.judges.max_size
    for number in range(limit + 10):
        policy.authorize(user(policy, f"g{number}"), require(groups=[f"g{number}"]))
    assert 0 < len(policy.judges) <= limit
    with pytest.raises(AccessForbidden) as refused:
        policy.authorize(user(policy, "g1"), require(groups=["g2"]))
    assert refused.value.reason == Reason.NOT_IN_GROUP
