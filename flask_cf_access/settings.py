"""``CF_ACCESS_*`` settings, read and validated once, at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

#: Every setting with its default; ``None`` marks a required one.
DEFAULTS: Mapping[str, Any] = {
    "CF_ACCESS_TEAM_DOMAIN": None,
    "CF_ACCESS_AUDIENCE": None,
    "CF_ACCESS_CERTS_URL": "",
    "CF_ACCESS_IDENTITY_URL": "",
    "CF_ACCESS_LEEWAY": 30,
    "CF_ACCESS_KEYS_MAX_AGE": 900,
    "CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL": 60,
    "CF_ACCESS_HTTP_TIMEOUT": 5.0,
    "CF_ACCESS_CACHE": None,
    "CF_ACCESS_LOAD_KEYS_ON_INIT": True,
    "CF_ACCESS_MAX_TOKEN_AGE": None,
    "CF_ACCESS_TOKEN_CACHE_SIZE": 4096,
}


@dataclass(frozen=True)
class AccessSettings:
    """The validated configuration of one application (or middleware)."""

    #: Host name of the Access team, e.g. ``acme.cloudflareaccess.com``.
    team_domain: str
    #: AUD tags accepted; a token passes if its ``aud`` holds any of them.
    audiences: tuple[str, ...]
    #: Where the team publishes its signing keys.
    certs_url: str
    #: Where the identity (with groups) of a token can be asked for.
    identity_url: str
    #: Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    leeway: int = 30
    #: Seconds a fetched key set is trusted before it is fetched again.
    keys_max_age: int = 900
    #: Least seconds between two fetches forced by an unknown ``kid``.
    keys_min_refresh_interval: int = 60
    #: Seconds a call to Cloudflare may take in all (connect, headers, body), and
    #: the longest any request waits for another's fetch.
    http_timeout: float = 5.0
    #: Whether :meth:`CloudflareAccess.init_app` loads the keys right away.
    load_keys_on_init: bool = True
    #: If set, tokens issued longer ago than this many seconds are refused.
    max_token_age: int | None = None
    #: How many verified tokens are remembered to skip repeat signature checks.
    token_cache_size: int = 4096

    @property
    def issuer(self) -> str:
        """The ``iss`` every token of this team carries."""
        return f"https://{self.team_domain}"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> AccessSettings:
        """Read the settings from a mapping such as ``app.config``.

        :raises ConfigurationError: naming the first key that is missing or invalid.
        """
        values = {key: config.get(key, default) for key, default in DEFAULTS.items()}
        team_domain = _team_domain(values["CF_ACCESS_TEAM_DOMAIN"])
        return cls(
            team_domain=team_domain,
            audiences=_audiences(values["CF_ACCESS_AUDIENCE"]),
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
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise ConfigurationError(
            f"{key} must be a host name such as 'acme.cloudflareaccess.com' "
            "(optionally with 'https://'), not a path or another scheme."
        )
    return parts.netloc.lower()


def _audiences(value: object) -> tuple[str, ...]:
    key = "CF_ACCESS_AUDIENCE"
    if value is None or value == "":
        raise ConfigurationError(f"{key} is required: the application's AUD tag (or a list).")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not items:
        raise ConfigurationError(f"{key} must be an AUD tag or a non-empty list of them.")
    audiences: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"{key} must hold non-empty strings only.")
        audiences.append(item.strip())
    return tuple(audiences)


def _url(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a URL string.")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{key} must be an absolute http(s) URL.")
    return value


def _whole_seconds(key: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{key} must be a whole number.")
    if value < minimum or (maximum is not None and value > maximum):
        limit = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigurationError(f"{key} must be {limit}.")
    return value


def _timeout(value: object) -> float:
    key = "CF_ACCESS_HTTP_TIMEOUT"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
        raise ConfigurationError(f"{key} must be a number of seconds above 0 and at most 60.")
    return float(value)


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be True or False.")
    return value
