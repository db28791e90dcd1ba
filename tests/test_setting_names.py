"""One spelling per setting: the key, the AccessSettings attribute and the middleware keyword.

Every ``CF_ACCESS_*`` key is read by ``AccessSettings.from_mapping`` into the
attribute of its name; the old spellings still work for one release, with a
``DeprecationWarning`` naming the new one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cachelib import SimpleCache
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import (
    AccessSettings,
    ApplicationSettings,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    ServiceTokenProfile,
)
from flask_cf_access._core.settings import DEFAULTS, FLASK_ONLY
from flask_cf_access._wsgi.middleware import _SETTING_KEYWORDS
from flask_cf_access.onward import ServiceToken
from flask_cf_access.testing import run_inline

BASE = {"CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com", "CF_ACCESS_AUDIENCE": "aud"}
TEAM = "acme.cloudflareaccess.com"
CLIENT_ID = "4f1c.access"
STAND_IN = "http://127.0.0.1:8787/mint-secret"
CACHE = SimpleCache()


def made(**keywords: Any) -> AccessSettings:
    """AccessSettings built directly, as a user may, for the team with ``keywords``."""
    return AccessSettings(
        team_domain=TEAM,
        certs_url=f"https://{TEAM}/cdn-cgi/access/certs",
        identity_url=f"https://{TEAM}/cdn-cgi/access/get-identity",
        **keywords,
    )


def downstream(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


#: For each key, a value other than its default and the attribute it gives.
SAMPLES: dict[str, tuple[object, object]] = {
    "CF_ACCESS_TEAM_DOMAIN": ("https://Login.Example.com/", "login.example.com"),
    "CF_ACCESS_AUDIENCE": ("a,b", ("a", "b")),
    "CF_ACCESS_APPLICATIONS": (
        {"admin": {"audience": "aud", "paths": ["/admin"]}},
        (ApplicationSettings("admin", ("aud",), ("/admin",)),),
    ),
    "CF_ACCESS_CERTS_URL": ("http://127.0.0.1:9/certs", "http://127.0.0.1:9/certs"),
    "CF_ACCESS_IDENTITY_URL": ("http://127.0.0.1:9/id", "http://127.0.0.1:9/id"),
    "CF_ACCESS_LEEWAY": ("5", 5),
    "CF_ACCESS_KEYS_MAX_AGE": (60, 60),
    "CF_ACCESS_KEYS_MIN_REFRESH_INTERVAL": (10, 10),
    "CF_ACCESS_HTTP_TIMEOUT": ("2.5", 2.5),
    "CF_ACCESS_UPSTREAM_WAIT": (0.5, 0.5),
    "CF_ACCESS_IDENTITY_CONCURRENCY": (8, 8),
    "CF_ACCESS_CACHE": (CACHE, CACHE),
    "CF_ACCESS_LOAD_KEYS_ON_INIT": ("false", False),
    "CF_ACCESS_MAX_TOKEN_AGE": (3600, 3600),
    "CF_ACCESS_TOKEN_CACHE_SIZE": (0, 0),
    "CF_ACCESS_ROLES": ('{"admin": ["Admins"]}', {"admin": ("Admins",)}),
    "CF_ACCESS_ALLOWED_EMAIL_DOMAINS": (".Acme.com", (".acme.com",)),
    "CF_ACCESS_ALLOWED_EMAILS": ("Ada@Example.com", frozenset({"ada@example.com"})),
    "CF_ACCESS_SERVICE_TOKENS": ([CLIENT_ID], {CLIENT_ID: ServiceTokenProfile(CLIENT_ID)}),
    "CF_ACCESS_CSRF_PROTECT": ("false", "off"),
    "CF_ACCESS_TRUSTED_ORIGINS": (
        "https://App.example.com:443/",
        frozenset({"https://app.example.com"}),
    ),
    "CF_ACCESS_UNAUTHORIZED": ("redirect", "redirect"),
    "CF_ACCESS_PRIVATE_RESPONSES": (False, False),
    "CF_ACCESS_STAND_IN": (STAND_IN, STAND_IN),
    "CF_ACCESS_PROFILE_MAX_AGE": (60, 60),
    "CF_ACCESS_REQUIRE_MFA": ("true", True),
    "CF_ACCESS_REQUIRE_POSTURE": ("disk,firewall", ("disk", "firewall")),
    "CF_ACCESS_PROTECT_ALL": ("1", True),
    "CF_ACCESS_PUBLIC_ENDPOINTS": ("static, health", frozenset({"static", "health"})),
    "CF_ACCESS_EXPIRY_HEADER": (True, True),
}


def attribute(key: str) -> str:
    """The one spelling of a setting outside the config: its key less the prefix, lower case."""
    return key.removeprefix("CF_ACCESS_").lower()


def test_every_key_is_an_attribute_of_its_name() -> None:
    """Each CF_ACCESS_* key fills the AccessSettings field of its name, and no field is unkeyed."""
    fields = {field.name for field in dataclasses.fields(AccessSettings)}
    assert fields == {attribute(key) for key in DEFAULTS}
    assert set(SAMPLES) == set(DEFAULTS)


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_key_is_read_by_from_mapping(key: str) -> None:
    """from_mapping reads each key, from the environment's text too, into its attribute."""
    given_value, expected = SAMPLES[key]
    config = {**BASE, key: given_value}
    if key == "CF_ACCESS_APPLICATIONS":
        del config["CF_ACCESS_AUDIENCE"]
    parsed = AccessSettings.from_mapping(config)
    assert getattr(parsed, attribute(key)) == expected
    if key != "CF_ACCESS_TEAM_DOMAIN":
        assert getattr(AccessSettings.from_mapping(BASE), attribute(key)) != expected


