"""``CF_ACCESS_*`` settings, read and validated once, at start-up."""

from __future__ import annotations

import difflib
import functools
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cachelib import BaseCache

from .addresses import MalformedAddress, parse_address, parse_hostname
from .applications import ApplicationSettings, applications_setting
from .cache_config import URL_FORMS, cache_from_url
from .csrf import origin_of
from .errors import ConfigurationError, UnknownSettingWarning, warn_renamed
from .groups import wanted_groups
from .profile import ContextRule, ServiceTokenProfile, context_rules

#: Every setting with its default; ``None`` marks a required one. Each is the
#: :class:`AccessSettings` attribute of its name less the prefix, lower case
#: (``CF_ACCESS_TEAM_DOMAIN``: ``team_domain``), and the middleware's keyword
#: argument of that name, unless it is in :data:`FLASK_ONLY`.
DEFAULTS: Mapping[str, Any] = {
    "CF_ACCESS_TEAM_DOMAIN": None,
    "CF_ACCESS_AUDIENCE": None,
    "CF_ACCESS_APPLICATIONS": None,
    "CF_ACCESS_CERTS_URL": "",
    "CF_ACCESS_IDENTITY_URL": "",
    "CF_ACCESS_LEEWAY": 30,
    "CF_ACCESS_KEYS_MAX_AGE": 900,
    "CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL": 60,
    "CF_ACCESS_HTTP_TIMEOUT": 5.0,
    "CF_ACCESS_UPSTREAM_WAIT": 1.0,
    "CF_ACCESS_IDENTITY_CONCURRENCY": 4,
    "CF_ACCESS_CACHE": None,
    "CF_ACCESS_LOAD_KEYS_ON_INIT": True,
    "CF_ACCESS_MAX_TOKEN_AGE": None,
    "CF_ACCESS_TOKEN_CACHE_SIZE": 4096,
    "CF_ACCESS_ROLES": None,
    "CF_ACCESS_ALLOWED_EMAIL_DOMAINS": None,
    "CF_ACCESS_ALLOWED_EMAILS": None,
    "CF_ACCESS_SERVICE_TOKENS": None,
    "CF_ACCESS_CSRF_PROTECT": "cookie",
    "CF_ACCESS_TRUSTED_ORIGINS": (),
    "CF_ACCESS_UNAUTHORIZED": "status",
    "CF_ACCESS_PRIVATE_RESPONSES": True,
    "CF_ACCESS_STAND_IN": None,
    "CF_ACCESS_PROFILE_MAX_AGE": 300,
    "CF_ACCESS_REQUIRE_MFA": False,
    "CF_ACCESS_REQUIRE_POSTURE": None,
    "CF_ACCESS_PROTECT_ALL": False,
    "CF_ACCESS_PUBLIC_ENDPOINTS": (),
    "CF_ACCESS_EXPIRY_HEADER": False,
}

#: Settings of the Flask extension alone: the middleware takes no keyword for
#: them (it has its own options, such as ``public_paths``).
FLASK_ONLY = frozenset(
    {"CF_ACCESS_PROTECT_ALL", "CF_ACCESS_PUBLIC_ENDPOINTS", "CF_ACCESS_EXPIRY_HEADER"}
)


