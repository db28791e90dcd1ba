"""Who a verified token speaks for: a user, or a service token."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .addresses import EmailAddress, MalformedAddress, parse_address
from .clock import Clock, system_time
from .groups import Group, any_group_matches, wanted_group
from .profile import AccessProfile, ServiceTokenProfile

#: What an identity remembers of an e-mail claim that did not parse.
_MALFORMED = "malformed"

#: What an identity's profile is loaded by: ``load(held, fresh)`` gives ``held``
#: back when it will do, else a profile newly had (``fresh``: had from
#: get-identity by this process no longer ago than ``CF_ACCESS_PROFILE_MAX_AGE``).
ProfileLoader = Callable[[AccessProfile | None, bool], AccessProfile]


class IdentityLookups(Protocol):
    """Where an identity gets what its token does not say, when first asked:
    the checker's for a verified token, or the functions given to
    :class:`AccessIdentity`."""

    def groups(self) -> tuple[Group, ...]:
        """The identity's groups."""

    def profile(self, held: AccessProfile | None, fresh: bool) -> AccessProfile | None:
        """As a :data:`ProfileLoader`; ``None`` where there is no profile to have."""


class _GivenLookups:
    """The lookups of an identity made from functions (tests, :func:`AccessIdentity`)."""

    __slots__ = ("_load_groups", "_load_profile")

    def __init__(
        self, load_groups: Callable[[], tuple[Group, ...]], load_profile: ProfileLoader | None
    ) -> None:
        self._load_groups = load_groups
        self._load_profile = load_profile

    def groups(self) -> tuple[Group, ...]:
        return self._load_groups()

    def profile(self, held: AccessProfile | None, fresh: bool) -> AccessProfile | None:
        return None if self._load_profile is None else self._load_profile(held, fresh)


class IdentityRules(Protocol):
    """What an identity asks of its app's rules (the policy its checker judges with)."""

    def profile(self, client_id: str | None) -> ServiceTokenProfile | None:
        """What ``CF_ACCESS_SERVICE_TOKENS`` says of this client id, if anything."""

    def roles_of(self, identity: AccessIdentity) -> frozenset[str]:
        """The roles ``CF_ACCESS_ROLES`` and ``CF_ACCESS_SERVICE_TOKENS`` grant ``identity``."""


