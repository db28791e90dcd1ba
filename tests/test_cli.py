"""``flask cf-access check | verify | mint``, over real HTTP against the stand-in."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner, Result
from flask import Flask

from flask_cf_access import (
    CloudflareAccess,
    ConfigurationError,
    Reason,
    current_identity,
    require_group,
)
from flask_cf_access._core.verifier import Explanation, TokenVerifier
from flask_cf_access._flask.app_state import access_state
from flask_cf_access.cli import cli
from flask_cf_access.testing import (
    AccessIssuer,
    StandInServer,
    decode_unverified_claims,
    run_inline,
)

from .support import bearer

ROOT = Path(__file__).resolve().parent.parent
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def make_app(settings: dict[str, Any]) -> Flask:
    """A small app trusting ``settings``, with a group-gated route."""
    app = Flask("cli_app")
    app.config.update(settings)
    CloudflareAccess(app, background=run_inline)

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> str:
        return current_identity.name

    return app


#: Whether the test runner keeps stderr out of ``stdout``, as click 8.2 and later
#: do; before 8.2 it mixes them unless told not to, and then ``output`` lacks stderr.
STDERR_APART = "mix_stderr" not in inspect.signature(CliRunner).parameters


def run(app: Flask, *args: str, stdin: str | None = None) -> Result:
    """``flask cf-access ARGS`` for ``app``."""
    return app.test_cli_runner().invoke(cli, list(args), input=stdin)


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A stand-in team over HTTP that also mints tokens for ``mint``."""
    with AccessIssuer().serve(minting=True) as server:
        yield server


@pytest.fixture
def app(stand_in: StandInServer) -> Flask:
    """An app trusting the stand-in, configured as the example runner does."""
    return make_app(stand_in.settings())


@pytest.fixture
def real_team() -> dict[str, Any]:
    """Settings of a real team; keys not loaded at start, so nothing is fetched."""
    return {
        "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
        "CF_ACCESS_AUDIENCE": "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2",
        "CF_ACCESS_LOAD_KEYS_ON_INIT": False,
    }


def assert_token_not_shown(result: Result, token: str) -> None:
    """No segment of the token (signature above all) appears in the output."""
    for segment in token.split("."):
        if len(segment) > 8:
            assert segment not in result.output


# -- check -------------------------------------------------------------------


def test_check_lists_the_kids_over_http(app: Flask, stand_in: StandInServer) -> None:
    """check fetches the stand-in's certs and lists kid, issuer and audience."""
    issuer = stand_in.issuer
    before = stand_in.calls["/cdn-cgi/access/certs"]
    result = run(app, "check")
    assert result.exit_code == 0, result.output
    assert f"kid {issuer.signing_key.kid}" in result.output
    assert f"Issuer:     {issuer.issuer}" in result.output
    assert f"Audience:   {issuer.audience}\n" in result.output
    assert stand_in.certs_url in result.output
    assert "OK:" in result.output
    assert stand_in.calls["/cdn-cgi/access/certs"] == before + 1


def test_check_shows_both_keys_during_a_rotation(app: Flask, stand_in: StandInServer) -> None:
    """After a rotation both published kids are listed."""
    old = stand_in.issuer.signing_key.kid
    new = stand_in.issuer.rotate().kid
    result = run(app, "check")
    assert result.exit_code == 0
    assert "2 RS256 key(s)" in result.output
    assert f"kid {old}" in result.output
    assert f"kid {new}" in result.output


def test_check_notes_an_audience_unlike_an_aud_tag(stand_in: StandInServer) -> None:
    """An audience that is not 64 hex characters is pointed out."""
    app = make_app(stand_in.settings(CF_ACCESS_AUDIENCE="my-app"))
    result = run(app, "check")
    assert result.exit_code == 0
    assert "my-app  (not 64 hex characters" in result.output


