"""The example application: its routes, its guards, its 403 page, its settings."""

from __future__ import annotations

import os

import pytest
from flask import Flask

from examples.protected_app import create_app, settings_from_environ
from flask_cf_access import ConfigurationError, Reason
from flask_cf_access.testing import AccessCapture, AccessClient, StandInServer, capture_access


@pytest.fixture(autouse=True)
def no_access_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example reads CF_ACCESS_* from the environment: start from none."""
    for name in list(os.environ):
        if name.startswith("CF_ACCESS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def app(cf_access_server: StandInServer) -> Flask:
    """The example app trusting the stand-in over HTTP."""
    return create_app(cf_access_server.settings())


@pytest.fixture
def client(app: Flask, cf_access_server: StandInServer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, cf_access_server.issuer)


def test_health_is_public(client: AccessClient) -> None:
    """/health answers without any token."""
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_home_shows_the_identity(client: AccessClient) -> None:
    """/ greets a user by e-mail and lists the groups from get-identity."""
    response = client.get("/", as_user="ada@example.com", groups=["Staff", "Admins"])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Hello, ada@example.com" in page
    assert "Admins, Staff" in page


def test_home_escapes_what_it_shows(client: AccessClient, cf_access_server: StandInServer) -> None:
    """Values from the token are HTML-escaped on the page."""
    token = cf_access_server.issuer.user_token("<b>x</b>@example.com", ["<i>g</i>"])
    page = client.get("/", token=token).get_data(as_text=True)
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;@example.com" in page
    assert "&lt;i&gt;g&lt;/i&gt;" in page


def test_home_refuses_service_tokens_and_strangers(client: AccessClient) -> None:
    """/ is for people: a service token gets 403, no token 401."""
    with capture_access() as captured:
        assert client.get("/", as_service_token="ci.access").status_code == 403
        assert client.get("/").status_code == 401
    assert captured.reasons == [Reason.SERVICE_TOKEN_REFUSED, Reason.MISSING_TOKEN]


def test_admin_area_is_for_admins(client: AccessClient) -> None:
    """/admin/ lets Admins in and answers 403 to others, 401 with no token."""
    admitted = client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
    assert admitted.status_code == 200
    assert "you are in Admins" in admitted.get_data(as_text=True)
    with capture_access() as captured:
        assert client.get("/admin/", as_user="bob@example.com", groups=["Staff"]).status_code == 403
        assert client.get("/admin/", as_service_token="ci.access").status_code == 403
        assert client.get("/admin/").status_code == 401
    assert captured.reasons == [Reason.NO_ROLE, Reason.NO_ROLE, Reason.MISSING_TOKEN]


def test_custom_403_page_names_no_reason(client: AccessClient) -> None:
    """The 403 page is the app's own, and says nothing of the refusal's reason."""
    response = client.get("/admin/", as_user="bob@example.com", groups=["Staff"])
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "Not for you" in page
    assert "not_in_group" not in page
    assert response.mimetype == "text/html"


def test_whoami_for_service_tokens_and_users(client: AccessClient) -> None:
    """/api/whoami answers JSON for a service token and for a user."""
    machine = client.get("/api/whoami", as_service_token="ci.access").json
    assert machine == {
        "name": "ci.access",
        "email": None,
        "service_token": True,
        "common_name": "ci.access",
    }
    person = client.get("/api/whoami", as_user="ada@example.com").get_json()
    assert person["email"] == "ada@example.com"
    assert person["service_token"] is False
    with capture_access() as captured:
        assert client.get("/api/whoami").status_code == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]


def test_notes_page_uses_the_browser_module(client: AccessClient) -> None:
    """/notes/ imports cf-access.js from the session blueprint and fetches /api/notes."""
    page = client.get("/notes/", as_user="ada@example.com").get_data(as_text=True)
    assert 'from "/auth/session/cf-access.js";' in page
    assert 'const notesUrl = "/api/notes";' in page
    assert "accessFetch(notesUrl" in page
    with capture_access() as captured:
        assert client.get("/notes/", as_service_token="ci.access").status_code == 403
    assert captured.reasons == [Reason.SERVICE_TOKEN_REFUSED]


def test_module_and_session_view_under_deny_by_default(
    client: AccessClient, captured: AccessCapture
) -> None:
    """The module needs no token; the session view does, and says whom it is for."""
    script = client.get("/auth/session/cf-access.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert client.get("/auth/session").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN
    summary = client.get("/auth/session", as_user="ada@example.com").json
    assert summary is not None
    assert summary["email"] == "ada@example.com"
    assert summary["expires_in"] > 0


def test_notes_api_adds_and_lists(client: AccessClient) -> None:
    """POST /api/notes stores a note (escaped nowhere: it is JSON) and answers them all."""
    added = client.post("/api/notes", json={"text": " <b>milk</b> "}, as_user="ada@example.com")
    assert added.status_code == 201
    assert added.json == [{"text": "<b>milk</b>", "by": "ada@example.com"}]
    assert client.get("/api/notes", as_user="bob@example.com").json == added.json
    for bad in ({}, {"text": ""}, {"text": 3}, {"text": "x" * 201}, ["text"]):
        response = client.post("/api/notes", json=bad, as_user="ada@example.com")
        assert response.status_code == 400
    with capture_access() as captured:
        assert client.post("/api/notes", json={"text": "x"}).status_code == 401
    assert captured.reasons == [Reason.MISSING_TOKEN]
    assert len(client.get("/api/notes", as_user="ada@example.com").json or []) == 1


def test_expired_and_foreign_tokens_get_401(
    client: AccessClient, cf_access_server: StandInServer
) -> None:
    """Expired, not-yet-valid and other-audience tokens are refused with 401."""
    issuer = cf_access_server.issuer
    tokens = (
        issuer.user_token("ada@example.com", ["Admins"], expired=True),
        issuer.user_token("ada@example.com", ["Admins"], not_yet_valid=True),
        issuer.user_token("ada@example.com", ["Admins"], audience="another-app"),
    )
    with capture_access() as captured:
        for token in tokens:
            assert client.get("/admin/", token=token).status_code == 401
    assert captured.reasons == [Reason.EXPIRED, Reason.NOT_YET_VALID, Reason.INVALID_AUDIENCE]


def test_create_app_reads_the_environment(
    cf_access_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no config, the settings come from CF_ACCESS_* variables, as under gunicorn."""
    for name, value in cf_access_server.environ(CF_ACCESS_LEEWAY=10).items():
        monkeypatch.setenv(name, value)
    app = create_app()
    assert app.config["CF_ACCESS_LEEWAY"] == "10"  # text, as the environment holds it
    assert app.extensions["cf_access"].checker.settings.leeway == 10
    client = AccessClient.for_app(app, cf_access_server.issuer)
    assert client.get("/admin/", as_user="ada@example.com", groups=["Admins"]).status_code == 200


