"""Ids match ids, names match names: drawn group lists whose names and ids collide."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import (
    AccessForbidden,
    AccessIdentity,
    AccessSettings,
    ConfigurationError,
    Group,
    Reason,
    require,
)
from flask_cf_access._core.requirements import AccessPolicy

#: Few strings, so that a name often equals another group's id.
TEXTS = st.sampled_from(["a", "b", "c", "id:a", "Admins", "2f1c"])
GROUPS = st.lists(
    st.builds(Group, name=st.none() | TEXTS, id=st.none() | TEXTS).filter(
        lambda group: bool(group.name or group.id)
    ),
    max_size=4,
)
Kind = Literal["id", "name", "plain"]
#: A wanted group: by id (``id:x``), by explicit name (``name:x``) or a plain name.
WANTED = st.tuples(st.sampled_from(["id", "name", "plain"]), TEXTS)


def spelt(kind: Kind, text: str) -> str:
    """How a rule writes a wanted group of ``kind``."""
    return {"id": f"id:{text}", "name": f"name:{text}", "plain": text}[kind]


def reference_in(groups: list[Group], spelling: str) -> bool:
    """Whether ``groups`` hold the group a rule spells so: ``id:x`` the id ``x``,
    ``name:x`` or a plain ``x`` the name ``x``; never an id for a name or back."""
    if spelling.startswith("id:"):
        return any(group.id == spelling[3:] for group in groups)
    name = spelling[5:] if spelling.startswith("name:") else spelling
    return any(group.name == name for group in groups)


def policy(**config: object) -> AccessPolicy:
    """An app's policy with ``config`` on top of a team."""
    base = {"CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com", "CF_ACCESS_AUDIENCE": "aud"}
    return AccessPolicy(AccessSettings.from_mapping({**base, **config}))


def user(rules: AccessPolicy, groups: list[Group]) -> AccessIdentity:
    """A user whose groups are ``groups``."""
    return AccessIdentity({"sub": "u1", "email": "u@example.com"}, lambda: tuple(groups), rules)


def refusal(rules: AccessPolicy, identity: AccessIdentity, **requirement: object) -> Reason | None:
    """The reason ``rules`` refuse ``identity`` under ``require(**requirement)``, if any."""
    try:
        rules.authorize(identity, require(**requirement))  # type: ignore[arg-type]
    except AccessForbidden as refused:
        return refused.reason
    return None


def admitted(rules: AccessPolicy, identity: AccessIdentity, **requirement: object) -> bool:
    """Whether ``rules`` admit ``identity``; a refusal is for its groups or roles."""
    reason = refusal(rules, identity, **requirement)
    assert reason in (None, Reason.NOT_IN_GROUP, Reason.NOT_IN_ALL_GROUPS, Reason.NO_ROLE)
    return reason is None


@given(GROUPS, st.lists(WANTED, min_size=1, max_size=3))
def test_groups_rules_match_ids_to_ids_and_names_to_names(
    groups: list[Group], wanted: list[tuple[Kind, str]]
) -> None:
    """require(groups=…) any and all, a role mapped to the same groups, Group.matches and
    in_any_group all agree with the per-kind reference, whatever collides."""
    texts = [spelt(kind, text) for kind, text in wanted]
    hits = [reference_in(groups, text) for text in texts]
    rules = policy(CF_ACCESS_ROLES={"role": texts})
    identity = user(rules, groups)
    assert admitted(rules, identity, groups=texts) == any(hits)
    assert admitted(rules, identity, groups=texts, match="all") == all(hits)
    assert admitted(rules, identity, roles=["role"]) == any(hits)
    assert identity.in_any_group(*texts) == any(hits)
    for text, hit in zip(texts, hits, strict=True):
        assert any(group.matches(text) for group in groups) == hit


@given(st.lists(WANTED, max_size=3), st.lists(WANTED, min_size=1, max_size=3))
def test_a_service_tokens_listed_groups_are_read_the_same_way(
    listed: list[tuple[Kind, str]], wanted: list[tuple[Kind, str]]
) -> None:
    """A known service token's groups (``id:`` for an id) grant what a user's would."""
    listed_texts = [spelt(kind, text) for kind, text in listed]
    groups = [
        Group(id=text[3:]) if text.startswith("id:") else Group(name=text.removeprefix("name:"))
        for text in listed_texts
    ]
    texts = [spelt(kind, text) for kind, text in wanted]
    rules = policy(CF_ACCESS_SERVICE_TOKENS={"ci.access": {"groups": listed_texts}})
    machine = AccessIdentity({"common_name": "ci.access"}, tuple, rules)
    expected = any(reference_in(groups, text) for text in texts)
    assert admitted(rules, machine, groups=texts) == expected


def test_a_group_named_as_an_id_is_not_that_group() -> None:
    """The reported case: a group whose name is the admins' id gets no admin role."""
    rules = policy(CF_ACCESS_ROLES={"admin": ["id:2f1c"]})
    impostor = user(rules, [Group(name="2f1c", id="9999")])
    assert not admitted(rules, impostor, roles=["admin"])
    admin = user(rules, [Group(name="Admins", id="2f1c")])
    assert admitted(rules, admin, roles=["admin"])


@pytest.mark.parametrize("spelling", ["id:", "name:", ["Admins", "id:"]])
def test_an_empty_id_or_name_is_refused(spelling: str | list[str]) -> None:
    """``id:`` or ``name:`` with nothing after it is refused where it is written."""
    with pytest.raises(ConfigurationError, match=r"CF_ACCESS_ROLES\['admin'\]"):
        policy(CF_ACCESS_ROLES={"admin": spelling})
    with pytest.raises(ConfigurationError, match=r"CF_ACCESS_SERVICE_TOKENS\['ci.access'\]"):
        policy(CF_ACCESS_SERVICE_TOKENS={"ci.access": {"groups": spelling}})
    with pytest.raises(TypeError, match="names no group"):
        require(groups=[spelling] if isinstance(spelling, str) else spelling)