def test_check_fails_when_the_team_is_unreachable(app: Flask, stand_in: StandInServer) -> None:
    """With the stand-in stopped, check exits 1 saying the keys could not be reached."""
    stand_in.close()
    result = run(app, "check")
    assert result.exit_code == 1
    assert "could not be reached" in result.output
    assert "CF_ACCESS_TEAM_DOMAIN" in result.output


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        (302, "", {"Location": "https://elsewhere.example/"}, "never fetched through a redirect"),
        (200, "<html>sign in</html>", {}, "did not answer JSON"),
        (500, "{}", {}, "answered HTTP 500"),
        (200, json.dumps({"keys": [{"kid": "a", "kty": "EC"}]}), {}, "publishes no key"),
        (200, json.dumps({"nothing": []}), {}, "publishes no key"),
    ],
)
def test_check_fails_with_a_clear_message(
    real_team: dict[str, Any], status: int, body: str, headers: dict[str, str], message: str
) -> None:
    """Redirects, HTML, HTTP errors and key-less documents each exit 1 with a reason."""
    app = make_app(real_team)
    with responses.RequestsMock() as mock:
        mock.get(
            "https://acme.cloudflareaccess.com/cdn-cgi/access/certs",
            status=status,
            body=body,
            headers=headers,
        )
        result = run(app, "check")
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.startswith("Team:       acme.cloudflareaccess.com")


def test_check_without_the_extension() -> None:
    """An app without init_app gets a clear error, not a traceback."""
    result = run(Flask("bare"), "check")
    assert result.exit_code == 1
    assert "init_app" in result.output


# -- verify ------------------------------------------------------------------


def test_verify_accepts_a_good_token(app: Flask, stand_in: StandInServer) -> None:
    """A token of the team passes every step; the token itself is never shown."""
    token = stand_in.issuer.user_token("ada@example.com", ["Admins"])
    result = run(app, "verify", token)
    assert result.exit_code == 0, result.output
    assert "kid is one of the team's published keys" in result.output
    assert "2. Signature: verified" in result.output
    assert "3. Claims (verified):" in result.output
    assert "Result: ACCEPTED" in result.output
    assert "the user ada@example.com" in result.output
    assert len(UTC_TIME.findall(result.output)) >= 4
    assert_token_not_shown(result, token)


def test_verify_checks_groups_over_http(app: Flask, stand_in: StandInServer) -> None:
    """--group asks the stand-in's get-identity: Admins pass, others get 403."""
    ada = stand_in.issuer.user_token("ada@example.com", ["Admins"])
    bob = stand_in.issuer.user_token("bob@example.com", ["Staff"])
    accepted = run(app, "verify", ada, "--group", "Admins")
    assert accepted.exit_code == 0
    assert "4. Groups: Admins; one of Admins needed: yes" in accepted.output
    refused = run(app, "verify", bob, "--group", "Admins")
    assert refused.exit_code == 1
    assert "REFUSED (not_in_group)" in refused.output
    assert "answers 403" in refused.output
    assert stand_in.calls["/cdn-cgi/access/get-identity"] == 2


def test_verify_explains_expiry_in_utc(app: Flask, stand_in: StandInServer) -> None:
    """An expired token: the signature verifies, exp is shown in UTC and marked."""
    token = stand_in.issuer.user_token("ada@example.com", expired=True)
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert "2. Signature: verified" in result.output
    assert re.search(r"exp  \S+ \S+ UTC \([^)]+ ago\)  \(EXPIRED\)", result.output)
    assert "Result: REFUSED (expired)" in result.output
    assert "answers 401" in result.output
    assert_token_not_shown(result, token)


def test_verify_explains_not_before(app: Flask, stand_in: StandInServer) -> None:
    """A token not valid yet is marked on nbf and refused for it."""
    token = stand_in.issuer.user_token("ada@example.com", not_yet_valid=True)
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert re.search(r"nbf  \S+ \S+ UTC \(in [^)]+\)  \(NOT YET VALID\)", result.output)
    assert "REFUSED (not_yet_valid)" in result.output


def test_verify_explains_the_audience(app: Flask, stand_in: StandInServer) -> None:
    """A token of another application shows the expected AUD tag."""
    token = stand_in.issuer.user_token("ada@example.com", audience="another-app")
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert f"['another-app']  (expected to hold {stand_in.issuer.audience})" in result.output
    assert "REFUSED (invalid_audience)" in result.output


def test_verify_explains_the_issuer(app: Flask, stand_in: StandInServer) -> None:
    """A token naming another issuer is refused for it."""
    token = stand_in.issuer.user_token("ada@example.com", iss="https://evil.example")
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert f"'https://evil.example'  (expected {stand_in.issuer.issuer})" in result.output
    assert "REFUSED (invalid_issuer)" in result.output