@dataclass(frozen=True)
class AccessSettings:
    """The validated configuration of one application (or middleware).

    Each attribute is the ``CF_ACCESS_*`` key of its name, upper case
    (:attr:`leeway` is ``CF_ACCESS_LEEWAY``), and the middleware's keyword
    argument of that name; the Flask-only ones are marked so.
    """

    #: Host name of the Access team, e.g. ``acme.cloudflareaccess.com``.
    team_domain: str
    #: AUD tags accepted; a token passes if its ``aud`` holds any of them. A
    #: single string is one tag.
    audience: tuple[str, ...]
    #: Where the team publishes its signing keys.
    certs_url: str
    #: Where the identity (with groups) of a token can be asked for.
    identity_url: str
    #: The Access applications in front of the app, each with its AUD tag(s) and the
    #: paths (and hosts) it covers; a request belongs to the one with the longest
    #: matching path, and a token passes only if its ``aud`` holds that one's AUD.
    #: Empty: one application, ``audience``, for every path.
    applications: tuple[ApplicationSettings, ...] = ()
    #: Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    leeway: int = 30
    #: Seconds a fetched key set is trusted before it is fetched again.
    keys_max_age: int = 900
    #: Least seconds between two fetches forced by an unknown ``kid``.
    keys_min_refresh_interval: int = 60
    #: Seconds a call to Cloudflare may take in all (connect, headers, body), and
    #: the longest any request waits for another's fetch.
    http_timeout: float = 5.0
    #: Seconds a request waits for keys or an identity being fetched (at most
    #: the HTTP timeout); then it gets 503 while the fetch goes on in the
    #: background and serves the requests after it.
    upstream_wait: float = 1.0
    #: Most ``get-identity`` calls in flight at once in one process; a request
    #: finding them all busy gets 503 at once.
    identity_concurrency: int = 4
    #: Whether :meth:`~flask_cf_access.CloudflareAccess.init_app` loads the keys right away.
    load_keys_on_init: bool = True
    #: If set, tokens issued longer ago than this many seconds are refused.
    max_token_age: int | None = None
    #: How many verified tokens are remembered to skip repeat signature checks.
    token_cache_size: int = 4096
    #: Role to the groups that grant it, any of them: names, or ids written ``"id:<id>"``.
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: E-mail domains a user must be in (in ``xn--`` form, lower case); ``.acme.com``
    #: stands for its subdomains, by whole labels. Malformed addresses never pass.
    allowed_email_domains: tuple[str, ...] = ()
    #: E-mail addresses let in whatever their domain (ASCII lower case, the
    #: domain in ``xn--`` form).
    allowed_emails: frozenset[str] = frozenset()
    #: Known service tokens by client id; ``None`` lets any service token in.
    service_tokens: Mapping[str, ServiceTokenProfile] | None = None
    #: Which users' unsafe requests must come from a trusted origin:
    #: ``"cookie"`` (those carrying the Access cookie), ``"always"`` or ``"off"``.
    csrf_protect: str = "cookie"
    #: Origins (``scheme://host[:port]``) trusted besides the request's own.
    trusted_origins: frozenset[str] = frozenset()
    #: ``"status"`` answers 401; ``"redirect"`` sends a browser's GET to the login page.
    unauthorized: str = "status"
    #: Whether an admitted request's response gets ``Cache-Control: private`` when
    #: it sets no ``Cache-Control`` of its own, so no shared cache keeps one user's page.
    private_responses: bool = True
    #: Where keys and identities are shared between workers and hosts; ``None``:
    #: each process keeps its own.
    cache: BaseCache | None = None
    #: Only for the local stand-in: the secret URL on 127.0.0.1 where
    #: ``flask cf-access mint`` asks it for tokens (see :doc:`cli`). Never set
    #: it with a real team.
    stand_in: str | None = None
    #: Seconds a user's profile (device posture, login time) may have been had
    #: for a rule on posture or login age to be judged on it.
    profile_max_age: int = 300
    #: Whether every user must have signed in with more than one factor, on
    #: every view (``mfa_required``); service tokens are not held to it.
    require_mfa: bool = False
    #: Device posture rule ids every user's device must have passed, on every
    #: view (``posture_failed``); service tokens are not held to them.
    require_posture: tuple[str, ...] = ()
    #: Flask only. Deny by default: every endpoint needs a verified token unless
    #: it is marked public (see :doc:`views`).
    protect_all: bool = False
    #: Flask only. Endpoint names let through without a token under
    #: ``CF_ACCESS_PROTECT_ALL``, such as ``"static"``.
    public_endpoints: frozenset[str] = frozenset()
    #: Flask only. Whether admitted responses carry ``Access-Session-Expires``:
    #: when the request's token expires, in seconds since the epoch (see :doc:`spa`).
    expiry_header: bool = False

    def __post_init__(self) -> None:
        audience: object = self.audience
        if isinstance(audience, str):  # one tag, never its characters
            audience = (audience,)
        elif isinstance(audience, (list, tuple, set, frozenset)):
            audience = tuple(audience)
        if (
            not isinstance(audience, tuple)
            or not audience
            or not all(isinstance(tag, str) and _AUD_TAG.fullmatch(tag) for tag in audience)
        ):
            raise TypeError(
                "audience must be one or more AUD tags, as non-empty strings of printable"
                " ASCII with no space."
            )
        object.__setattr__(self, "audience", audience)
        if not all(set(application.audience) <= set(audience) for application in self.applications):
            raise TypeError("audience must hold the AUD tags of every application.")

    @property
    def issuer(self) -> str:
        """The ``iss`` every token of this team carries."""
        return f"https://{self.team_domain}"

    @property
    def context_rules(self) -> tuple[ContextRule, ...]:
        """The rules every user must meet: :attr:`require_mfa` and :attr:`require_posture`."""
        return context_rules(mfa=self.require_mfa, posture=self.require_posture)

    @property
    def audiences(self) -> tuple[str, ...]:
        """Deprecated spelling of :attr:`audience`."""
        warn_renamed("AccessSettings.audiences", "AccessSettings.audience")
        return self.audience

    @property
    def stand_in_url(self) -> str | None:
        """Deprecated spelling of :attr:`stand_in`."""
        warn_renamed("AccessSettings.stand_in_url", "AccessSettings.stand_in")
        return self.stand_in

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> AccessSettings:
        """Read the settings from a mapping such as ``app.config``: every key, the
        Flask-only ones included, is read and validated here and nowhere else.

        Warns (:class:`~flask_cf_access.UnknownSettingWarning`, once) of
        ``CF_ACCESS_*`` keys no setting has, naming the nearest known key.

        :raises ConfigurationError: naming the first key that is missing or invalid.
        """
        _warn_of_unknown_keys(config)
        values = {
            key: _structured_text(key, config.get(key, default))
            for key, default in DEFAULTS.items()
        }
        team_domain = _team_domain(values["CF_ACCESS_TEAM_DOMAIN"])
        applications: tuple[ApplicationSettings, ...] = ()
        if values["CF_ACCESS_APPLICATIONS"] is None:
            audience = _audience("CF_ACCESS_AUDIENCE", values["CF_ACCESS_AUDIENCE"])
        elif values["CF_ACCESS_AUDIENCE"] not in (None, ""):
            raise ConfigurationError(
                "CF_ACCESS_AUDIENCE and CF_ACCESS_APPLICATIONS are both set: give each"
                " application's AUD in CF_ACCESS_APPLICATIONS, and leave CF_ACCESS_AUDIENCE out."
            )
        else:
            applications, audience = applications_setting(
                values["CF_ACCESS_APPLICATIONS"], _audience
            )
        return cls(
            team_domain=team_domain,
            audience=audience,
            applications=applications,
            certs_url=_url(
                "CF_ACCESS_CERTS_URL",
                values["CF_ACCESS_CERTS_URL"] or f"https://{team_domain}/cdn-cgi/access/certs",
            ),
            identity_url=_url(
                "CF_ACCESS_IDENTITY_URL",
                values["CF_ACCESS_IDENTITY_URL"]
                or f"https://{team_domain}/cdn-cgi/access/get-identity",
            ),
            leeway=_whole_seconds("CF_ACCESS_LEEWAY", values["CF_ACCESS_LEEWAY"], maximum=300),
            keys_max_age=_whole_seconds(
                "CF_ACCESS_KEYS_MAX_AGE", values["CF_ACCESS_KEYS_MAX_AGE"], minimum=1
            ),
            keys_min_refresh_interval=_whole_seconds(
                "CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL",
                values["CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL"],
                minimum=1,
            ),
            http_timeout=_timeout(values["CF_ACCESS_HTTP_TIMEOUT"]),
            upstream_wait=_seconds("CF_ACCESS_UPSTREAM_WAIT", values["CF_ACCESS_UPSTREAM_WAIT"]),
            identity_concurrency=_whole_seconds(
                "CF_ACCESS_IDENTITY_CONCURRENCY",
                values["CF_ACCESS_IDENTITY_CONCURRENCY"],
                minimum=1,
                maximum=64,
            ),
            load_keys_on_init=_flag(
                "CF_ACCESS_LOAD_KEYS_ON_INIT", values["CF_ACCESS_LOAD_KEYS_ON_INIT"]
            ),
            max_token_age=(
                None
                if values["CF_ACCESS_MAX_TOKEN_AGE"] is None
                else _whole_seconds(
                    "CF_ACCESS_MAX_TOKEN_AGE", values["CF_ACCESS_MAX_TOKEN_AGE"], minimum=1
                )
            ),
            token_cache_size=_whole_seconds(
                "CF_ACCESS_TOKEN_CACHE_SIZE", values["CF_ACCESS_TOKEN_CACHE_SIZE"]
            ),
            roles=_roles(values["CF_ACCESS_ROLES"]),
            allowed_email_domains=_email_domains(values["CF_ACCESS_ALLOWED_EMAIL_DOMAINS"]),
            allowed_emails=_emails(values["CF_ACCESS_ALLOWED_EMAILS"]),
            service_tokens=_service_tokens(values["CF_ACCESS_SERVICE_TOKENS"]),
            csrf_protect=_csrf_protect(values["CF_ACCESS_CSRF_PROTECT"]),
            trusted_origins=_trusted_origins(values["CF_ACCESS_TRUSTED_ORIGINS"]),
            unauthorized=_choice(
                "CF_ACCESS_UNAUTHORIZED", values["CF_ACCESS_UNAUTHORIZED"], ("status", "redirect")
            ),
            private_responses=_flag(
                "CF_ACCESS_PRIVATE_RESPONSES", values["CF_ACCESS_PRIVATE_RESPONSES"]
            ),
            cache=_cache(values["CF_ACCESS_CACHE"]),
            stand_in=_stand_in(values["CF_ACCESS_STAND_IN"]),
            profile_max_age=_whole_seconds(
                "CF_ACCESS_PROFILE_MAX_AGE", values["CF_ACCESS_PROFILE_MAX_AGE"], minimum=1
            ),
            require_mfa=_flag("CF_ACCESS_REQUIRE_MFA", values["CF_ACCESS_REQUIRE_MFA"]),
            require_posture=_posture_rules(values["CF_ACCESS_REQUIRE_POSTURE"]),
            protect_all=_flag("CF_ACCESS_PROTECT_ALL", values["CF_ACCESS_PROTECT_ALL"]),
            public_endpoints=frozenset(
                _names(
                    "CF_ACCESS_PUBLIC_ENDPOINTS",
                    values["CF_ACCESS_PUBLIC_ENDPOINTS"],
                    "an endpoint name or a list of them, e.g. ['static']",
                )
            ),
            expiry_header=_flag("CF_ACCESS_EXPIRY_HEADER", values["CF_ACCESS_EXPIRY_HEADER"]),
        )


