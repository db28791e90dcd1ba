"""Groups as Cloudflare Access reports them: strings, or objects with id and name."""

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
        """Whether ``wanted`` is this group's name or id."""
        return wanted in (self.name, self.id)

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


def any_group_matches(groups: Iterable[Group], wanted: Iterable[str]) -> bool:
    """Whether any of ``groups`` is named (by name or id) in ``wanted``."""
    wanted = tuple(wanted)
    return any(group.matches(name) for group in groups for name in wanted)
