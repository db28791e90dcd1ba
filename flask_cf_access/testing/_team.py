"""What the ways of serving a stand-in team need of it, as a protocol.

:class:`~flask_cf_access.testing.AccessIssuer` is the team; the transports
(:mod:`._transport`) and the sign-in pages (:mod:`._sign_in`) are given one
and ask only this of it, so they need not import the issuer that uses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class Team(Protocol):
    """A stand-in team: its names and URLs, its answers, and a user's token."""

    #: The team's host name, as in ``https://<team_domain>/``.
    team_domain: str
    #: The application's AUD tag.
    audience: str

    @property
    def issuer(self) -> str:
        """``https://<team_domain>``, the tokens' ``iss``."""
        ...

    @property
    def certs_url(self) -> str:
        """Where the team publishes its keys."""
        ...

    @property
    def identity_url(self) -> str:
        """Where the team answers ``get-identity``."""
        ...

    def respond(self, path: str, cookie_header: str | None) -> tuple[int, Any]:
        """The status and JSON body the team answers ``GET path`` with."""
        ...

    def user_token(
        self, email: str, groups: Iterable[str] = (), *, profile: Mapping[str, Any] | None = None
    ) -> str:
        """A signed token for the user ``email``, in ``groups``, with the profile
        fields ``get-identity`` answers for them."""
        ...