#: Old spellings of :class:`AccessSettings` keywords and attributes, to be
#: removed in the release after 0.1.0.
_RENAMED_FIELDS = {"audiences": "audience", "stand_in_url": "stand_in"}


def _accepting_old_spellings(init: Callable[..., None]) -> Callable[..., None]:
    """``AccessSettings.__init__`` that also takes the deprecated keywords, warning of each.

    ``context_rules=`` (rules on MFA and device posture) is read as
    ``require_mfa=`` and ``require_posture=``.
    """

    @functools.wraps(init)
    def __init__(self: AccessSettings, *args: Any, **kwargs: Any) -> None:
        renamed = {old: f"{new}=..." for old, new in _RENAMED_FIELDS.items() if old in kwargs}
        if "context_rules" in kwargs:
            renamed["context_rules"] = "require_mfa=..., require_posture=..."
        for old, new in renamed.items():
            warn_renamed(f"AccessSettings({old}=...)", f"AccessSettings({new})")
        for old, new in _RENAMED_FIELDS.items():
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"AccessSettings got both {old}= and {new}=; give {new}=.")
                kwargs[new] = kwargs.pop(old)
        if "context_rules" in kwargs:
            kwargs.update(_context_keywords(kwargs.pop("context_rules"), kwargs))
        init(self, *args, **kwargs)

    return __init__


