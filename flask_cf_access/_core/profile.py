"""The rest of a user's Access identity: device posture, MFA, identity provider, login time.

:func:`parse_profile` reads the document ``get-identity`` answered (the one
that gives a user's groups) into an :class:`AccessProfile`, strictly: a field
of the wrong shape (a posture list where a mapping belongs, ``"success":
"true"``, a number for a country) is :class:`MalformedProfile`, and fails every
rule on the profile; a field it does not know is kept in :attr:`AccessProfile.raw`.

:class:`ContextRule` is one rule on a profile (MFA, authentication methods,
identity provider, posture checks, WARP, Gateway, country, login age, client
certificate); :func:`context_rules` builds them from the keywords that
:func:`~flask_cf_access.require` takes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from .claims import frozen
from .errors import Reason

#: Authentication methods (RFC 8176 ``amr`` values) by the factor they are: something
#: one knows, has, or is. Two kinds in one ``amr``, or ``mfa`` itself, make MFA.
FACTOR_KINDS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(("pwd", "pin", "kba"), "knows"),
        **dict.fromkeys(("hwk", "swk", "otp", "sms", "tel", "sc"), "has"),
        **dict.fromkeys(("face", "fpt", "iris", "retina", "vbm"), "is"),
    }
)
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


class MalformedProfile(ValueError):
    """A field of a get-identity answer does not have the shape Access gives it."""


@dataclass(frozen=True)
class PostureResult:
    """The result of one device posture rule, as the edge last checked it."""

    #: The rule's id (the key Access files the result under): what rules name.
    rule_id: str
    #: Whether the device passed; ``None`` when the answer does not say (never passes).
    success: bool | None = None
    #: The kind of check, e.g. ``"disk_encryption"``, ``"warp"``, ``"os_version"``.
    type: str | None = None
    #: The rule's name: text an administrator may edit, so never match on it.
    rule_name: str | None = None
    #: When the edge last ran the check (ISO 8601 text, as Access gives it).
    timestamp: str | None = None
    #: What the check found (read-only), e.g. ``{"drives": {"C": {"encrypted": true}}}``.
    check: Any = None
    #: What the rule asks (read-only), e.g. ``{"requireAll": true}``.
    input: Any = None


@dataclass(frozen=True)
class IdentityProvider:
    """The identity provider the user signed in with."""

    #: Its id in the Access team.
    id: str | None = None
    #: Its kind, e.g. ``"azureAD"``, ``"okta"``, ``"google"``, ``"onetimepin"``.
    type: str | None = None


@dataclass(frozen=True)
class DeviceSession:
    """One WARP device session of the user (:attr:`AccessProfile.device_sessions`)."""

    #: When the device last authenticated (seconds since the epoch), if said.
    last_authenticated: float | None = None
    #: The session as Access gave it (read-only).
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False)


@dataclass(frozen=True)
class MutualTLS:
    """The client certificate (mTLS) Access saw at sign-in (``mtls_auth``)."""

    cert_presented: bool | None = None
    cert_serial: str | None = None
    cert_issuer_dn: str | None = None
    cert_issuer_ski: str | None = None
    #: Access's verdict on the certificate, e.g. ``"OK"`` or ``"NONE"``.
    auth_status: str | None = None


@dataclass(frozen=True)
class AccessProfile:
    """What Access knows of a signed-in user beyond the token: ``current_identity.profile``.

    Read from the same ``get-identity`` answer as the groups. Every field is
    optional (``None`` or empty when the answer has none); anything not named
    here is in :attr:`raw`. Service tokens have no profile.
    """

    #: Device posture results by rule id (the keys of ``devicePosture``).
    posture: Mapping[str, PostureResult] = field(default_factory=_empty)
    #: When the user signed in (the identity's ``iat``), seconds since the epoch.
    login_at: float | None = None
    #: How the user authenticated (``amr``), e.g. ``("pwd", "hwk")``.
    amr: tuple[str, ...] = ()
    #: The identity provider signed in with.
    idp: IdentityProvider | None = None
    #: The country the user authenticated from (``geo.country``), as Access gives it.
    country: str | None = None
    #: Whether the user came through the WARP client (``is_warp``).
    warp: bool | None = None
    #: Whether WARP is enrolled in the team's Gateway (``is_gateway``).
    gateway: bool | None = None
    #: The WARP device's id.
    device_id: str | None = None
    #: The user's WARP device sessions, by device id.
    device_sessions: Mapping[str, DeviceSession] = field(default_factory=_empty)
    #: Claims the OIDC identity provider passed (read-only).
    oidc_fields: Mapping[str, Any] = field(default_factory=_empty)
    #: SAML attributes or OIDC claims the team passes on (read-only).
    custom: Mapping[str, Any] = field(default_factory=_empty)
    #: The client certificate Access saw, if the answer says.
    mtls: MutualTLS | None = None
    #: The IP address the user signed in from.
    ip: str | None = None
    #: When this process had this answer from Cloudflare, by its own clock
    #: (seconds since the epoch); ``None`` when it was read from the shared
    #: cache, where another process may have stored it: no other host's clock
    #: is trusted to tell its age.
    fetched_at: float | None = None
    #: The whole answer, read-only all the way down.
    raw: Mapping[str, Any] = field(default_factory=_empty, repr=False)

    @property
    def mfa(self) -> bool:
        """Whether the user signed in with more than one factor.

        Yes when ``amr`` holds ``mfa``, or methods of two kinds among something
        known (``pwd``, ``pin``, ``kba``), held (``hwk``, ``swk``, ``otp``,
        ``sms``, ``tel``, ``sc``) and inherent (``face``, ``fpt``, ``iris``,
        ``retina``, ``vbm``). A single method, however strong, is not.
        """
        if "mfa" in self.amr:
            return True
        return len({FACTOR_KINDS[method] for method in self.amr if method in FACTOR_KINDS}) > 1

    def posture_passed(self, rule_id: str) -> bool:
        """Whether the posture rule ``rule_id`` has a result here, and it succeeded."""
        result = self.posture.get(rule_id)
        return result is not None and result.success is True


# -- parsing ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceTokenProfile:
    """What ``CF_ACCESS_SERVICE_TOKENS`` says of one known service token."""

    #: The name it goes by in logs, ``REMOTE_USER`` and ``current_identity.name``.
    name: str
    #: Its groups (names, or ``"id:<id>"``), as a user's groups count.
    groups: tuple[str, ...] = ()
    #: Roles it has whatever its groups.
    roles: frozenset[str] = frozenset()


def parse_profile(document: Mapping[str, Any], *, fetched_at: float | None = None) -> AccessProfile:
    """The profile in a ``get-identity`` answer.

    :raises MalformedProfile: a known field of the wrong shape; it names the field.
    """
    if not isinstance(document, Mapping):
        raise MalformedProfile("the identity is not an object")
    geo = _mapping(document, "geo")
    idp = _mapping(document, "idp")
    mtls = _mapping(document, "mtls_auth")
    return AccessProfile(
        posture=MappingProxyType(
            {
                rule_id: _posture(rule_id, entry)
                for rule_id, entry in _mapping(document, "devicePosture").items()
            }
        ),
        login_at=_number(document, "iat"),
        amr=_strings(document, "amr"),
        idp=(
            IdentityProvider(id=_text(idp, "idp.id"), type=_text(idp, "idp.type"))
            if "idp" in document
            else None
        ),
        country=_text(geo, "geo.country"),
        warp=_flag(document, "is_warp"),
        gateway=_flag(document, "is_gateway"),
        device_id=_text(document, "device_id"),
        device_sessions=MappingProxyType(
            {
                device: _device_session(device, session)
                for device, session in _mapping(document, "device_sessions").items()
            }
        ),
        oidc_fields=frozen(dict(_mapping(document, "oidc_fields"))),
        custom=frozen(dict(_mapping(document, "custom"))),
        mtls=(
            MutualTLS(
                cert_presented=_flag(mtls, "mtls_auth.cert_presented"),
                cert_serial=_text(mtls, "mtls_auth.cert_serial"),
                cert_issuer_dn=_text(mtls, "mtls_auth.cert_issuer_dn"),
                cert_issuer_ski=_text(mtls, "mtls_auth.cert_issuer_ski"),
                auth_status=_text(mtls, "mtls_auth.auth_status"),
            )
            if "mtls_auth" in document
            else None
        ),
        ip=_text(document, "ip"),
        fetched_at=fetched_at,
        raw=frozen(dict(document)),
    )


def _value(where: Mapping[str, Any], path: str) -> Any:
    return where.get(path.rpartition(".")[2])


def _mapping(where: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    value = _value(where, path)
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise MalformedProfile(f"{path} is not an object")
    return value


def _text(where: Mapping[str, Any], path: str) -> str | None:
    value = _value(where, path)
    if value is None or isinstance(value, str):
        return value
    raise MalformedProfile(f"{path} is not a string")


def _flag(where: Mapping[str, Any], path: str) -> bool | None:
    value = _value(where, path)
    if value is None or isinstance(value, bool):
        return value
    raise MalformedProfile(f"{path} is not true or false")


def _number(where: Mapping[str, Any], path: str) -> float | None:
    value = _value(where, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedProfile(f"{path} is not a number")
    return float(value)


def _strings(where: Mapping[str, Any], path: str) -> tuple[str, ...]:
    value = _value(where, path)
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise MalformedProfile(f"{path} is not a list of strings")
    return tuple(value)


def _posture(rule_id: str, entry: object) -> PostureResult:
    path = "devicePosture[…]"
    if not isinstance(entry, Mapping):
        raise MalformedProfile(f"{path} is not an object")
    if _text(entry, f"{path}.id") not in (None, rule_id):
        raise MalformedProfile(f"{path}.id is not the rule id it is filed under")
    return PostureResult(
        rule_id=rule_id,
        success=_flag(entry, f"{path}.success"),
        type=_text(entry, f"{path}.type"),
        rule_name=_text(entry, f"{path}.rule_name"),
        timestamp=_text(entry, f"{path}.timestamp"),
        check=frozen(entry.get("check")),
        input=frozen(entry.get("input")),
    )


def _device_session(device: str, session: object) -> DeviceSession:
    path = "device_sessions[…]"
    if not isinstance(session, Mapping):
        raise MalformedProfile(f"{path} is not an object")
    return DeviceSession(
        last_authenticated=_number(session, f"{path}.last_authenticated"),
        raw=frozen(dict(session)),
    )


# -- rules -----------------------------------------------------------------------

#: The kinds of :class:`ContextRule`, as :func:`context_rules` spells their keywords.
ContextRuleKind = Literal[
    "mfa",
    "amr",
    "idp",
    "posture",
    "warp",
    "gateway",
    "country",
    "max_login_age",
    "client_certificate",
]

_REASONS: Mapping[str, Reason] = MappingProxyType(
    {
        "mfa": Reason.MFA_REQUIRED,
        "amr": Reason.AMR_NOT_ALLOWED,
        "idp": Reason.IDP_NOT_ALLOWED,
        "posture": Reason.POSTURE_FAILED,
        "warp": Reason.WARP_REQUIRED,
        "gateway": Reason.GATEWAY_REQUIRED,
        "country": Reason.COUNTRY_NOT_ALLOWED,
        "max_login_age": Reason.LOGIN_TOO_OLD,
        "client_certificate": Reason.CLIENT_CERTIFICATE_REQUIRED,
    }
)
#: Rules on what changes while a token lives: judged on a profile no older than
#: ``CF_ACCESS_PROFILE_MAX_AGE``.
_FRESH_KINDS = frozenset({"posture", "max_login_age"})


@dataclass(frozen=True)
class ContextRule:
    """One rule on a user's :class:`AccessProfile`; a service token never meets one.

    :func:`~flask_cf_access.require` makes them from its keywords (``mfa=``,
    ``posture=``…), and ``CF_ACCESS_REQUIRE_MFA`` and ``CF_ACCESS_REQUIRE_POSTURE``
    from the settings; :attr:`Requirement.context` and
    :attr:`AccessSettings.context_rules` hold them.
    """

    #: Which rule: the keyword of :func:`~flask_cf_access.require` it comes from
    #: (``"mfa"``, ``"amr"``, ``"idp"``, ``"posture"``, ``"warp"``, ``"gateway"``,
    #: ``"country"``, ``"max_login_age"``, ``"client_certificate"``).
    kind: ContextRuleKind
    #: The names it takes (methods, providers, rule ids, countries); empty for a yes/no rule.
    values: tuple[str, ...] = ()
    #: For ``max_login_age``: the most seconds since the user signed in.
    seconds: int = 0

    @property
    def reason(self) -> Reason:
        """The :class:`~flask_cf_access.Reason` a refusal by this rule gives."""
        return _REASONS[self.kind]

    @property
    def needs_fresh_profile(self) -> bool:
        """Whether it is judged on a profile no older than ``CF_ACCESS_PROFILE_MAX_AGE``."""
        return self.kind in _FRESH_KINDS

    def holds(self, profile: AccessProfile, login_age: float | None) -> bool:
        """Whether ``profile`` meets the rule; ``login_age`` is seconds since ``login_at``."""
        kind = self.kind
        if kind == "mfa":
            return profile.mfa
        if kind == "amr":
            return any(method in self.values for method in profile.amr)
        if kind == "idp":
            idp = profile.idp
            return idp is not None and any(
                name is not None and name in self.values for name in (idp.id, idp.type)
            )
        if kind == "posture":
            return all(profile.posture_passed(rule_id) for rule_id in self.values)
        if kind == "warp":
            return profile.warp is True
        if kind == "gateway":
            return profile.gateway is True
        if kind == "country":
            country = profile.country
            return country is not None and country.upper() in self.values
        if kind == "max_login_age":
            return login_age is not None and login_age <= self.seconds
        mtls = profile.mtls
        return mtls is not None and mtls.cert_presented is True and mtls.auth_status in (None, "OK")

    def describe(self) -> str:
        """In words, for the route audit: e.g. ``posture: all of f6f9391e``."""
        if self.kind == "max_login_age":
            return f"login within {self.seconds} s"
        if not self.values:
            return self.kind.replace("_", " ")
        match = "all" if self.kind == "posture" else "any"
        return f"{self.kind}: {match} of {', '.join(self.values)}"


def _names(keyword: str, value: Iterable[str] | str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError(f"{keyword} must be non-empty strings.")
    return tuple(dict.fromkeys(names))


def _yes_no(keyword: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{keyword} must be True or False.")
    return value


def context_rules(
    *,
    mfa: bool = False,
    amr: Iterable[str] = (),
    idp: Iterable[str] = (),
    posture: Iterable[str] = (),
    warp: bool = False,
    gateway: bool = False,
    country: Iterable[str] = (),
    max_login_age: int | None = None,
    client_certificate: bool = False,
) -> tuple[ContextRule, ...]:
    """The :class:`ContextRule` each keyword asks for (see :func:`~flask_cf_access.require`).

    :raises TypeError: a name that is not a non-empty string, a flag that is
        not a bool, a country that is not two letters, a login age that is not
        a whole number of seconds above 0.
    """
    rules: list[ContextRule] = []
    flags: tuple[tuple[ContextRuleKind, bool], ...] = (
        ("mfa", mfa),
        ("warp", warp),
        ("gateway", gateway),
        ("client_certificate", client_certificate),
    )
    for kind, flag in flags:
        if _yes_no(kind, flag):
            rules.append(ContextRule(kind))
    named: tuple[tuple[ContextRuleKind, Iterable[str]], ...] = (
        ("amr", amr),
        ("idp", idp),
        ("posture", posture),
    )
    for kind, names in named:
        values = _names(kind, names)
        if values:
            rules.append(ContextRule(kind, values))
    countries = _names("country", country)
    if not all(_COUNTRY.fullmatch(code) for code in countries):
        raise TypeError("country must be two-letter ISO 3166 codes, e.g. 'FR'.")
    if countries:
        rules.append(ContextRule("country", tuple(code.upper() for code in countries)))
    if max_login_age is not None:
        if isinstance(max_login_age, bool) or not isinstance(max_login_age, int):
            raise TypeError("max_login_age must be a whole number of seconds.")
        if max_login_age <= 0:
            raise TypeError("max_login_age must be above 0.")
        rules.append(ContextRule("max_login_age", seconds=max_login_age))
    return tuple(rules)


# -- the middleware's headers ------------------------------------------------------

#: ``profile.<name>`` header sources of one value each, to whether they are judged
#: on a fresh profile (they change while a token lives).
_HEADER_FIELDS: Mapping[str, bool] = MappingProxyType(
    {
        "mfa": False,
        "amr": False,
        "idp": False,
        "idp_id": False,
        "country": False,
        "warp": False,
        "gateway": False,
        "device_id": False,
        "login_at": True,
        "posture": True,
    }
)
#: ``profile.<name>.<key>`` header sources: one posture result, attribute or OIDC field.
_HEADER_FAMILIES = ("posture.", "custom.", "oidc_fields.")
PROFILE_SOURCE = "profile."


def valid_header_source(source: str) -> bool:
    """Whether ``profile.…`` names something of the profile a header can carry."""
    name = source.removeprefix(PROFILE_SOURCE)
    if name in _HEADER_FIELDS:
        return True
    return any(name.startswith(family) and name != family for family in _HEADER_FAMILIES)


def header_needs_fresh_profile(source: str) -> bool:
    """Whether the header for ``source`` (``profile.…``) is filled from a fresh profile."""
    name = source.removeprefix(PROFILE_SOURCE)
    return _HEADER_FIELDS.get(name, name.startswith("posture."))


def header_value(profile: AccessProfile, source: str) -> object:
    """What a header mapped to ``source`` (``profile.…``, :func:`valid_header_source`) carries.

    ``profile.mfa`` and ``profile.posture.<rule id>`` are ``true`` or ``false``
    (a posture rule without a result is ``false``); ``profile.posture`` lists the
    rule ids that passed; ``profile.idp`` is the provider's type, ``profile.idp_id``
    its id; the others are the field as it is.
    """
    name = source.removeprefix(PROFILE_SOURCE)
    if name == "mfa":
        return profile.mfa
    if name == "posture":
        return sorted(rule_id for rule_id in profile.posture if profile.posture_passed(rule_id))
    if name.startswith("posture."):
        return profile.posture_passed(name.removeprefix("posture."))
    if name in ("idp", "idp_id"):
        idp = profile.idp
        return None if idp is None else idp.type if name == "idp" else idp.id
    if name.startswith("custom."):
        return profile.custom.get(name.removeprefix("custom."))
    if name.startswith("oidc_fields."):
        return profile.oidc_fields.get(name.removeprefix("oidc_fields."))
    return getattr(profile, name)
