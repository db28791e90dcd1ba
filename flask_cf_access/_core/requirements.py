"""What a resource requires of an identity, and the one place it is judged.

A :class:`Requirement` is built by the decorators (``@require_group``,
``@require_role``, ``@require_check``, ``@require_service_token``,
``@require_context``), by :func:`require` for
:func:`~flask_cf_access.verify_access_in_request` and the middleware's
``rules``, and judged by :class:`AccessPolicy`, which adds the app-wide rules
(e-mail domains and addresses, known service tokens, MFA and device posture).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NoReturn

from .addresses import EmailAddress, MalformedAddress
from .errors import AccessError, Reason, refusal
from .groups import WantedGroups, wanted_groups
from .profile import ContextRule, ServiceTokenProfile, context_rules
from .settings import AccessSettings, is_client_id

if TYPE_CHECKING:
    from .identity import AccessIdentity

logger = logging.getLogger("flask_cf_access")

#: ``"any"``: one of the names is enough; ``"all"``: every one is needed.
Match = Literal["any", "all"]
#: A predicate on the identity; only ``True`` lets the request through.
IdentityCheck = Callable[["AccessIdentity"], bool]
#: One condition on names: how they must match, and the names.
Clause = tuple[Match, tuple[str, ...]]
#: A requirement, or the app-wide rules, prepared: raises to refuse an identity, else returns.
Judge = Callable[["AccessIdentity"], None]


def _prepared(requirement: Requirement) -> Judge | None:
    """The parts of ``requirement`` that can refuse, as one judge, in order: service
    tokens, groups, roles, predicates; ``None`` when no part can refuse."""
    steps: list[Judge] = []
    if not requirement.allow_service_tokens or requirement.service_tokens is not None:
        steps.append(_service_tokens_step(requirement))
    steps.extend(_groups_step(match, names) for match, names in requirement.groups)
    if requirement.roles:
        steps.append(_roles_step(requirement.roles))
    if requirement.context:
        steps.append(_context_step(requirement.context, service_tokens_meet=False))
    if requirement.checks:
        steps.append(_checks_step(requirement.checks))
    if len(steps) <= 1:
        return steps[0] if steps else None
    all_steps = tuple(steps)

    def judge(identity: AccessIdentity) -> None:
        for step in all_steps:
            step(identity)

    return judge


def _service_tokens_step(requirement: Requirement) -> Judge:
    refused = not requirement.allow_service_tokens
    wanted = requirement.service_tokens

    def service_tokens_step(identity: AccessIdentity) -> None:
        if identity.is_service_token:
            if refused:
                raise refusal(Reason.SERVICE_TOKEN_REFUSED)
            if wanted and identity.common_name not in wanted:
                raise refusal(Reason.SERVICE_TOKEN_NOT_ADMITTED)
        elif wanted is not None:
            raise refusal(Reason.SERVICE_TOKEN_REQUIRED)

    return service_tokens_step


def _groups_step(match: Match, names: tuple[str, ...]) -> Judge:
    # Parsed once, here: names match groups' names, "id:…" groups' ids.
    if match == "any":
        wanted = wanted_groups(names)

        def in_any_group(identity: AccessIdentity) -> None:
            if not wanted.any_of(identity.groups):
                raise refusal(Reason.NOT_IN_GROUP)

        return in_any_group

    each = tuple(wanted_groups((name,)) for name in names)

    def in_all_groups(identity: AccessIdentity) -> None:
        groups = identity.groups
        if not all(wanted.any_of(groups) for wanted in each):
            raise refusal(Reason.NOT_IN_ALL_GROUPS)

    return in_all_groups


def _roles_step(clauses: tuple[Clause, ...]) -> Judge:
    def has_roles(identity: AccessIdentity) -> None:
        roles = identity.roles
        for match, names in clauses:
            if match == "any":
                if roles.isdisjoint(names):
                    raise refusal(Reason.NO_ROLE)
            elif not roles.issuperset(names):
                raise refusal(Reason.NOT_ALL_ROLES)

    return has_roles


def _context_step(rules: tuple[ContextRule, ...], *, service_tokens_meet: bool) -> Judge:
    """Every rule on the user's profile, judged on one profile: one no older than
    ``CF_ACCESS_PROFILE_MAX_AGE`` when a rule is on posture or login age.

    A service token has no profile: it meets no rule, unless ``service_tokens_meet``
    (the app-wide rules, which, like the e-mail rules, are for users).
    """
    fresh = any(rule.needs_fresh_profile for rule in rules)
    timed = any(rule.kind == "max_login_age" for rule in rules)

    def meets_context_rules(identity: AccessIdentity) -> None:
        if identity.is_service_token:
            if service_tokens_meet:
                return
            raise refusal(rules[0].reason)
        profile = identity.fresh_profile if fresh else identity.profile
        if profile is None:  # an identity made without a way to ask get-identity
            raise refusal(rules[0].reason)
        login_age = identity.login_age if timed else None
        for rule in rules:
            if not rule.holds(profile, login_age):
                raise refusal(rule.reason)

    return meets_context_rules


def _checks_step(checks: tuple[IdentityCheck, ...]) -> Judge:
    def passes_checks(identity: AccessIdentity) -> None:
        for check in checks:
            if _passes(check, identity) is not True:
                raise refusal(Reason.CHECK_FAILED)

    return passes_checks


@dataclass(frozen=True)
class Requirement:
    """What an identity must be to use a resource; every part must hold.

    Build one with :func:`require`; combine two with ``&`` (both must hold).
    The empty requirement asks for a verified token and nothing more.
    """

    #: Conditions on the identity's groups (names, or ``"id:<id>"``), each ``(match, names)``.
    groups: tuple[Clause, ...] = ()
    #: Conditions on the identity's roles (``CF_ACCESS_ROLES``), each ``(match, names)``.
    roles: tuple[Clause, ...] = ()
    #: Predicates on the identity; each must return ``True``.
    checks: tuple[IdentityCheck, ...] = ()
    #: ``None``: people and service tokens alike. Otherwise only service
    #: tokens, and, when not empty, only those client ids.
    service_tokens: frozenset[str] | None = None
    #: ``False``: service tokens are refused.
    allow_service_tokens: bool = True
    #: The ``CF_ACCESS_APPLICATIONS`` the resource belongs to, by name: the path
    #: map must put it under each (checked at start-up), and the token's ``aud``
    #: must hold the AUD of each.
    applications: frozenset[str] = frozenset()
    #: Rules on the user's profile (MFA, posture, login age…); each must hold.
    context: tuple[ContextRule, ...] = ()
    #: Its own parts prepared as one judge when it is made (``None``: they
    #: admit any verified token), so no request looks at a part that is empty.
    _judge: Judge | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_judge", _prepared(self))

    if not TYPE_CHECKING:  # a type checker already flags a Requirement used as a decorator

        def __call__(self, view: object) -> NoReturn:
            """Refuse use as a decorator: ``@require(...)`` above a view would guard nothing.

            :raises TypeError: always, saying what to write instead.
            """
            raise TypeError(
                "require(...) makes a Requirement, not a decorator: guard a view with"
                " @require_access(require(...)), a blueprint with"
                " bp.before_request(access_guard(require(...))), or pass it to"
                " verify_access_in_request(require(...))."
            )

    @property
    def needs_identity(self) -> bool:
        """Whether only some identities meet it: groups, roles, rules on the profile
        (MFA, posture, identity provider, login age…), predicates, or service tokens
        required. A request without a token can never meet such a requirement;
        ``allow_service_tokens=False`` alone does not make one (nobody is not a machine)."""
        return (
            bool(self.groups or self.roles or self.context or self.checks)
            or self.service_tokens is not None
        )

    @property
    def is_any_token(self) -> bool:
        """Whether any verified token meets it (nothing beyond the app-wide rules)."""
        return self == ANY_TOKEN

    def __and__(self, other: Requirement) -> Requirement:
        """A requirement met only when both ``self`` and ``other`` are.

        :raises ValueError: the two admit nobody together (service tokens
            required and refused, or two disjoint sets of client ids).
        """
        if not isinstance(other, Requirement):
            return NotImplemented
        if other.is_any_token:
            return self
        if self.is_any_token:
            return other
        service_tokens = self.service_tokens
        if other.service_tokens is not None:
            if service_tokens is None or not service_tokens:
                service_tokens = other.service_tokens
            elif other.service_tokens:
                service_tokens = service_tokens & other.service_tokens
                if not service_tokens:
                    raise ValueError("these requirements admit no service token at all")
        allow_service_tokens = self.allow_service_tokens and other.allow_service_tokens
        if service_tokens is not None and not allow_service_tokens:
            raise ValueError("these requirements both need and refuse service tokens")
        return Requirement(
            groups=_union(self.groups, other.groups),
            roles=_union(self.roles, other.roles),
            checks=self.checks + tuple(c for c in other.checks if c not in self.checks),
            service_tokens=service_tokens,
            allow_service_tokens=allow_service_tokens,
            applications=self.applications | other.applications,
            context=self.context + tuple(r for r in other.context if r not in self.context),
        )

    def describe(self) -> str:
        """In words, for ``flask cf-access routes``: e.g. ``token; roles: any of admin``."""
        parts = ["token"]
        for kind, clauses in (("groups", self.groups), ("roles", self.roles)):
            for match, names in clauses:
                parts.append(f"{kind}: {match} of {', '.join(names)}")
        if self.service_tokens is not None:
            parts.append(
                "service tokens only"
                + (f": {', '.join(sorted(self.service_tokens))}" if self.service_tokens else "")
            )
        elif not self.allow_service_tokens:
            parts.append("no service tokens")
        parts.extend(rule.describe() for rule in self.context)
        for check in self.checks:
            parts.append(f"check: {_name(check)}")
        if self.applications:
            parts.append(f"application: {', '.join(sorted(self.applications))}")
        return "; ".join(parts)


#: A verified token, nothing more.
ANY_TOKEN = Requirement()


def _union(first: tuple[Clause, ...], second: tuple[Clause, ...]) -> tuple[Clause, ...]:
    return first + tuple(clause for clause in second if clause not in first)


def _clause(kind: str, names: Iterable[str], match: str) -> tuple[Clause, ...]:
    """``(match, names)`` for ``names`` given, ``()`` for none.

    :raises TypeError: a name that is not a non-empty string, or another ``match``.
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError(f"{kind} must be non-empty strings.")
    if kind == "groups":
        try:
            wanted_groups(names)
        except ValueError as exc:
            raise TypeError(f"groups: {exc}") from exc
    if kind == "service_tokens" and not all(map(is_client_id, names)):
        raise TypeError("service_tokens must be client ids, '<id>.access', as Access shows them.")
    if match not in ("any", "all"):
        raise TypeError(f"match must be 'any' or 'all', not {match!r}.")
    if not names:
        return ()
    return (("all" if match == "all" and len(names) > 1 else "any", names),)


