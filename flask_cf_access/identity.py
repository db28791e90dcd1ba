"""Who a verified token speaks for: a user, or a service token."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .groups import Group, any_group_matches


class AccessIdentity:
    """The identity behind a verified token.

    Groups are resolved on first use only: from the token when it carries
    them, otherwise from the team's identity endpoint. Every request carrying
    the same remembered token gets the same identity, from any thread, so it
    takes no new attributes: keep per-request data on ``flask.g``.
    """

    __slots__ = ("_groups", "_load_groups", "claims")

    def __init__(
        self, claims: Mapping[str, Any], load_groups: Callable[[], tuple[Group, ...]]
    ) -> None:
        self.claims = claims
        self._load_groups = load_groups
        self._groups: tuple[Group, ...] | None = None

    @property
    def email(self) -> str | None:
        """The user's e-mail address; ``None`` for a service token."""
        return self.claims.get("email") or None

    @property
    def sub(self) -> str | None:
        """The user's id at Cloudflare Access; ``None`` for a service token."""
        return self.claims.get("sub") or None

    @property
    def common_name(self) -> str | None:
        """The service token's client id; ``None`` for a user."""
        return self.claims.get("common_name") or None

    @property
    def is_service_token(self) -> bool:
        """Whether a machine holding a service token, not a person, is calling."""
        return self.common_name is not None and self.sub is None

    @property
    def name(self) -> str:
        """A name for logs and ``REMOTE_USER``: the e-mail, or the service token's id."""
        return self.email or self.common_name or self.sub or ""

    @property
    def groups(self) -> tuple[Group, ...]:
        """The identity's groups (a service token has none).

        :raises AccessUnavailable: the identity endpoint could not be asked.
        """
        if self._groups is None:
            self._groups = () if self.is_service_token else self._load_groups()
        return self._groups

    def in_any_group(self, *wanted: str) -> bool:
        """Whether the identity belongs to any of ``wanted`` (group names or ids)."""
        return any_group_matches(self.groups, wanted)

    def __repr__(self) -> str:
        kind = "service token" if self.is_service_token else "user"
        return f"<AccessIdentity {kind} {self.name!r}>"