def _context_keywords(rules: Iterable[ContextRule], given: Mapping[str, Any]) -> dict[str, Any]:
    """The deprecated ``context_rules=`` as ``require_mfa=`` and ``require_posture=``.

    :raises TypeError: a rule of another kind, or one of those keywords given too.
    """
    if "require_mfa" in given or "require_posture" in given:
        raise TypeError("AccessSettings got context_rules= with require_mfa= or require_posture=.")
    rules = tuple(rules)
    if any(rule.kind not in ("mfa", "posture") for rule in rules):
        raise TypeError("AccessSettings(context_rules=...) takes rules on MFA and posture only.")
    return {
        "require_mfa": any(rule.kind == "mfa" for rule in rules),
        "require_posture": tuple(
            value for rule in rules if rule.kind == "posture" for value in rule.values
        ),
    }


AccessSettings.__init__ = _accepting_old_spellings(  # type: ignore[method-assign]
    AccessSettings.__init__
)


#: ``CF_ACCESS_*`` names (less the prefix) that are no settings of this package and no
#: mistake: the service token credentials Cloudflare's own tools read from the environment.
_FOREIGN_NAMES = frozenset({"CLIENT_ID", "CLIENT_SECRET"})


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean <the nearest of known>?)``, or ``""`` when none is near."""
    nearest = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {nearest[0]}?)" if nearest else ""


def _warn_of_unknown_keys(config: Mapping[str, Any]) -> None:
    """One :class:`~flask_cf_access.UnknownSettingWarning` naming every ``CF_ACCESS_*`` key
    of ``config`` that no setting has, each with the nearest known key, if any."""
    known = list(DEFAULTS)
    unknown = sorted(
        key
        for key in config
        if isinstance(key, str)
        and key.startswith("CF_ACCESS_")
        and key not in known
        and key.removeprefix("CF_ACCESS_") not in _FOREIGN_NAMES
    )
    if not unknown:
        return
    named = [f"{key}{did_you_mean(key, known)}" for key in unknown]
    warnings.warn(
        f"Unknown Cloudflare Access settings, ignored: {'; '.join(named)}.",
        UnknownSettingWarning,
        stacklevel=3,
    )


#: The hosts a stand-in server may be served from: this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _stand_in(value: object) -> str | None:
    """``CF_ACCESS_STAND_IN``: ``None``, or an ``http://`` URL on this machine.

    :raises ConfigurationError: anything else, naming the key.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
            return value
    raise ConfigurationError(
        "CF_ACCESS_STAND_IN must be the http://127.0.0.1 URL the local stand-in printed."
    )