def test_verify_token_of_another_team(app: Flask, stand_in: StandInServer) -> None:
    """A token signed by a key the team never published: unknown kid, claims unverified."""
    stranger = AccessIssuer(team_domain=stand_in.issuer.team_domain)
    token = stranger.user_token("mallory@example.com")
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert "not among the team's published keys" in result.output
    assert "2. Signature: NOT verified (unknown_kid" in result.output
    assert "3. Claims (NOT verified, shown only to explain):" in result.output
    assert "mallory@example.com" in result.output
    assert "REFUSED (unknown_kid)" in result.output
    assert_token_not_shown(result, token)


def test_verify_tampered_token(app: Flask, stand_in: StandInServer) -> None:
    """Claims changed after signing: bad signature."""
    token = stand_in.issuer.user_token("ada@example.com")
    forged = stand_in.issuer.user_token("admin@example.com")
    header, _, signature = token.split(".")
    tampered = ".".join([header, forged.split(".")[1], signature])
    result = run(app, "verify", tampered)
    assert result.exit_code == 1
    assert "REFUSED (bad_signature)" in result.output
    assert_token_not_shown(result, tampered)


def test_verify_names_a_failed_check_of_no_shown_claim(app: Flask, stand_in: StandInServer) -> None:
    """A check with no mark beside a claim (here: type) is listed below the claims."""
    token = stand_in.issuer.mint({"type": "org"})
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert "2. Signature: verified" in result.output
    assert "type: FAILED (not_an_app_token" in result.output
    assert "REFUSED (not_an_app_token)" in result.output
    assert_token_not_shown(result, token)


