"""The authorization settings: parsed in init_app, a bad one names its key."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_cf_access import (
    AccessSettings,
    CloudflareAccess,
    ConfigurationError,
    ServiceTokenProfile,
)
from flask_cf_access.testing import run_inline

BASE = {
    "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
    "CF_ACCESS_AUDIENCE": "aud",
    "CF_ACCESS_LOAD_KEYS_ON_INIT": False,
}


def settings(**config: Any) -> AccessSettings:
    """Settings from BASE and ``config``."""
    return AccessSettings.from_mapping({**BASE, **config})


def test_defaults() -> None:
    """No roles, no e-mail rules, any service token."""
    parsed = settings()
    assert parsed.roles == {}
    assert parsed.allowed_email_domains == ()
    assert parsed.allowed_emails == frozenset()
    assert parsed.service_tokens is None


def test_good_values_parsed() -> None:
    """Roles, domains and addresses (lowered, in A-label form) and service tokens, as given."""
    parsed = settings(
        CF_ACCESS_ROLES={"admin": ["Admins", "g-123"], "ops": "Ops"},
        CF_ACCESS_ALLOWED_EMAIL_DOMAINS=[
            "Acme.com",
            ".Corp.example",
            "xn--bcher-kva.example",
            "b\u00fccher.example",
            ".XN--BCHER-KVA.example",
        ],
        CF_ACCESS_ALLOWED_EMAILS=["Ada@Gmail.com", "Eleve@B\u00fccher.example"],
        CF_ACCESS_SERVICE_TOKENS={
            "0123abcd.access": {"name": "ci", "groups": ["Deployers"], "roles": ["ops"]},
            "other.access": None,
        },
    )
    assert parsed.roles == {"admin": ("Admins", "g-123"), "ops": ("Ops",)}
    assert parsed.allowed_email_domains == (
        "acme.com",
        ".corp.example",
        "xn--bcher-kva.example",
        ".xn--bcher-kva.example",
    )
    assert parsed.allowed_emails == frozenset({"ada@gmail.com", "eleve@xn--bcher-kva.example"})
    assert parsed.service_tokens == {
        "0123abcd.access": ServiceTokenProfile("ci", ("Deployers",), frozenset({"ops"})),
        "other.access": ServiceTokenProfile("other.access"),
    }


def test_service_tokens_as_a_list() -> None:
    """A list of client ids: known tokens, named by their ids."""
    assert settings(CF_ACCESS_SERVICE_TOKENS=["a.access"]).service_tokens == {
        "a.access": ServiceTokenProfile("a.access")
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("CF_ACCESS_ROLES", ["admin"], "must map role names"),
        ("CF_ACCESS_ROLES", {"admin": []}, r"CF_ACCESS_ROLES\['admin'\] maps to no group"),
        ("CF_ACCESS_ROLES", {"admin": [""]}, r"CF_ACCESS_ROLES\['admin'\] must be a group"),
        ("CF_ACCESS_ROLES", {"admin": 3}, r"CF_ACCESS_ROLES\['admin'\]"),
        ("CF_ACCESS_ROLES", {"": ["Admins"]}, "CF_ACCESS_ROLES must have non-empty role names"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", "@acme.com", "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["ada@acme.com"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["acme.com."], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["https://acme.com"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["acme"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["*.acme.com"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["B\u00dcCHER.example"], "not valid IDNA"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["evil.com/.corp.example"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["..corp.example"], "empty label"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["-.corp.example"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["acme.com\x00"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["acme .com"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["10.0.0.1"], "all digits"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["acme.com:443"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["xn--zz.example"], "not valid IDNA"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["\u212aelvin.example"], "not valid IDNA"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", ["-acme.com"], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", [3], "not a domain"),
        ("CF_ACCESS_ALLOWED_EMAIL_DOMAINS", 3, "a domain or a list"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["acme.com"], "not an e-mail address"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["a@b@acme.com"], "not an e-mail address"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["ada@acme.com."], "not an e-mail address: an empty label"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["ada@.acme.com"], "not an e-mail address"),
        ("CF_ACCESS_ALLOWED_EMAILS", ['"a b"@acme.com'], "not an e-mail address"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["a..b@acme.com"], "joined by single dots"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["a\x00@acme.com"], "not an e-mail address"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["\u00e9l\u00e8ve@acme.com"], "not ASCII"),
        ("CF_ACCESS_ALLOWED_EMAILS", ["ada@evil.com/.acme.com"], "not an e-mail address"),
        ("CF_ACCESS_ALLOWED_EMAILS", {"a": 1}, "an e-mail address or a list"),
        ("CF_ACCESS_SERVICE_TOKENS", "ci.access", "must map client ids"),
        ("CF_ACCESS_SERVICE_TOKENS", {"ci": {}}, "not a service token's client id"),
        ("CF_ACCESS_SERVICE_TOKENS", {"c i.access": {}}, "not a service token's client id"),
        ("CF_ACCESS_SERVICE_TOKENS", {"ci.access": {"role": ["x"]}}, "may only have"),
        ("CF_ACCESS_SERVICE_TOKENS", {"ci.access": {"name": ""}}, r"\['name'\]"),
        ("CF_ACCESS_SERVICE_TOKENS", {"ci.access": {"groups": "x", "roles": [1]}}, r"\['roles'\]"),
        ("CF_ACCESS_SERVICE_TOKENS", {"ci.access": ["ops"]}, "may only have"),
        ("CF_ACCESS_PROTECT_ALL", "yes", "CF_ACCESS_PROTECT_ALL must be True or False"),
        ("CF_ACCESS_PUBLIC_ENDPOINTS", [""], "CF_ACCESS_PUBLIC_ENDPOINTS must be an endpoint"),
        ("CF_ACCESS_PUBLIC_ENDPOINTS", 3, "CF_ACCESS_PUBLIC_ENDPOINTS must be an endpoint"),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any, message: str) -> None:
    """init_app refuses a bad authorization setting, naming the key."""
    app = Flask("settings")
    app.config.update({**BASE, key: value})
    with pytest.raises(ConfigurationError, match=message) as raised:
        CloudflareAccess(app, background=run_inline)
    assert key in str(raised.value)