def _team_domain(value: object) -> str:
    key = "CF_ACCESS_TEAM_DOMAIN"
    if value is None or value == "":
        raise ConfigurationError(f"{key} is required, e.g. 'acme.cloudflareaccess.com'.")
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string.")
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme != "https" or parts.path or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{key} must be a host name such as 'acme.cloudflareaccess.com' "
            "(optionally with 'https://'), not a path or another scheme."
        )
    try:
        # The whole authority: a port, user or space is no part of a host name.
        host = parse_hostname(parts.netloc)
    except MalformedAddress as exc:
        raise ConfigurationError(
            f"{key} must be a host name such as 'acme.cloudflareaccess.com': {exc}."
        ) from exc
    if "." not in host:
        raise ConfigurationError(
            f"{key} must be a full host name such as 'acme.cloudflareaccess.com', with a dot."
        )
    return host


#: An AUD tag: printable ASCII, no space or quote (Access shows 64 hex digits).
_AUD_TAG = re.compile(r"[!#-~]+")


def _audience(key: str, value: object) -> tuple[str, ...]:
    if value is None or value == "":
        raise ConfigurationError(f"{key} is required: the application's AUD tag (or a list).")
    if isinstance(value, str):
        # From the environment: a JSON list, or tags separated by commas. A
        # tag of digits stays a string.
        value = _listed(key, value)
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not items:
        raise ConfigurationError(f"{key} must be an AUD tag or a non-empty list of them.")
    audiences: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{key} must hold non-empty strings only.")
        tag = item.strip()
        if not _AUD_TAG.fullmatch(tag):
            # Such a tag matches no token: every request would be refused.
            raise ConfigurationError(
                f"{key}: an AUD tag is one word of printable ASCII, as the Access application's"
                " Overview page shows it: no space, double quote or control character."
            )
        audiences.append(tag)
    return tuple(audiences)


def _url(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a URL string.")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{key} must be an absolute http(s) URL.")
    return value


#: Settings holding a mapping or a list, which the environment can only give as text.
_STRUCTURED = frozenset(
    {
        "CF_ACCESS_ROLES",
        "CF_ACCESS_APPLICATIONS",
        "CF_ACCESS_SERVICE_TOKENS",
        "CF_ACCESS_ALLOWED_EMAIL_DOMAINS",
        "CF_ACCESS_ALLOWED_EMAILS",
        "CF_ACCESS_TRUSTED_ORIGINS",
        "CF_ACCESS_PUBLIC_ENDPOINTS",
        "CF_ACCESS_REQUIRE_POSTURE",
    }
)