class AccessIdentity:
    """The identity behind a verified token.

    Groups are resolved on first use only: from the token when it carries
    them, otherwise from the team's identity endpoint. Every request carrying
    the same remembered token gets the same identity, from any thread, so it
    takes no new attributes: keep per-request data on ``flask.g``.

    Made by the package; a test may make one from ``claims`` and
    ``load_groups`` (a function returning the groups), to try a check on it.
    ``_policy``, the app's role mapping (``CF_ACCESS_ROLES``) and known service
    tokens (``CF_ACCESS_SERVICE_TOKENS``), which give :attr:`roles` and a known
    service token's :attr:`name` and :attr:`groups`, is internal, and so is
    ``_load_profile``, how its profile is had from get-identity.
    """

    __slots__ = (
        "_clock",
        "_email_address",
        "_groups",
        "_lookups",
        "_policy",
        "_profile",
        "_roles",
        "claims",
        "is_service_token",
    )

    #: The verified claims, a read-only mapping.
    claims: Mapping[str, Any]
    #: Whether a machine holding a service token, not a person, is calling.
    #: Decided once: the claims never change, and every check asks.
    is_service_token: bool

    def __init__(
        self,
        claims: Mapping[str, Any],
        load_groups: Callable[[], tuple[Group, ...]],
        _policy: IdentityRules | None = None,
        *,
        _load_profile: ProfileLoader | None = None,
        clock: Clock = system_time,
    ) -> None:
        self._made(claims, _GivenLookups(load_groups, _load_profile), _policy, clock)

    @classmethod
    def _with_lookups(
        cls,
        claims: Mapping[str, Any],
        lookups: IdentityLookups,
        policy: IdentityRules | None,
        clock: Clock,
    ) -> AccessIdentity:
        """The identity of verified ``claims``, looking up the rest with ``lookups``
        (how the checker makes one per remembered token: one object beside it,
        where a function each for the groups and the profile would be six)."""
        identity = cls.__new__(cls)
        identity._made(claims, lookups, policy, clock)
        return identity

    def _made(
        self,
        claims: Mapping[str, Any],
        lookups: IdentityLookups,
        policy: IdentityRules | None,
        clock: Clock,
    ) -> None:
        self.claims = claims
        self.is_service_token = bool(claims.get("common_name")) and not claims.get("sub")
        self._lookups = lookups
        self._policy = policy
        self._groups: tuple[Group, ...] | None = None
        self._roles: frozenset[str] | None = None
        self._email_address: EmailAddress | str | None = None
        self._profile: AccessProfile | None = None
        self._clock = clock

    @property
    def email(self) -> str | None:
        """The user's e-mail address; ``None`` for a service token."""
        return self.claims.get("email") or None

    def _parsed_email(self) -> EmailAddress | None:
        """The e-mail claim read as an address (parsed once, on first use), for the
        e-mail rules; ``None`` when there is no e-mail.

        :raises MalformedAddress: the claim is not a well-formed address.
        """
        parsed = self._email_address
        if parsed is None:
            email = self.claims.get("email")
            if email is None or email == "":
                return None
            try:
                parsed = parse_address(email)
            except MalformedAddress:
                parsed = _MALFORMED
            self._email_address = parsed
        if isinstance(parsed, str):
            raise MalformedAddress("the e-mail claim is not a well-formed address")
        return parsed

    @property
    def sub(self) -> str | None:
        """The user's id at Cloudflare Access; ``None`` for a service token."""
        return self.claims.get("sub") or None

    @property
    def common_name(self) -> str | None:
        """The service token's client id; ``None`` for a user."""
        return self.claims.get("common_name") or None

    @property
    def name(self) -> str:
        """A name for logs and ``REMOTE_USER``: the e-mail, or the service token's
        name in ``CF_ACCESS_SERVICE_TOKENS``, else its id."""
        if self.is_service_token and self._policy is not None:
            profile = self._policy.profile(self.common_name)
            if profile is not None:
                return profile.name
        return self.email or self.common_name or self.sub or ""

    @property
    def groups(self) -> tuple[Group, ...]:
        """The identity's groups; a service token's from ``CF_ACCESS_SERVICE_TOKENS``, if any.

        :raises AccessUnavailable: the identity endpoint could not be asked.
        """
        if self._groups is None:
            if self.is_service_token:
                profile = self._policy.profile(self.common_name) if self._policy else None
                self._groups = tuple(map(wanted_group, profile.groups)) if profile else ()
            else:
                self._groups = self._lookups.groups()
        return self._groups

    @property
    def roles(self) -> frozenset[str]:
        """The identity's roles: those ``CF_ACCESS_ROLES`` grants its groups, plus a
        known service token's own. Resolved once, on first use.

        :raises AccessUnavailable: the groups were needed and could not be had.
        """
        if self._roles is None:
            self._roles = frozenset() if self._policy is None else self._policy.roles_of(self)
        return self._roles

    @property
    def profile(self) -> AccessProfile | None:
        """The rest of what Access knows of the user: device posture, MFA, identity
        provider, login time, attributes (:doc:`context-rules`).

        Had with the groups, from the same ``get-identity`` answer, on first use;
        it may be as old as the token. ``None`` for a service token, which has none.

        :raises AccessUnavailable: the identity endpoint could not be asked, or
            its answer has a malformed profile field (``Reason.MALFORMED_PROFILE``).
        """
        return self._profile_within(fresh=False)

    @property
    def fresh_profile(self) -> AccessProfile | None:
        """:attr:`profile`, had no longer ago than ``CF_ACCESS_PROFILE_MAX_AGE``:
        what rules on device posture and login age are judged on.

        :raises AccessUnavailable: as :attr:`profile`.
        """
        return self._profile_within(fresh=True)

    @property
    def login_age(self) -> float | None:
        """Seconds since the user signed in (:attr:`AccessProfile.login_at`), if known.

        :raises AccessUnavailable: as :attr:`profile`.
        """
        profile = self.profile
        if profile is None or profile.login_at is None:
            return None
        return self._clock() - profile.login_at

    def _profile_within(self, *, fresh: bool) -> AccessProfile | None:
        if self.is_service_token:
            return None
        held = self._profile
        if held is not None and not fresh:
            return held
        profile = self._lookups.profile(held, fresh)
        if profile is not held:
            self._profile = profile
        return profile

    def in_any_group(self, *wanted: str) -> bool:
        """Whether the identity belongs to any of ``wanted``: group names, or ids
        written ``"id:<group id>"`` (a name matches only names, an id only ids)."""
        return any_group_matches(self.groups, wanted)

    def __repr__(self) -> str:
        kind = "service token" if self.is_service_token else "user"
        return f"<AccessIdentity {kind} {self.name!r}>"