def require(
    *,
    groups: Iterable[str] = (),
    roles: Iterable[str] = (),
    match: Match = "any",
    check: IdentityCheck | None = None,
    service_tokens: Iterable[str] | None = None,
    allow_service_tokens: bool = True,
    application: str | None = None,
    mfa: bool = False,
    amr: Iterable[str] = (),
    idp: Iterable[str] = (),
    posture: Iterable[str] = (),
    warp: bool = False,
    gateway: bool = False,
    country: Iterable[str] = (),
    max_login_age: int | None = None,
    client_certificate: bool = False,
) -> Requirement:
    """A :class:`Requirement`, for ``verify_access_in_request`` and the middleware's ``rules``::

        require(roles=["admin"])
        require(groups=["Staff", "Oncall"], match="all") & require(check=in_office_hours)
        require(roles=["admin"], posture=[DISK_ENCRYPTION], amr=["hwk"], max_login_age=3600)

    The rules on the user's profile (``mfa`` to ``client_certificate``, see
    :doc:`context-rules`) each refuse with their own reason, and refuse every
    service token, which has no profile.

    :param groups: groups the identity must be in (``match``: any or all), by name,
        or by id written ``"id:<group id>"``: a name matches only a group's name,
        an id only a group's id.
    :param roles: roles (``CF_ACCESS_ROLES``) the identity must have (``match``: any or all).
    :param match: ``"any"`` (the default) or ``"all"``, for both ``groups`` and ``roles``.
    :param check: ``check(identity)`` must return ``True``.
    :param service_tokens: only service tokens may pass, and only these client
        ids unless empty.
    :param allow_service_tokens: ``False`` refuses service tokens.
    :param application: the name of the Access application (``CF_ACCESS_APPLICATIONS``)
        the resource belongs to; the path map must agree, or the app fails at start-up.
    :param mfa: the user signed in with more than one factor (:attr:`AccessProfile.mfa`).
    :param amr: the user signed in with any of these methods (``"hwk"``, ``"otp"``…).
    :param idp: the user signed in through any of these identity providers, by type or id.
    :param posture: every one of these device posture rules (by id) has succeeded.
    :param warp: the user came through the WARP client.
    :param gateway: the user's WARP is enrolled in the team's Gateway.
    :param country: the user authenticated from any of these countries (ISO 3166 codes).
    :param max_login_age: the user signed in at most this many seconds ago.
    :param client_certificate: Access saw a valid client certificate (mTLS).
    :raises TypeError: a name that is not a non-empty string, a group ``"id:"``
        with no id, a client id not of the form ``<id>.access``, a ``check``
        that is not callable or is async, ``match`` not ``"any"``/``"all"``,
        or a profile rule of the wrong type (a flag that is not a bool, a
        country that is not two letters, a login age that is not whole seconds above 0).
    :raises ValueError: service tokens both needed and refused.
    """
    if check is not None and (isinstance(check, Requirement) or not callable(check)):
        raise TypeError("check must be a callable taking the identity.")
    if inspect.iscoroutinefunction(check):
        raise TypeError("check must be a plain function: an async check cannot be awaited here.")
    tokens: frozenset[str] | None = None
    if service_tokens is not None:
        clauses = _clause("service_tokens", service_tokens, "any")
        tokens = frozenset(clauses[0][1]) if clauses else frozenset()
    requirement = Requirement(
        groups=_clause("groups", groups, match),
        roles=_clause("roles", roles, match),
        checks=() if check is None else (check,),
        allow_service_tokens=allow_service_tokens,
        applications=_application_names(application),
        context=context_rules(
            mfa=mfa,
            amr=amr,
            idp=idp,
            posture=posture,
            warp=warp,
            gateway=gateway,
            country=country,
            max_login_age=max_login_age,
            client_certificate=client_certificate,
        ),
    )
    if tokens is not None:
        requirement = requirement & Requirement(service_tokens=tokens)
    return ANY_TOKEN if requirement == ANY_TOKEN else requirement