def _structured_text(key: str, value: object) -> object:
    """A setting given as environment text, read as what it stands for.

    Structured settings take JSON (``'{"admin": ["Admins"]}'``, ``'["a", "b"]'``)
    or, for lists, items separated by commas; ``CF_ACCESS_CSRF_PROTECT`` takes
    ``false`` or ``0`` for off. Anything else is returned unchanged.

    :raises ConfigurationError: JSON that does not parse, naming ``key``.
    """
    if not isinstance(value, str):
        return value
    if key == "CF_ACCESS_CSRF_PROTECT" and value.strip().lower() in ("false", "0"):
        return False
    if key not in _STRUCTURED:
        return value
    text = value.strip()
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{key} is not valid JSON.") from exc
    return [item.strip() for item in text.split(",")] if "," in text else text


def _listed(key: str, text: str) -> object:
    """An environment string as a list: JSON (``'["a", "b"]'``) or comma-separated (``"a,b"``)."""
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{key} is not a valid JSON list.") from exc
    return text.split(",") if "," in text else text


def _from_environment(value: object, kind: type[int] | type[float]) -> object:
    """A number written as a string (as the environment holds it), else ``value`` unchanged."""
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            return value
    return value


def _whole_seconds(key: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = _from_environment(value, int)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{key} must be a whole number.")
    if value < minimum or (maximum is not None and value > maximum):
        limit = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigurationError(f"{key} must be {limit}.")
    return value


def _timeout(value: object) -> float:
    return _seconds("CF_ACCESS_HTTP_TIMEOUT", value)


def _seconds(key: str, value: object) -> float:
    """A number of seconds above 0 and at most 60."""
    value = _from_environment(value, float)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
        raise ConfigurationError(f"{key} must be a number of seconds above 0 and at most 60.")
    return float(value)


#: What the environment may spell a flag as (as Flask's ``from_prefixed_env``
#: reads it, plus 1 and 0); anything else, "yes" included, is refused.
_FLAG_WORDS = {"true": True, "1": True, "false": False, "0": False}


def _flag(key: str, value: object) -> bool:
    if isinstance(value, str):
        value = _FLAG_WORDS.get(value.strip().lower(), value)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False.")
    return value


# -- authorization settings ------------------------------------------------------

#: A Cloudflare Access service token's client id, e.g. ``4f1c….access``.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]+\.access")


def is_client_id(text: str) -> bool:
    """Whether ``text`` has the form of a service token's client id, ``<id>.access``."""
    return _CLIENT_ID.fullmatch(text) is not None


def _names(key: str, value: object, what: str) -> tuple[str, ...]:
    """A string or a list of non-empty strings, as a tuple."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(
        isinstance(item, str) and item.strip() for item in items
    ):
        raise ConfigurationError(f"{key} must be {what}.")
    return tuple(item.strip() for item in items)


def _groups(key: str, value: object) -> tuple[str, ...]:
    """Groups by name, or by id written ``"id:<group id>"``.

    :raises ConfigurationError: naming ``key``.
    """
    names = _names(key, value, "a group name or 'id:<group id>', or a list of them")
    try:
        wanted_groups(names)
    except ValueError as exc:
        raise ConfigurationError(f"{key}: {exc}") from exc
    return names


def _roles(value: object) -> dict[str, tuple[str, ...]]:
    key = "CF_ACCESS_ROLES"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f'{key} must map role names to groups, e.g. {{"admin": ["Admins"]}}.'
        )
    roles: dict[str, tuple[str, ...]] = {}
    for role, groups in value.items():
        if not isinstance(role, str) or not role.strip():
            raise ConfigurationError(f"{key} must have non-empty role names.")
        names = _groups(f"{key}[{role!r}]", groups)
        if not names:
            raise ConfigurationError(f"{key}[{role!r}] maps to no group.")
        roles[role.strip()] = names
    return roles


def _domain(key: str, item: object) -> str:
    """A configured e-mail domain in A-label form, lower case; a leading dot kept (subdomains)."""
    text = item.strip() if isinstance(item, str) else ""
    subdomains = text.startswith(".")
    try:
        domain = parse_hostname(text.removeprefix("."))
    except MalformedAddress as exc:
        domain = ""
        problem = f": {exc}"
    else:
        problem = ": a single label" if "." not in domain else ""
    if problem:
        raise ConfigurationError(
            f"{key}: {item!r} is not a domain such as 'acme.com', or '.acme.com' for its"
            f" subdomains{problem}."
        )
    return f".{domain}" if subdomains else domain


def _email_domains(value: object) -> tuple[str, ...]:
    key = "CF_ACCESS_ALLOWED_EMAIL_DOMAINS"
    if value is None:
        return ()
    if not isinstance(value, (str, list, tuple, set, frozenset)):
        raise ConfigurationError(f"{key} must be a domain or a list of domains.")
    items = [value] if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(_domain(key, item) for item in items))


def _emails(value: object) -> frozenset[str]:
    """``CF_ACCESS_ALLOWED_EMAILS`` as the keys addresses are compared by (``local@a-label``)."""
    key = "CF_ACCESS_ALLOWED_EMAILS"
    if value is None:
        return frozenset()
    if not isinstance(value, (str, list, tuple, set, frozenset)):
        raise ConfigurationError(f"{key} must be an e-mail address or a list of them.")
    emails: set[str] = set()
    for item in [value] if isinstance(value, str) else value:
        try:
            address = parse_address(item.strip() if isinstance(item, str) else item)
        except MalformedAddress as exc:
            raise ConfigurationError(f"{key}: {item!r} is not an e-mail address: {exc}.") from exc
        emails.add(address.key)
    return frozenset(emails)


def _service_tokens(value: object) -> dict[str, ServiceTokenProfile] | None:
    key = "CF_ACCESS_SERVICE_TOKENS"
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        value = {client_id: {} for client_id in value}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{key} must map client ids ('<id>.access') to {{'name', 'groups', 'roles'}},"
            " or list client ids."
        )
    profiles: dict[str, ServiceTokenProfile] = {}
    for client_id, entry in value.items():
        if not isinstance(client_id, str) or not is_client_id(client_id):
            raise ConfigurationError(
                f"{key}: {client_id!r} is not a service token's client id ('<id>.access')."
            )
        entry_key = f"{key}[{client_id!r}]"
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping) or set(entry) - {"name", "groups", "roles"}:
            raise ConfigurationError(f"{entry_key} may only have 'name', 'groups' and 'roles'.")
        name = entry.get("name", client_id)
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"{entry_key}['name'] must be a non-empty string.")
        profiles[client_id] = ServiceTokenProfile(
            name=name.strip(),
            groups=_groups(f"{entry_key}['groups']", entry.get("groups", ())),
            roles=frozenset(
                _names(f"{entry_key}['roles']", entry.get("roles", ()), "a list of roles")
            ),
        )
    return profiles


def _posture_rules(value: object) -> tuple[str, ...]:
    key = "CF_ACCESS_REQUIRE_POSTURE"
    if value is None:
        return ()
    return _names(key, value, "a device posture rule id or a list of them")


def _csrf_protect(value: object) -> str:
    """``CF_ACCESS_CSRF_PROTECT`` as ``"cookie"``, ``"always"`` or ``"off"`` (``False``)."""
    if value is False or value == "off":
        return "off"
    if value in ("cookie", "always"):
        return str(value)
    raise ConfigurationError('CF_ACCESS_CSRF_PROTECT must be "cookie", "always" or False.')


def _trusted_origins(value: object) -> frozenset[str]:
    """``CF_ACCESS_TRUSTED_ORIGINS`` (an origin or a list of them), normalised."""
    key = "CF_ACCESS_TRUSTED_ORIGINS"
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ConfigurationError(f"{key} must be an origin or a list of them.")
    origins: set[str] = set()
    for item in items:
        origin = origin_of(item) if isinstance(item, str) else None
        if origin is None or _has_more_than_an_origin(item):
            raise ConfigurationError(
                f"{key} must hold origins such as 'https://app.example.com' "
                "(scheme, host and optional port; no path)."
            )
        origins.add(origin)
    return frozenset(origins)


def _has_more_than_an_origin(url: str) -> bool:
    parts = urlsplit(url.strip().rstrip("/"))
    return bool(parts.path or parts.query or parts.fragment)


def _cache(value: object) -> BaseCache | None:
    """``CF_ACCESS_CACHE``: ``None`` (in-process), a cachelib ``BaseCache``, or a URL.

    :raises ConfigurationError: naming ``CF_ACCESS_CACHE`` for anything else, or
        a URL no cache can be made of (never repeating the URL).
    """
    if value is None or isinstance(value, BaseCache):
        return value
    if isinstance(value, str):
        return cache_from_url(value)
    raise ConfigurationError(
        f"CF_ACCESS_CACHE must be a cachelib BaseCache instance, a cache URL ({URL_FORMS}) or None."
    )


def _choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigurationError(f"{key} must be one of {', '.join(map(repr, choices))}.")
    return str(value)