@given(
    key=st.sampled_from(sorted(DEFAULTS)),
    value=st.one_of(st.integers(-5, 5), st.just(["x y", 5]), st.just({"a": 5}), st.just(object())),
)
def test_a_bad_value_of_any_key_is_refused_naming_it(key: str, value: object) -> None:
    """Whatever key holds a value it cannot take, from_mapping refuses it naming that key."""
    message = refusal_of({**BASE, key: value})
    assert message is None or key in message


def refusal_of(config: dict[str, Any]) -> str | None:
    """What from_mapping's ConfigurationError says of ``config``; ``None`` if it takes it."""
    try:
        AccessSettings.from_mapping(config)
    except ConfigurationError as error:
        return str(error)
    return None


def test_middleware_keywords_are_the_attribute_names() -> None:
    """The middleware takes each shared setting by its attribute's name; Flask-only ones not."""
    assert set(_SETTING_KEYWORDS) | {"cache"} == {
        attribute(key) for key in DEFAULTS if key not in FLASK_ONLY
    }
    middleware = CloudflareAccessMiddleware(
        downstream,
        team_domain=TEAM,
        audience="aud",
        stand_in=STAND_IN,
        require_mfa=True,
        require_posture=["disk"],
        load_keys_on_init=False,
        background=run_inline,
    )
    settings = middleware._checker.settings  # the settings it was given, as read
    assert (settings.audience, settings.stand_in) == (("aud",), STAND_IN)
    assert [rule.kind for rule in settings.context_rules] == ["mfa", "posture"]
    with pytest.raises(TypeError, match="protect_all"):
        CloudflareAccessMiddleware(
            downstream, team_domain=TEAM, audience="aud", protect_all=True, background=run_inline
        )


def test_init_app_docstring_lists_every_key() -> None:
    """init_app's docstring names every CF_ACCESS_* setting."""
    doc = CloudflareAccess.init_app.__doc__ or ""
    assert [key for key in DEFAULTS if f"``{key}``" not in doc] == []


# -- the old spellings, kept for one release -----------------------------------------


def test_the_audiences_keyword_and_attribute_still_work() -> None:
    """AccessSettings(audiences=...) and .audiences warn, naming audience, and still work."""
    with pytest.deprecated_call(match=r"use AccessSettings\(audience=\.\.\.\)"):
        settings = made(audiences="aud")
    assert settings.audience == ("aud",)
    with pytest.deprecated_call(match=r"use AccessSettings\.audience"):
        assert settings.audiences == ("aud",)
    with pytest.deprecated_call(), pytest.raises(TypeError, match="both audiences= and audience="):
        made(audience=("a",), audiences=("a",))


def test_the_stand_in_url_keyword_and_attribute_still_work() -> None:
    """AccessSettings(stand_in_url=...) and .stand_in_url warn, naming stand_in, and still work."""
    with pytest.deprecated_call(match=r"use AccessSettings\(stand_in=\.\.\.\)"):
        settings = made(audience=("aud",), stand_in_url=STAND_IN)
    assert settings.stand_in == STAND_IN
    with pytest.deprecated_call(match=r"use AccessSettings\.stand_in"):
        assert settings.stand_in_url == STAND_IN


def test_the_context_rules_keyword_still_works() -> None:
    """AccessSettings(context_rules=...) warns, and gives require_mfa and require_posture."""
    rules = AccessSettings.from_mapping(
        {**BASE, "CF_ACCESS_REQUIRE_MFA": True, "CF_ACCESS_REQUIRE_POSTURE": ["disk"]}
    ).context_rules
    with pytest.deprecated_call(
        match=r"use AccessSettings\(require_mfa=\.\.\., require_posture=\.\.\.\)"
    ):
        settings = made(audience=("aud",), context_rules=rules)
    assert (settings.require_mfa, settings.require_posture) == (True, ("disk",))
    assert settings.context_rules == rules


def test_the_application_audiences_attribute_still_works() -> None:
    """ApplicationSettings.audiences warns, naming audience, and still gives the tags."""
    (application,) = AccessSettings.from_mapping(
        {"CF_ACCESS_TEAM_DOMAIN": TEAM, "CF_ACCESS_APPLICATIONS": {"app": {"audience": "aud"}}}
    ).applications
    with pytest.deprecated_call(match=r"use ApplicationSettings\.audience"):
        assert application.audiences == ("aud",)


def test_the_middleware_from_config_still_works() -> None:
    """CloudflareAccessMiddleware.from_config warns, naming from_mapping, and still works."""
    with pytest.deprecated_call(match=r"use CloudflareAccessMiddleware\.from_mapping"):
        middleware = CloudflareAccessMiddleware.from_config(
            {**BASE, "CF_ACCESS_LEEWAY": 3, "CF_ACCESS_LOAD_KEYS_ON_INIT": False},
            downstream,
            public_paths=["/healthz"],
            background=run_inline,
        )
    assert middleware._checker.settings.leeway == 3
    assert middleware.is_public("/healthz")


def test_the_service_token_from_config_still_works() -> None:
    """ServiceToken.from_config warns, naming from_mapping, and still reads the token."""
    config = {"CF_ACCESS_CLIENT_ID": CLIENT_ID, "CF_ACCESS_CLIENT_SECRET": "s3cret"}
    with pytest.deprecated_call(match=r"use ServiceToken\.from_mapping"):
        token = ServiceToken.from_config(config)
    assert token.headers() == ServiceToken.from_mapping(config).headers()
