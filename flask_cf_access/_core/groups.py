"""Groups as Cloudflare Access reports them (strings, or objects with id and name),
and the groups a rule asks for, where ids match ids and names match names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Group:
    """One group of the identity. A bare string group has only a ``name``."""

    name: str | None = None
    id: str | None = None
    email: str | None = None

    def matches(self, wanted: str) -> bool:
        """Whether this group is ``wanted``: ``"id:<id>"`` matches its id only,
        any other string (or ``"name:<name>"``) its name only."""
        return wanted_groups((wanted,)).any_of((self,))

    def as_dict(self) -> dict[str, str | None]:
        """A JSON-ready form, as the identity endpoint gives it."""
        return {"id": self.id, "name": self.name, "email": self.email}


class MalformedGroups(ValueError):
    """A groups value is neither a list of strings nor a list of group objects."""


def parse_groups(value: object) -> tuple[Group, ...]:
    """Groups from a claim or an identity document.

    Verified claims are read-only all the way down, so their arrays are
    tuples and their objects read-only mappings: both are taken too.

    :raises MalformedGroups: for anything but a list of strings and objects
        whose ``id``, ``name`` and ``email`` are strings when present.
    """
    if not isinstance(value, (list, tuple)):
        raise MalformedGroups("groups must be a list")
    return tuple(_group(item) for item in value)


def _group(item: object) -> Group:
    if isinstance(item, str):
        return Group(name=item)
    if isinstance(item, Mapping):
        fields = {key: item.get(key) for key in ("id", "name", "email")}
        if all(value is None or isinstance(value, str) for value in fields.values()) and (
            fields["id"] or fields["name"]
        ):
            return Group(name=fields["name"], id=fields["id"], email=fields["email"])
    raise MalformedGroups("a group must be a string or an object with an id or a name")


def groups_in_claims(claims: Mapping[str, Any]) -> tuple[Group, ...] | None:
    """The groups a token carries (``groups``, or ``custom.groups`` from SAML/OIDC).

    ``None`` when the token carries none, so that they must be asked for.

    :raises MalformedGroups: when a groups claim is present but malformed.
    """
    if "groups" in claims:
        return parse_groups(claims["groups"])
    custom = claims.get("custom")
    if isinstance(custom, Mapping) and "groups" in custom:
        return parse_groups(custom["groups"])
    return None


#: How a rule names a group by id: ``"id:2f1c5b2e-…"``.
ID_PREFIX = "id:"
#: How a rule may name a group by name explicitly (for a name that starts with ``id:``).
NAME_PREFIX = "name:"


@dataclass(frozen=True)
class WantedGroups:
    """The groups a rule asks for, parsed once: names match only groups' names,
    ids only groups' ids, so a group *named* like another group's id is not that group."""

    names: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()

    def any_of(self, groups: Iterable[Group]) -> bool:
        """Whether any of ``groups`` is one of these."""
        names, ids = self.names, self.ids
        return any(group.name in names or group.id in ids for group in groups)


def wanted_group(text: str) -> Group:
    """The group a rule's string stands for: ``"id:<id>"`` a group with that id, else
    (``"name:<name>"`` or a plain string) one with that name.

    :raises ValueError: ``"id:"`` or ``"name:"`` with nothing after it, or an empty string.
    """
    if text.startswith(ID_PREFIX):
        group = Group(id=text[len(ID_PREFIX) :])
    elif text.startswith(NAME_PREFIX):
        group = Group(name=text[len(NAME_PREFIX) :])
    else:
        group = Group(name=text)
    if not (group.id or group.name):
        raise ValueError(f"{text!r} names no group: write 'Name' or 'id:<group id>'.")
    return group


def is_wanted_group(text: str) -> bool:
    """Whether ``text`` names a group, as :func:`wanted_group` reads it."""
    try:
        wanted_group(text)
    except ValueError:
        return False
    return True


def wanted_groups(texts: Iterable[str]) -> WantedGroups:
    """The groups ``texts`` stand for (see :func:`wanted_group`).

    :raises ValueError: one of them names no group.
    """
    groups = [wanted_group(text) for text in texts]
    return WantedGroups(
        names=frozenset(group.name for group in groups if group.name is not None),
        ids=frozenset(group.id for group in groups if group.id is not None),
    )


def any_group_matches(groups: Iterable[Group], wanted: Iterable[str]) -> bool:
    """Whether any of ``groups`` is one of ``wanted`` (names, or ``"id:<id>"``)."""
    return wanted_groups(wanted).any_of(groups)