def test_config_argument_wins_over_the_environment(
    cf_access_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config mapping overrides the environment."""
    monkeypatch.setenv("CF_ACCESS_LEEWAY", "10")
    app = create_app(cf_access_server.settings(CF_ACCESS_LEEWAY=20))
    assert app.config["CF_ACCESS_LEEWAY"] == 20


def test_create_app_without_settings_names_the_key() -> None:
    """With no team configured at all, the error names CF_ACCESS_TEAM_DOMAIN."""
    with pytest.raises(ConfigurationError, match="CF_ACCESS_TEAM_DOMAIN"):
        create_app()


def test_one_extension_many_apps(cf_access_server: StandInServer) -> None:
    """Two apps from the factory each get their own checker."""
    first = create_app(cf_access_server.settings())
    second = create_app(cf_access_server.settings(CF_ACCESS_LEEWAY=0))
    assert first.extensions["cf_access"] is not second.extensions["cf_access"]
    assert second.extensions["cf_access"].checker.settings.leeway == 0


def test_settings_from_the_environment_are_read_by_the_extension(
    monkeypatch: pytest.MonkeyPatch, cf_access_server: StandInServer
) -> None:
    """Environment text works as is: numbers, flags, AUD lists, JSON mappings, comma lists."""
    for name, value in cf_access_server.environ().items():
        monkeypatch.setenv(name, value)
    tag = "1" * 64  # an AUD tag of digits stays a string
    audience = cf_access_server.issuer.audience
    environ = {
        "CF_ACCESS_LEEWAY": "45",
        "CF_ACCESS_HTTP_TIMEOUT": "2.5",
        "CF_ACCESS_LOAD_KEYS_ON_INIT": "false",
        "CF_ACCESS_AUDIENCE": f'["{audience}", "{tag}"]',
        "CF_ACCESS_ROLES": '{"admin": ["Admins"], "ops": ["Ops", "SRE"]}',
        "CF_ACCESS_ALLOWED_EMAIL_DOMAINS": "example.com, .example.org",
        "CF_ACCESS_TRUSTED_ORIGINS": '["https://admin.example.com"]',
        "CF_ACCESS_CSRF_PROTECT": "false",
        "CF_ACCESS_PROTECT_ALL": "true",
        "CF_ACCESS_PUBLIC_ENDPOINTS": "public.health,static",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert settings_from_environ({**environ, "FLASK_DEBUG": "1"}) == environ
    settings = create_app().extensions["cf_access"].checker.settings
    assert settings.leeway == 45
    assert settings.http_timeout == 2.5
    assert settings.load_keys_on_init is False
    assert settings.audience == (audience, tag)
    assert settings.roles == {"admin": ("Admins",), "ops": ("Ops", "SRE")}
    assert settings.allowed_email_domains == ("example.com", ".example.org")
    assert settings.trusted_origins == frozenset({"https://admin.example.com"})
    assert settings.csrf_protect in (False, "off")


def test_settings_from_the_environment_that_do_not_parse_name_the_key(
    monkeypatch: pytest.MonkeyPatch, cf_access_server: StandInServer
) -> None:
    """Broken JSON in a structured setting is a ConfigurationError naming the key."""
    for name, value in cf_access_server.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CF_ACCESS_ROLES", '{"admin": ["Admins"')
    with pytest.raises(ConfigurationError, match="CF_ACCESS_ROLES"):
        create_app()