def _application_names(application: str | None) -> frozenset[str]:
    """``require(application=...)`` as :attr:`Requirement.applications`.

    :raises TypeError: not a non-empty string.
    """
    if application is None:
        return frozenset()
    if not isinstance(application, str) or not application.strip():
        raise TypeError("application must be the name of one of CF_ACCESS_APPLICATIONS.")
    return frozenset({application.strip()})


class AccessPolicy:
    """An app's authorization settings, and the judge of every :class:`Requirement`.

    Holds the role mapping and the known service tokens that identities
    consult, and the app-wide rules (e-mail domains and addresses, known
    service tokens) that :meth:`authorize` applies before any requirement.
    """

    __slots__ = (
        "_app_wide_rules",
        "_context_rules",
        "_domains",
        "_emails",
        "_has_email_rules",
        "_role_groups",
        "_subdomains",
        "service_tokens",
    )

    def __init__(self, settings: AccessSettings) -> None:
        #: Role to the groups that grant it, parsed once (ids match ids, names names).
        self._role_groups: Mapping[str, WantedGroups] = {
            role: wanted_groups(groups) for role, groups in settings.roles.items()
        }
        #: Known service tokens by client id; ``None`` when any is accepted.
        self.service_tokens: Mapping[str, ServiceTokenProfile] | None = settings.service_tokens
        self._emails = settings.allowed_emails
        self._domains = frozenset(d for d in settings.allowed_email_domains if d[0] != ".")
        #: The domains whose subdomains are admitted (``.acme.com`` as ``acme.com``).
        self._subdomains = frozenset(d[1:] for d in settings.allowed_email_domains if d[0] == ".")
        self._has_email_rules = bool(self._emails or settings.allowed_email_domains)
        self._context_rules = settings.context_rules
        #: The app-wide rules prepared as one judge; ``None`` when there are none.
        self._app_wide_rules = self._prepared_app_wide_rules()

    def profile(self, client_id: str | None) -> ServiceTokenProfile | None:
        """What ``CF_ACCESS_SERVICE_TOKENS`` says of this client id, if anything."""
        if self.service_tokens is None or client_id is None:
            return None
        return self.service_tokens.get(client_id)

    def roles_of(self, identity: AccessIdentity) -> frozenset[str]:
        """The roles of ``identity``: from its groups, plus a known service token's own.

        Asks for the groups only when some role is mapped to groups.

        :raises AccessUnavailable: the groups were needed and could not be had.
        """
        profile = self.profile(identity.common_name) if identity.is_service_token else None
        roles = set(profile.roles) if profile is not None else set()
        if self._role_groups:
            groups = identity.groups
            roles.update(
                role for role, wanted in self._role_groups.items() if wanted.any_of(groups)
            )
        return frozenset(roles)

    def email_allowed(self, address: EmailAddress) -> bool:
        """Whether the e-mail rules let ``address`` in, matched on its parsed parts.

        ``acme.com`` admits that domain exactly; ``.acme.com`` admits its
        subdomains, by whole labels; an address rule admits that address, the
        local part's ASCII case ignored. Domains compare in A-label form.
        """
        if address.key in self._emails or address.domain in self._domains:
            return True
        return bool(self._subdomains) and not self._subdomains.isdisjoint(address.parent_domains)

    def authorize(self, identity: AccessIdentity, requirement: Requirement) -> None:
        """Refuse ``identity`` unless the app-wide rules and ``requirement`` admit it.

        In a fixed order, the first refusal winning: the app-wide rules (a
        service token not in ``CF_ACCESS_SERVICE_TOKENS``, a malformed e-mail
        or one outside the e-mail rules, a user without ``CF_ACCESS_REQUIRE_MFA``
        or ``CF_ACCESS_REQUIRE_POSTURE``), then ``requirement``: service tokens
        refused, required or not admitted, groups, roles, rules on the profile,
        predicates.

        :raises AccessForbidden: 403, with the :class:`~flask_cf_access.Reason` of the first
            rule or part of ``requirement`` that does not hold.
        :raises AccessUnavailable: 503, the groups or the profile were needed and
            could not be had (or the profile is malformed).
        """
        if self._app_wide_rules is not None:
            self._app_wide_rules(identity)
        if requirement._judge is not None:
            requirement._judge(identity)

    def _prepared_app_wide_rules(self) -> Judge | None:
        known = self.service_tokens
        email_rules = self._has_email_rules
        context = (
            _context_step(self._context_rules, service_tokens_meet=True)
            if self._context_rules
            else None
        )
        if known is None and not email_rules and context is None:
            return None
        email_allowed = self.email_allowed

        def app_wide_rules(identity: AccessIdentity) -> None:
            if identity.is_service_token:
                if known is not None and identity.common_name not in known:
                    raise refusal(Reason.UNKNOWN_SERVICE_TOKEN)
            elif email_rules:
                try:
                    address = identity._parsed_email()
                except MalformedAddress as exc:
                    raise refusal(Reason.MALFORMED_EMAIL) from exc
                if address is None or not email_allowed(address):
                    raise refusal(Reason.EMAIL_NOT_ALLOWED)
            if context is not None:
                context(identity)

        return app_wide_rules


def _passes(check: IdentityCheck, identity: AccessIdentity) -> object:
    """What ``check`` says of ``identity``; ``False`` if it raised (fail closed, logged)."""
    try:
        return check(identity)
    except AccessError:  # a check may refuse or be unavailable on purpose
        raise
    except Exception:
        # A claim the check did not expect must not become a 500: refuse, and
        # log the traceback so the check's author sees it.
        logger.exception("Cloudflare Access: the check %s raised; refusing", _name(check))
        return False


def _name(check: IdentityCheck) -> str:
    return getattr(check, "__qualname__", None) or repr(check)
