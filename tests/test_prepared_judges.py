"""Requirements are prepared when made, the app-wide rules once per app; the order holds."""

from __future__ import annotations

from typing import Any

import pytest

from flask_cf_access import (
    AccessForbidden,
    AccessIdentity,
    AccessSettings,
    Group,
    Reason,
    Requirement,
    require,
)
from flask_cf_access._requirements import ANY_TOKEN, AccessPolicy
from flask_cf_access.testing import AccessIssuer


def policy_for(issuer: AccessIssuer, **config: Any) -> AccessPolicy:
    """The policy of an app trusting ``issuer``, with ``config`` on top."""
    return AccessPolicy(AccessSettings.from_mapping(issuer.settings(**config)))


def user(policy: AccessPolicy, email: str = "ada@example.com", *groups: str) -> AccessIdentity:
    """A user identity with ``email``, in ``groups``."""
    claims = {"sub": "u1", "email": email}
    return AccessIdentity(claims, lambda: tuple(Group(name=name) for name in groups), policy)


def service_token(policy: AccessPolicy, client_id: str = "ci.access") -> AccessIdentity:
    """A service token identity."""
    return AccessIdentity({"common_name": client_id, "sub": ""}, tuple, policy)


def refusal(policy: AccessPolicy, identity: AccessIdentity, requirement: Requirement) -> Reason:
    """The reason ``policy`` refuses ``identity`` under ``requirement``."""
    with pytest.raises(AccessForbidden) as refused:
        policy.authorize(identity, requirement)
    return refused.value.reason


def test_only_parts_that_can_refuse_are_prepared() -> None:
    """A requirement asking for nothing more than a token has no judge to run."""
    assert ANY_TOKEN._judge is None
    assert require(groups=[], roles=[])._judge is None
    assert require(roles=["admin"])._judge is not None
    assert require(allow_service_tokens=False)._judge is not None


def test_app_wide_rules_apply_to_a_token_only_requirement(issuer: AccessIssuer) -> None:
    """E-mail rules refuse an outsider even where only a token is required."""
    policy = policy_for(issuer, CF_ACCESS_ALLOWED_EMAIL_DOMAINS=["example.org"])
    assert refusal(policy, user(policy), ANY_TOKEN) == Reason.EMAIL_NOT_ALLOWED
    policy.authorize(user(policy, "bo@example.org"), ANY_TOKEN)


def test_app_wide_rules_come_first(issuer: AccessIssuer) -> None:
    """The app-wide refusal wins over the requirement's own, for users and service tokens."""
    policy = policy_for(
        issuer,
        CF_ACCESS_ALLOWED_EMAIL_DOMAINS=["example.org"],
        CF_ACCESS_SERVICE_TOKENS={"known.access": {"name": "known"}},
    )
    assert refusal(policy, user(policy), require(service_tokens=[])) == Reason.EMAIL_NOT_ALLOWED
    no_tokens = require(allow_service_tokens=False)
    assert refusal(policy, service_token(policy), no_tokens) == Reason.UNKNOWN_SERVICE_TOKEN
    assert refusal(policy, service_token(policy, "known.access"), no_tokens) == (
        Reason.SERVICE_TOKEN_REFUSED
    )


def test_parts_are_judged_in_order(issuer: AccessIssuer) -> None:
    """Service tokens, then groups, then roles, then predicates: the first refusal wins."""
    policy = policy_for(issuer, CF_ACCESS_ROLES={"admin": ["Admins"]})
    everything = require(groups=["Staff"], roles=["admin"], check=lambda identity: False) & require(
        service_tokens=[]
    )
    assert refusal(policy, user(policy, "ada@example.com"), everything) == (
        Reason.SERVICE_TOKEN_REQUIRED
    )
    people = require(groups=["Staff"], roles=["admin"], check=lambda identity: False)
    assert refusal(policy, user(policy, "ada@example.com"), people) == Reason.NOT_IN_GROUP
    assert refusal(policy, user(policy, "ada@example.com", "Staff"), people) == Reason.NO_ROLE
    assert refusal(policy, user(policy, "ada@example.com", "Staff", "Admins"), people) == (
        Reason.CHECK_FAILED
    )
