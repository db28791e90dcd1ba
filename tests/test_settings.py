"""Settings are validated in init_app; a bad one names its key."""

from __future__ import annotations

from typing import Any

import pytest
from cachelib import SimpleCache
from flask import Flask

from flask_cf_access import AccessSettings, CloudflareAccess, ConfigurationError
from flask_cf_access.testing import run_inline

BASE = {"CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com", "CF_ACCESS_AUDIENCE": "aud"}


def settings(**config: Any) -> AccessSettings:
    return AccessSettings.from_mapping({**BASE, **config})


@pytest.mark.parametrize(
    "domain",
    [
        "acme.cloudflareaccess.com",
        "https://acme.cloudflareaccess.com",
        "https://acme.cloudflareaccess.com/",
        "ACME.cloudflareaccess.com",
    ],
)
def test_team_domain_forms(domain: str) -> None:
    """A bare host or an https URL give the same issuer and default URLs."""
    parsed = settings(CF_ACCESS_TEAM_DOMAIN=domain)
    assert parsed.issuer == "https://acme.cloudflareaccess.com"
    assert parsed.certs_url == "https://acme.cloudflareaccess.com/cdn-cgi/access/certs"
    assert parsed.identity_url == "https://acme.cloudflareaccess.com/cdn-cgi/access/get-identity"


def test_custom_domain() -> None:
    """A custom Access domain is its own issuer."""
    assert settings(CF_ACCESS_TEAM_DOMAIN="login.example.com").issuer == "https://login.example.com"


def test_defaults() -> None:
    """Documented defaults."""
    parsed = settings()
    assert parsed.audience == ("aud",)
    assert (parsed.leeway, parsed.keys_max_age, parsed.keys_min_refresh_interval) == (30, 900, 60)
    assert parsed.http_timeout == 5.0
    assert parsed.load_keys_on_init is True
    assert parsed.max_token_age is None


def test_audience_list() -> None:
    """CF_ACCESS_AUDIENCE may be a list of tags."""
    assert settings(CF_ACCESS_AUDIENCE=["a", "b"]).audience == ("a", "b")


def test_url_overrides() -> None:
    """The certs and identity URLs can point elsewhere (e.g. 127.0.0.1 in tests)."""
    parsed = settings(
        CF_ACCESS_CERTS_URL="http://127.0.0.1:8000/certs",
        CF_ACCESS_IDENTITY_URL="http://127.0.0.1:8000/id",
    )
    assert parsed.certs_url == "http://127.0.0.1:8000/certs"
    assert parsed.identity_url == "http://127.0.0.1:8000/id"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CF_ACCESS_TEAM_DOMAIN", None),
        ("CF_ACCESS_TEAM_DOMAIN", ""),
        ("CF_ACCESS_TEAM_DOMAIN", "http://acme.cloudflareaccess.com"),
        ("CF_ACCESS_TEAM_DOMAIN", "acme.cloudflareaccess.com/cdn-cgi"),
        ("CF_ACCESS_TEAM_DOMAIN", 5),
        ("CF_ACCESS_AUDIENCE", None),
        ("CF_ACCESS_AUDIENCE", []),
        ("CF_ACCESS_AUDIENCE", [""]),
        ("CF_ACCESS_AUDIENCE", 5),
        ("CF_ACCESS_CERTS_URL", "ftp://x/certs"),
        ("CF_ACCESS_CERTS_URL", "/relative"),
        ("CF_ACCESS_IDENTITY_URL", 5),
        ("CF_ACCESS_LEEWAY", -1),
        ("CF_ACCESS_LEEWAY", 3600),
        ("CF_ACCESS_LEEWAY", "thirty"),
        ("CF_ACCESS_LEEWAY", "3600"),
        ("CF_ACCESS_LEEWAY", True),
        ("CF_ACCESS_KEYS_MAX_AGE", 0),
        ("CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL", 0),
        ("CF_ACCESS_HTTP_TIMEOUT", 0),
        ("CF_ACCESS_HTTP_TIMEOUT", "five"),
        ("CF_ACCESS_AUDIENCE", "[not json"),
        ("CF_ACCESS_LOAD_KEYS_ON_INIT", "yes"),
        ("CF_ACCESS_MAX_TOKEN_AGE", 0),
        ("CF_ACCESS_TOKEN_CACHE_SIZE", -1),
    ],
)
def test_bad_settings_name_their_key(key: str, value: Any) -> None:
    """Each invalid or missing value raises ConfigurationError naming the key."""
    app = Flask("bad")
    app.config.update(BASE)
    app.config[key] = value
    with pytest.raises(ConfigurationError, match=key):
        CloudflareAccess(app, background=run_inline)


def test_missing_required_keys() -> None:
    """An app with no CF_ACCESS_* settings fails at start-up, naming the first one."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_TEAM_DOMAIN"):
        CloudflareAccess(Flask("empty"), background=run_inline)
    app = Flask("half")
    app.config["CF_ACCESS_TEAM_DOMAIN"] = "acme.cloudflareaccess.com"
    with pytest.raises(ConfigurationError, match="CF_ACCESS_AUDIENCE"):
        CloudflareAccess(app, background=run_inline)


def test_bad_cache_setting() -> None:
    """CF_ACCESS_CACHE must be a cachelib cache (or a URL)."""
    app = Flask("cache")
    app.config.update(BASE, CF_ACCESS_CACHE=object(), CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    with pytest.raises(ConfigurationError, match="CF_ACCESS_CACHE"):
        CloudflareAccess(app, background=run_inline)
    app.config["CF_ACCESS_CACHE"] = SimpleCache()
    CloudflareAccess(app, background=run_inline)
    assert app.extensions["cf_access"].checker.cache.backend is app.config["CF_ACCESS_CACHE"]


def test_settings_are_frozen() -> None:
    """The parsed settings cannot be changed after start-up."""
    parsed = settings()
    with pytest.raises(AttributeError):
        parsed.leeway = 600  # type: ignore[misc]


def test_settings_from_the_environment_are_read_as_strings() -> None:
    """Numbers, flags and lists written as environment strings are accepted; digit AUDs stay str."""
    environ = {
        **BASE,
        "CF_ACCESS_LEEWAY": "30",
        "CF_ACCESS_HTTP_TIMEOUT": "2.5",
        "CF_ACCESS_LOAD_KEYS_ON_INIT": "false",
        "CF_ACCESS_AUDIENCE": "a,b",
    }
    settings = AccessSettings.from_mapping(environ)
    assert (settings.leeway, settings.http_timeout) == (30, 2.5)
    assert settings.load_keys_on_init is False
    assert settings.audience == ("a", "b")
    assert AccessSettings.from_mapping(
        {**environ, "CF_ACCESS_AUDIENCE": '["x", "y"]'}
    ).audience == (
        "x",
        "y",
    )
    assert AccessSettings.from_mapping({**environ, "CF_ACCESS_AUDIENCE": "1234"}).audience == (
        "1234",
    )
