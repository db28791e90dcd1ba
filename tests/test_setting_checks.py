"""Settings that are wrong but used to be accepted: refused or warned of at start-up."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from flask import Flask

from flask_cf_access import (
    AccessSettings,
    CloudflareAccess,
    CloudflareAccessMiddleware,
    ConfigurationError,
    UnknownSettingWarning,
    require,
    require_service_token,
)
from flask_cf_access.testing import run_inline

BASE = {
    "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
    "CF_ACCESS_AUDIENCE": "4714c1358e65",
    "CF_ACCESS_LOAD_KEYS_ON_INIT": False,
}


def init(**config: Any) -> Flask:
    """An app with BASE and ``config``, after init_app."""
    app = Flask("checks")
    app.config.update({**BASE, **config})
    CloudflareAccess(app, background=run_inline)
    return app


def downstream(environ: Any, start_response: Any) -> list[bytes]:
    """A WSGI app the middleware never reaches in these tests."""
    raise AssertionError("not reached")


@pytest.mark.parametrize(
    "audience",
    ["4714c135 8e65", "4714c135\t8e65", "4714\x00c135", '"4714c135"', ["ok", "a b"], "4714\u00e9"],
)
def test_an_aud_tag_with_a_space_or_control_character_is_refused(audience: object) -> None:
    """An AUD tag no token can carry (a space inside, say) is refused, naming the key."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_AUDIENCE"):
        init(CF_ACCESS_AUDIENCE=audience)
    with pytest.raises(ConfigurationError, match="CF_ACCESS_AUDIENCE"):
        CloudflareAccessMiddleware.from_mapping(
            {**BASE, "CF_ACCESS_AUDIENCE": audience}, downstream, background=run_inline
        )
    with pytest.raises(ConfigurationError, match="CF_ACCESS_AUDIENCE"):
        CloudflareAccessMiddleware(
            downstream,
            team_domain="acme.cloudflareaccess.com",
            audience=audience,
            load_keys_on_init=False,
            background=run_inline,
        )


@pytest.mark.parametrize("audience", [" 4714c1358e65 ", "a,b", '["a", "b-c_d.e"]'])
def test_well_formed_aud_tags_are_kept(audience: str) -> None:
    """Tags are trimmed; lists from the environment still work."""
    init(CF_ACCESS_AUDIENCE=audience)


@pytest.mark.parametrize(
    "domain",
    [
        "acme .cloudflareaccess.com",
        "acme.cloudflareaccess.com x",
        "https://acme .cloudflareaccess.com",
        "acme",
        "https://acme",
        "acme..cloudflareaccess.com",
        "-acme.cloudflareaccess.com",
        "acme.cloudflareaccess.com:8443",
        "ada@acme.cloudflareaccess.com",
        "acme_team.cloudflareaccess.com",
        "acme.cloudflareaccess.com\x00",
        "10.0.0.1",
    ],
)
def test_a_team_domain_that_is_no_host_name_is_refused(domain: str) -> None:
    """A space, no dot, a port, an empty label: refused, naming the key."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_TEAM_DOMAIN"):
        init(CF_ACCESS_TEAM_DOMAIN=domain)
    config = {**BASE, "CF_ACCESS_TEAM_DOMAIN": domain}
    with pytest.raises(ConfigurationError, match="CF_ACCESS_TEAM_DOMAIN"):
        CloudflareAccessMiddleware.from_mapping(config, downstream, background=run_inline)


def test_an_internationalised_team_domain_is_kept_in_its_ascii_form() -> None:
    """A custom Access domain written in Unicode is the issuer in its xn-- form."""
    app = init(CF_ACCESS_TEAM_DOMAIN="login.b\u00fccher.example")
    assert (
        app.extensions["cf_access"].checker.settings.issuer == "https://login.xn--bcher-kva.example"
    )


def test_a_misspelt_key_is_warned_of_once_naming_the_nearest() -> None:
    """CF_ACCESS_AUDIENCES and another unknown key: one warning for the app, naming both
    and the key each was probably meant to be."""
    with pytest.warns(UnknownSettingWarning) as warned:
        init(CF_ACCESS_AUDIENCES=["x"], CF_ACCESS_ROLE={"admin": ["Admins"]})
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "CF_ACCESS_AUDIENCES (did you mean CF_ACCESS_AUDIENCE?)" in message
    assert "CF_ACCESS_ROLE (did you mean CF_ACCESS_ROLES?)" in message
    assert "Admins" not in message  # keys, never values


def test_each_app_is_warned() -> None:
    """One extension, two apps: each app's unknown key is warned of."""
    extension = CloudflareAccess(background=run_inline)
    for name in ("first", "second"):
        app = Flask(name)
        app.config.update({**BASE, "CF_ACCESS_LEWAY": 10})
        with pytest.warns(UnknownSettingWarning, match="CF_ACCESS_LEEWAY"):
            extension.init_app(app)


def test_the_middleware_from_mapping_warns_too() -> None:
    """The middleware reading the environment warns of a misspelt key there."""
    environ = {**BASE, "CF_ACCESS_TEAM_DOMIAN": "x"}
    with pytest.warns(UnknownSettingWarning, match="did you mean CF_ACCESS_TEAM_DOMAIN"):
        CloudflareAccessMiddleware.from_mapping(environ, downstream, background=run_inline)


def test_known_and_foreign_keys_are_not_warned_of() -> None:
    """Every setting, the Flask-only ones, other prefixes and Cloudflare's own client
    credentials raise no warning (the suite turns warnings into errors)."""
    init(
        CF_ACCESS_PROTECT_ALL=False,
        CF_ACCESS_PUBLIC_ENDPOINTS=["static"],
        CF_ACCESS_CLIENT_ID="x.access",
        CF_ACCESS_CLIENT_SECRET="not ours",
        SECRET_KEY="other",
    )


def test_a_misspelt_middleware_keyword_names_the_nearest() -> None:
    """A keyword argument no setting has is a TypeError naming the one meant."""
    with pytest.raises(TypeError, match=r"'audiences' \(did you mean audience\?\)"):
        CloudflareAccessMiddleware(
            downstream,
            team_domain="acme.cloudflareaccess.com",
            audiences=["x"],
            background=run_inline,
        )


def test_settings_made_directly_refuse_an_aud_tag_with_a_space() -> None:
    """AccessSettings(...) built without from_mapping checks its tags the same way."""
    with pytest.raises(TypeError, match="audience"):
        AccessSettings(
            team_domain="acme.cloudflareaccess.com",
            audience=("4714c135 8e65",),
            certs_url="https://acme.cloudflareaccess.com/cdn-cgi/access/certs",
            identity_url="https://acme.cloudflareaccess.com/cdn-cgi/access/get-identity",
        )


def test_the_warning_can_be_filtered() -> None:
    """Users silence the warning by its class."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UnknownSettingWarning)
        init(CF_ACCESS_AUDIENCES=["x"])


@pytest.mark.parametrize("client_id", ["ci", "ci.access ", "c i.access", ".access", "ci.ACCESS"])
def test_a_client_id_not_of_the_access_form_is_refused(client_id: str) -> None:
    """require(service_tokens=…), @require_service_token and CF_ACCESS_SERVICE_TOKENS take
    client ids of the form <id>.access only."""
    with pytest.raises(TypeError, match="service_tokens"):
        require(service_tokens=[client_id])
    with pytest.raises(TypeError, match="service_tokens"):
        require_service_token(client_id)
    with pytest.raises(ConfigurationError, match="CF_ACCESS_SERVICE_TOKENS"):
        init(CF_ACCESS_SERVICE_TOKENS=[client_id])