def test_verify_explains_through_the_apps_verifier(
    app: Flask, stand_in: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The explanation is the verifier's own explain, asked once, and the verdict is its."""
    token = stand_in.issuer.user_token("ada@example.com", expired=True)
    explained: list[Reason | None] = []
    explain = TokenVerifier.explain

    def counted(self: TokenVerifier, token: str) -> Explanation:
        explanation = explain(self, token)
        explained.append(explanation.reason)
        return explanation

    monkeypatch.setattr(TokenVerifier, "explain", counted)
    result = run(app, "verify", token)
    assert explained == [Reason.EXPIRED]
    assert "Result: REFUSED (expired)" in result.output


def test_verify_garbage(app: Flask) -> None:
    """Something that is not a JWS is refused at the first step."""
    result = run(app, "verify", "not-a-token")
    assert result.exit_code == 1
    assert "REFUSED (malformed_token)" in result.output
    assert "1. Header" not in result.output


def test_verify_reads_stdin(app: Flask, stand_in: StandInServer) -> None:
    """TOKEN - reads the token from standard input."""
    token = stand_in.issuer.service_token("ci.access")
    result = run(app, "verify", "-", stdin=token + "\n")
    assert result.exit_code == 0, result.output
    assert "service token 'ci.access'" in result.output
    assert "the service token ci.access" in result.output


def test_verify_when_keys_cannot_be_had(stand_in: StandInServer) -> None:
    """With the team unreachable, verify says 503 rather than blaming the token."""
    app = make_app(stand_in.settings(CF_ACCESS_LOAD_KEYS_ON_INIT=False))
    token = stand_in.issuer.user_token("ada@example.com")
    stand_in.close()
    result = run(app, "verify", token)
    assert result.exit_code == 1
    assert "REFUSED (keys_unavailable)" in result.output
    assert "answers 503" in result.output


# -- mint --------------------------------------------------------------------


def test_mint_a_user_token_over_http(app: Flask, stand_in: StandInServer) -> None:
    """mint prints one token the app accepts, its groups served by get-identity."""
    result = run(app, "mint", "--email", "carol@example.com", "--group", "Admins")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert decode_unverified_claims(token)["email"] == "carol@example.com"
    response = app.test_client().get("/admin", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "carol@example.com"
    assert run(app, "verify", token, "--group", "Admins").exit_code == 0


def test_mint_a_service_token(app: Flask) -> None:
    """--service-token mints a token with common_name and no sub."""
    result = run(app, "mint", "--service-token", "ci.access", "--lifetime", "60")
    assert result.exit_code == 0, result.output
    claims = decode_unverified_claims(result.stdout.strip())
    assert claims["common_name"] == "ci.access"
    assert claims["sub"] == ""
    assert claims["exp"] - claims["iat"] == 60


def test_mint_bad_tokens_on_purpose(app: Flask) -> None:
    """--expired, --not-yet-valid and --audience mint tokens the app refuses."""
    for option, reason in (
        (["--expired"], "expired"),
        (["--not-yet-valid"], "not_yet_valid"),
        (["--audience", "another-app"], "invalid_audience"),
    ):
        minted = run(app, "mint", "--email", "ada@example.com", *option)
        assert minted.exit_code == 0, minted.output
        verdict = run(app, "verify", minted.stdout.strip())
        assert f"REFUSED ({reason})" in verdict.output


def test_mint_refuses_a_real_team(real_team: dict[str, Any]) -> None:
    """With no stand-in configured, mint exits 1 and fetches nothing."""
    with responses.RequestsMock():  # any request would fail the test
        result = run(make_app(real_team), "mint", "--email", "ada@example.com")
    assert result.exit_code == 1
    assert "only makes tokens from the local Access stand-in" in result.output
    assert "acme.cloudflareaccess.com" in result.output
    if STDERR_APART:
        assert result.stdout == ""


def test_mint_refuses_when_keys_come_from_a_real_team(
    real_team: dict[str, Any], stand_in: StandInServer
) -> None:
    """A stand-in URL alongside a real team's keys is refused: the app trusts the team."""
    assert stand_in.mint_url is not None
    app = make_app({**real_team, "CF_ACCESS_STAND_IN": stand_in.mint_url})
    result = run(app, "mint", "--email", "ada@example.com")
    assert result.exit_code == 1
    assert "it trusts a real Access team" in result.output
    assert stand_in.calls[stand_in.mint_url.removeprefix(stand_in.url)] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://stand-in.example/x/tokens",
        "https://127.0.0.1/x/tokens",
        "http://127.0.0.1.evil.example/x/tokens",
        "ftp://127.0.0.1/x",
        "127.0.0.1:5000/x",
        42,
    ],
)
def test_a_stand_in_off_this_machine_is_a_configuration_error(
    real_team: dict[str, Any], url: object
) -> None:
    """CF_ACCESS_STAND_IN must be an http:// URL on the loopback interface, from init_app on."""
    with pytest.raises(ConfigurationError, match=r"CF_ACCESS_STAND_IN must be the http://127"):
        make_app({**real_team, "CF_ACCESS_STAND_IN": url})


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5000/x", "http://localhost/x", "http://[::1]:80/x"]
)
def test_a_stand_in_on_this_machine_is_read(real_team: dict[str, Any], url: str) -> None:
    """The settings hold the stand-in's URL as given."""
    app = make_app({**real_team, "CF_ACCESS_STAND_IN": url})
    assert access_state(app).checker.settings.stand_in == url


def test_mint_when_the_stand_in_is_gone(app: Flask, stand_in: StandInServer) -> None:
    """A stopped stand-in is reported as unreachable."""
    stand_in.close()
    result = run(app, "mint", "--email", "ada@example.com")
    assert result.exit_code == 1
    assert "could not be reached" in result.output


def test_mint_with_a_wrong_secret(stand_in: StandInServer) -> None:
    """The stand-in mints only at its secret URL."""
    app = make_app(stand_in.settings(CF_ACCESS_STAND_IN=stand_in.url + "/__stand-in__/x/tokens"))
    result = run(app, "mint", "--email", "ada@example.com")
    assert result.exit_code == 1
    assert "refused to mint (HTTP 404" in result.output


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--email", "a@example.com", "--service-token", "ci"],
        ["--service-token", "ci", "--group", "Admins"],
        ["--email", "a@example.com", "--lifetime", "0"],
    ],
)
def test_mint_usage_errors(app: Flask, args: list[str]) -> None:
    """Contradictory or missing options are usage errors (exit 2)."""
    result = run(app, "mint", *args)
    assert result.exit_code == 2
    if STDERR_APART:
        assert result.stdout == ""


# -- the entry point -------------------------------------------------------------


@pytest.mark.slow
def test_flask_command_lists_the_group() -> None:
    """`flask --app examples.protected_app cf-access --help` works through the entry point."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CF_ACCESS_")}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "examples.protected_app", "cf-access", "--help"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for command in ("check", "verify", "mint"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M)
