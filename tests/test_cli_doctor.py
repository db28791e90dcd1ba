"""``flask cf-access discover`` and ``doctor`` against a stand-in Cloudflare API on 127.0.0.1."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import CloudflareAccess, require_access, require_group
from flask_cf_access._core import cloudflare_api as api_module
from flask_cf_access._core.cloudflare_api import (
    AccessApplication,
    ApiError,
    CloudflareApi,
    Credentials,
    Secret,
)
from flask_cf_access._doctor import covering, duration_seconds
from flask_cf_access.cli import cli
from flask_cf_access.testing import run_inline

from .cloudflare_api import ACCOUNT_ID, TOKEN, Failure, FakeCloudflareApi, application
from .support import FrozenClock
from .test_cli import STDERR_APART

GOLDEN = Path(__file__).parent / "golden"
HOST = "app.example.com"
TEAM = "acme.cloudflareaccess.com"
AUD_APP = "a" * 63 + "1"
AUD_ADMIN = "b" * 63 + "2"
AUD_API = "c" * 63 + "3"
AUD_OTHER = "d" * 63 + "4"
IDP_GOOGLE = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415"


def environment(api: FakeCloudflareApi, **extra: str) -> dict[str, str]:
    """The credentials in the environment, and the stand-in API's URL."""
    return {
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
        "CLOUDFLARE_API_BASE_URL": api.url,
        **extra,
    }


def run(app: Flask, *args: str, env: dict[str, str] | None = None) -> Result:
    """``flask cf-access ARGS`` for ``app``, with ``env`` as the only Cloudflare settings."""
    cleared = {
        "CLOUDFLARE_API_TOKEN": None,
        "CLOUDFLARE_ACCOUNT_ID": None,
        "CLOUDFLARE_API_BASE_URL": None,
    }
    return runner(app).invoke(cli, list(args), env={**cleared, **(env or {})})


def runner(app: Flask) -> FlaskCliRunner:
    """The app's CLI runner, keeping standard error apart from standard output (as click
    8.2 and later always do)."""
    return app.test_cli_runner(**({} if STDERR_APART else {"mix_stderr": False}))


def served_app(name: str, **settings: Any) -> Flask:
    """An app at app.example.com with ``settings``, and a public health check."""
    app = Flask(name)
    app.config.update(
        SERVER_NAME=HOST,
        CF_ACCESS_TEAM_DOMAIN=TEAM,
        CF_ACCESS_LOAD_KEYS_ON_INIT=False,
        CF_ACCESS_PUBLIC_ENDPOINTS=["healthz", "static"],
    )
    app.config.update(settings)
    CloudflareAccess(app, background=run_inline)
    app.add_url_rule("/healthz", "healthz", lambda: "ok")
    return app


def one_application_app(**settings: Any) -> Flask:
    """An app at app.example.com behind one application: a home page and a public health check."""
    app = served_app("one_app", **{"CF_ACCESS_AUDIENCE": AUD_APP, **settings})

    @app.get("/")
    @require_access
    def home() -> str:
        return "home"

    return app


def two_application_app(**settings: Any) -> Flask:
    """An app whose /admin/ and /api/ two applications cover, and whose /reports none does."""
    app = served_app(
        "two_apps",
        **{
            "CF_ACCESS_AUDIENCE": [AUD_ADMIN, AUD_OTHER],
            "CF_ACCESS_CSRF_PROTECT": False,
            "CF_ACCESS_MAX_TOKEN_AGE": 3600,
            **settings,
        },
    )

    @app.get("/admin/")
    @require_group("Admins")
    def admin() -> str:
        return "admin"

    @app.route("/api/items", methods=["GET", "POST"])
    @require_access
    def items() -> str:
        return "items"

    @app.get("/reports")
    @require_access
    def reports() -> str:
        return "reports"

    return app


def one_application_account() -> list[dict[str, Any]]:
    """The account of the one-application app: its application and another host's."""
    return [
        application("Example App", AUD_APP, HOST),
        application("Other", AUD_OTHER, "other.example.com"),
        {"type": "bookmark", "name": "Wiki", "domain": "wiki.example.com"},  # no AUD: skipped
    ]


def two_application_account() -> list[dict[str, Any]]:
    """The account of the two-application app."""
    return [
        application(
            "Example Admin",
            AUD_ADMIN,
            f"{HOST}/admin",
            session_duration="24h",
            same_site_cookie_attribute="none",
            allowed_idps=[IDP_GOOGLE],
        ),
        application(
            "Example API",
            AUD_API,
            f"{HOST}/api",
            session_duration="30m",
            same_site_cookie_attribute="lax",
            options_preflight_bypass=True,
        ),
        application("Other", AUD_OTHER, "other.example.com"),
    ]


@pytest.fixture
def api() -> Iterator[FakeCloudflareApi]:
    """The stand-in API for the one-application account."""
    with FakeCloudflareApi(
        applications=one_application_account(),
        identity_providers=[{"id": IDP_GOOGLE, "name": "Google Workspace", "type": "google-apps"}],
    ) as server:
        yield server


@pytest.fixture
def two_api() -> Iterator[FakeCloudflareApi]:
    """The stand-in API for the two-application account."""
    with FakeCloudflareApi(
        applications=two_application_account(),
        identity_providers=[{"id": IDP_GOOGLE, "name": "Google Workspace", "type": "google-apps"}],
    ) as server:
        yield server


def export(tmp_path: Path, applications: list[dict[str, Any]], *, bare: bool = False) -> str:
    """An exported applications file: the API's envelope, or its bare result list."""
    document: object = (
        applications
        if bare
        else {"success": True, "errors": [], "messages": [], "result": applications}
    )
    path = tmp_path / "access-apps.json"
    path.write_text(json.dumps(document))
    return str(path)


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def assert_no_credentials(result: Result, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the token nor the account id in the output or any log record (DEBUG included)."""
    assert caplog.records  # the HTTP library's DEBUG records were captured, and checked
    for secret in (TOKEN, ACCOUNT_ID):
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert secret not in caplog.text


# -- golden outputs ------------------------------------------------------------------------


def test_discover_one_application(api: FakeCloudflareApi) -> None:
    """discover prints the team domain and the one AUD tag for the app's host."""
    result = run(one_application_app(), "discover", env=environment(api))
    assert result.exit_code == 0, result.output
    assert result.stdout == golden("discover-one.txt")
    assert set(api.authorizations) == {f"Bearer {TOKEN}"}


def test_discover_two_applications(two_api: FakeCloudflareApi) -> None:
    """Several applications: CF_ACCESS_APPLICATIONS, each with its AUD tag and paths."""
    result = run(two_application_app(), "discover", env=environment(two_api))
    assert result.exit_code == 0, result.output
    assert result.stdout == golden("discover-two.txt")


def test_discover_prints_an_applications_map_the_app_takes(two_api: FakeCloudflareApi) -> None:
    """What discover prints for several applications, pasted, is a valid
    CF_ACCESS_APPLICATIONS, and doctor then finds every AUD tag under that key."""
    printed = run(two_application_app(), "discover", env=environment(two_api)).stdout
    pasted = printed[printed.index("CF_ACCESS_APPLICATIONS = ") :].split(" = ", 1)[1]
    applications = ast.literal_eval(pasted)
    app = two_application_app(CF_ACCESS_AUDIENCE=None, CF_ACCESS_APPLICATIONS=applications)
    result = run(app, "doctor", env=environment(two_api))
    assert "its AUD tag is in CF_ACCESS_APPLICATIONS" in result.stdout
    assert "CF_ACCESS_AUDIENCE" not in result.stdout


def test_doctor_one_application(api: FakeCloudflareApi) -> None:
    """An app that agrees with its application: only ok and information, exit 0."""
    result = run(one_application_app(), "doctor", env=environment(api))
    assert result.stdout == golden("doctor-one.txt")
    assert result.exit_code == 0


def test_doctor_two_applications(two_api: FakeCloudflareApi) -> None:
    """Each disagreement, with its fix and side; exit 1 for CI."""
    result = run(two_application_app(), "doctor", env=environment(two_api))
    assert result.stdout == golden("doctor-two.txt")
    assert result.exit_code == 1


def test_doctor_from_a_file(tmp_path: Path) -> None:
    """Offline: the same findings from an export, with no token and no network; the
    team, keys and identity providers' names are said not to be checked."""
    path = export(tmp_path, two_application_account())
    result = run(two_application_app(), "doctor", "--from-file", path)
    assert result.exit_code == 1
    assert result.stdout == golden("doctor-two-offline.txt").replace("EXPORT", path)


def test_discover_saves_an_export_doctor_reads(two_api: FakeCloudflareApi, tmp_path: Path) -> None:
    """discover --save writes the applications read, without their policies; doctor
    --from-file on it finds what it finds from the API."""
    saved = tmp_path / "saved.json"
    app = two_application_app()
    result = run(app, "discover", "--save", str(saved), env=environment(two_api))
    assert result.exit_code == 0, result.output
    assert result.stdout == golden("discover-two.txt")
    assert result.stderr == f"Saved the 3 applications to {saved}.\n"
    text = saved.read_text()
    assert "policies" not in text
    assert TOKEN not in text
    assert ACCOUNT_ID not in text
    offline = run(app, "doctor", "--from-file", str(saved))
    assert offline.exit_code == 1
    assert offline.stdout == golden("doctor-two-offline.txt").replace("EXPORT", str(saved))


@pytest.mark.parametrize("bare", [False, True])
def test_discover_from_a_file(tmp_path: Path, bare: bool) -> None:
    """The envelope or the bare result list; the team domain is the app's, said unchecked."""
    path = export(tmp_path, one_application_account(), bare=bare)
    result = run(one_application_app(), "discover", "--from-file", path)
    assert result.exit_code == 0, result.output
    expected = golden("discover-one.txt").replace("the Cloudflare API", path)
    expected = expected.replace(
        f'CF_ACCESS_TEAM_DOMAIN = "{TEAM}"',
        f'CF_ACCESS_TEAM_DOMAIN = "{TEAM}"  # the app\'s own; not checked here',
    )
    assert result.stdout == expected


def test_discover_with_an_unconfigured_app(tmp_path: Path) -> None:
    """With --host, discover runs even when the app's Access settings are not there yet."""
    path = export(tmp_path, one_application_account())
    app = Flask("bare")
    result = runner(app).invoke(
        cli, ["discover", "--host", HOST, "--from-file", path], env={"CLOUDFLARE_API_TOKEN": None}
    )
    assert result.exit_code == 0, result.output
    assert f'CF_ACCESS_AUDIENCE = "{AUD_APP}"' in result.stdout
    assert "<team>.cloudflareaccess.com" in result.stdout


def test_discover_names_no_application_for_an_unknown_host(api: FakeCloudflareApi) -> None:
    """A host no application covers: one line on stderr, exit 1."""
    result = run(
        one_application_app(), "discover", "--host", "nope.example.com", env=environment(api)
    )
    assert result.exit_code == 1
    assert "none of the 2 Access applications" in result.stderr
    assert "nope.example.com" in result.stderr


def test_doctor_with_no_application_for_the_host(api: FakeCloudflareApi) -> None:
    """doctor says no application covers the host, as an error."""
    result = run(
        one_application_app(), "doctor", "--host", "nope.example.com", env=environment(api)
    )
    assert result.exit_code == 1
    assert "error    apps      no Access application covers nope.example.com" in result.stdout


def test_a_host_is_needed() -> None:
    """Neither --host nor SERVER_NAME: a usage error."""
    app = one_application_app(SERVER_NAME=None)
    result = run(app, "doctor", "--from-file", "x.json")
    assert result.exit_code == 2
    assert "--host" in result.stderr


# -- the API's failures: one line, exit 1, never a traceback, never the token -------------


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            Failure(401, [{"code": 10001, "message": "Unable to authenticate request"}]),
            "refused the token (HTTP 401: 10001 Unable to authenticate request): is"
            " CLOUDFLARE_API_TOKEN a valid API token?",
        ),
        (
            Failure(403, [{"code": 10000, "message": "Authentication error"}]),
            "refused to show the Access applications (HTTP 403: 10000 Authentication error):"
            " the token needs 'Access: Apps and Policies Read'",
        ),
        (
            Failure(
                429,
                [{"code": 971, "message": "Please wait and consider throttling your request"}],
                {"Retry-After": "42"},
            ),
            "rate limiting this token (HTTP 429: 971 Please wait and consider throttling your"
            " request): retry in 42 s",
        ),
        (
            Failure(502, body=b"<html>Bad gateway</html>"),
            "is failing (HTTP 502 on GET /accounts/{account_id}/access/apps: no error given)",
        ),
        (
            Failure(302, headers={"Location": "https://elsewhere.example/"}, body=b""),
            "with a redirect (HTTP 302), never followed",
        ),
        (Failure(200, body=b"<html>hello</html>"), "is not a JSON object"),
        (
            Failure(200, body=b" " * (1024 * 1024 + 1)),
            "the Cloudflare API: GET /accounts/{account_id}/access/apps answered more than"
            " 1048576 bytes",
        ),
        (
            Failure(200, body=b'{"success": false, "errors": [{"code": 9109, "message": "x\\n"}]}'),
            "failed GET /accounts/{account_id}/access/apps: 9109 x\\n",
        ),
    ],
)
def test_api_failures_are_one_line(
    api: FakeCloudflareApi, failure: Failure, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failure of the API is one line on stderr and exit 1, without the credentials."""
    api.failures["apps"] = failure
    caplog.set_level(logging.DEBUG)
    for command in ("discover", "doctor"):
        result = run(one_application_app(), command, env=environment(api))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert_no_credentials(result, caplog)


def test_a_wrong_token(api: FakeCloudflareApi, caplog: pytest.LogCaptureFixture) -> None:
    """A token the API does not know: Cloudflare's 403 Authentication error, in one line."""
    caplog.set_level(logging.DEBUG)
    wrong = "x" * 40
    result = run(one_application_app(), "doctor", env=environment(api, CLOUDFLARE_API_TOKEN=wrong))
    assert result.exit_code == 1
    assert "HTTP 403: 10000 Authentication error" in result.stderr
    assert wrong not in result.output + result.stderr + caplog.text


def test_the_api_down(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listening: could not be reached, one line."""
    with FakeCloudflareApi() as closed:
        url = closed.url
    caplog.set_level(logging.DEBUG)
    result = run(
        one_application_app(),
        "discover",
        "--api-url",
        url,
        env={"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID},
    )
    assert result.exit_code == 1
    assert "the Cloudflare API could not be reached (ConnectionError" in result.stderr
    assert_no_credentials(result, caplog)


@pytest.mark.parametrize("slow", ["headers", "body"])
def test_a_slow_api_is_cut_at_the_deadline(
    api: FakeCloudflareApi, slow: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An API that does not answer in --timeout: one line; the server waits on an event."""
    api.slow = slow
    caplog.set_level(logging.DEBUG)
    result = run(one_application_app(), "discover", "--timeout", "0.3", env=environment(api))
    api.release.set()
    assert result.exit_code == 1
    assert "did not answer GET /accounts/{account_id}/access/apps within 0.3 s" in result.stderr
    assert_no_credentials(result, caplog)


def test_hundreds_of_applications_are_read_page_by_page(api: FakeCloudflareApi) -> None:
    """250 applications, ours on the last page: three pages asked for, in order."""
    filler = [
        application(f"App {number:03d}", f"{number:064x}", f"app{number}.example.net")
        for number in range(249)
    ]
    api.applications = [*filler, application("Example App", AUD_APP, HOST)]
    result = run(one_application_app(), "discover", env=environment(api))
    assert result.exit_code == 0, result.output
    assert f'CF_ACCESS_AUDIENCE = "{AUD_APP}"' in result.stdout
    assert api.pages_asked() == ["1", "2", "3"]


def test_the_pages_are_bounded(api: FakeCloudflareApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """More pages than the bound: one line saying so, and no page beyond it asked for."""
    monkeypatch.setattr(api_module, "MAX_PAGES", 2)
    api.applications = [
        application(f"App {number:03d}", f"{number:064x}", f"app{number}.example.net")
        for number in range(250)
    ]
    result = run(one_application_app(), "discover", env=environment(api))
    assert result.exit_code == 1
    assert "more than 200 Access applications (3 pages of 100)" in result.stderr
    assert api.pages_asked() == ["1", "2"]


def test_a_part_the_token_may_not_read(api: FakeCloudflareApi) -> None:
    """403 on the keys: doctor goes on and says the rotation was not checked, and why."""
    api.failures["keys"] = Failure(403, [{"code": 10000, "message": "Authentication error"}])
    result = run(one_application_app(), "doctor", env=environment(api))
    assert result.exit_code == 0, result.output
    assert (
        "info     keys      key rotation not checked: the token may not read the Access keys'"
        " rotation settings (needs 'Access: Keys Read')"
    ) in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID not set"),
        ({"CLOUDFLARE_API_TOKEN": TOKEN}, "CLOUDFLARE_ACCOUNT_ID not set"),
        (
            {"CLOUDFLARE_API_TOKEN": f"{TOKEN}\r\nX-Evil: 1", "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID},
            "CLOUDFLARE_API_TOKEN is not an API token (its value is not shown)",
        ),
        (
            {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": "../../zones"},
            "CLOUDFLARE_ACCOUNT_ID is not an account id",
        ),
    ],
)
def test_credentials_are_checked_before_any_call(
    api: FakeCloudflareApi, env: dict[str, str], message: str
) -> None:
    """Missing or malformed credentials: one line naming the variable, nothing sent."""
    result = run(one_application_app(), "discover", env={**env, "CLOUDFLARE_API_BASE_URL": api.url})
    assert result.exit_code == 1
    assert message in result.stderr
    assert TOKEN not in result.stderr
    assert api.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://api.cloudflare.com.evil.example/client/v4",
        "http://api.cloudflare.com/client/v4",
        "https://10.0.0.1/client/v4",
        "ftp://127.0.0.1/client/v4",
    ],
)
def test_the_token_goes_only_to_cloudflare_or_this_machine(url: str) -> None:
    """Any other API URL is refused before the token is sent."""
    result = run(
        one_application_app(),
        "discover",
        "--api-url",
        url,
        env={"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID},
    )
    assert result.exit_code == 1
    assert "the API token is only sent to https://api.cloudflare.com/client/v4" in result.stderr


def test_credentials_never_show_in_a_repr() -> None:
    """The token and the account id are hidden from repr, str and format, and not pickled."""
    credentials = Credentials.from_environment(
        {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID}
    )
    client = CloudflareApi(credentials, base_url="http://127.0.0.1:1/client/v4")
    for shown in (repr(credentials), str(credentials), f"{credentials.token}", repr(client)):
        assert TOKEN not in shown
        assert ACCOUNT_ID not in shown
    with pytest.raises(TypeError):
        Secret(TOKEN).__reduce__()


def test_a_bad_export_is_one_line(tmp_path: Path) -> None:
    """An export that is not JSON, not applications, or not there: one line, exit 1."""
    app = one_application_app()
    missing = run(app, "doctor", "--from-file", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1
    assert "cannot be read" in missing.stderr
    (tmp_path / "bad.json").write_text("{nope")
    bad = run(app, "doctor", "--from-file", str(tmp_path / "bad.json"))
    assert "is not JSON" in bad.stderr
    (tmp_path / "object.json").write_text('{"result": {"aud": "x"}}')
    wrong = run(app, "doctor", "--from-file", str(tmp_path / "object.json"))
    assert "is not a list of Access applications" in wrong.stderr
    error = export(tmp_path, [])
    Path(error).write_text(
        json.dumps({"success": False, "errors": [{"code": 10000, "message": "Auth"}]})
    )
    failed = run(app, "doctor", "--from-file", error)
    assert "is an error answer: 10000 Auth" in failed.stderr


# -- the checks, one by one ---------------------------------------------------------------


def doctor_lines(app: Flask, tmp_path: Path, applications: list[dict[str, Any]]) -> list[str]:
    """The lines of ``doctor`` from an export of ``applications``."""
    path = export(tmp_path, applications)
    return run(app, "doctor", "--from-file", path).stdout.splitlines()


def severities(lines: list[str], check: str) -> list[str]:
    """The severity of each finding of ``check``."""
    return [line.split()[0] for line in lines if line.split()[1:2] == [check]]


def test_preflight_bypass_and_the_middleware(tmp_path: Path) -> None:
    """Preflights bypassed at the edge, and a middleware that refuses them: an error."""
    from flask_cf_access import CloudflareAccessMiddleware

    app = one_application_app()
    app.wsgi_app = CloudflareAccessMiddleware.from_flask(app)  # type: ignore[method-assign]
    lines = doctor_lines(
        app, tmp_path, [application("Example App", AUD_APP, HOST, options_preflight_bypass=True)]
    )
    assert any(line.startswith("error    preflight Example App: preflights") for line in lines)
    app.wsgi_app = CloudflareAccessMiddleware.from_flask(  # type: ignore[method-assign]
        one_application_app(), allow_preflight=True
    )
    lines = doctor_lines(
        app, tmp_path, [application("Example App", AUD_APP, HOST, options_preflight_bypass=True)]
    )
    assert not any(line.startswith("error") for line in lines)


def test_a_view_answering_options_itself(tmp_path: Path) -> None:
    """Preflights bypassed, and a protected view handling OPTIONS itself: a warning naming it."""
    app = one_application_app()

    @app.route("/cors", methods=["GET", "OPTIONS"])
    @require_access
    def cors() -> str:
        return "cors"

    @app.route("/open", methods=["GET", "OPTIONS"])
    def open_cors() -> str:
        return "open"

    lines = doctor_lines(
        app, tmp_path, [application("Example App", AUD_APP, HOST, options_preflight_bypass=True)]
    )
    warnings = [line for line in lines if line.startswith("warning  preflight")]
    assert len(warnings) == 1
    assert warnings[0].endswith("protected like any method: /cors")


@pytest.mark.parametrize(
    ("csrf", "same_site", "severity"),
    [
        ("cookie", "none", "ok"),
        ("always", None, "ok"),
        (False, "none", "error"),
        (False, None, "error"),
        (False, "lax", "warning"),
        (False, "strict", "warning"),
    ],
)
def test_same_site_against_the_csrf_defence(
    tmp_path: Path, csrf: object, same_site: str | None, severity: str
) -> None:
    """SameSite=None (Access's default) with the CSRF defence off is an error."""
    app = one_application_app(CF_ACCESS_CSRF_PROTECT=csrf)
    fields = {} if same_site is None else {"same_site_cookie_attribute": same_site}
    lines = doctor_lines(app, tmp_path, [application("Example App", AUD_APP, HOST, **fields)])
    assert severities(lines, "cookie") == [severity]


@pytest.mark.parametrize(
    ("session", "max_age", "severity"),
    [
        ("24h", None, "ok"),
        ("24h", 86400, "ok"),
        ("24h", 86399, "error"),
        ("30m", 3600, "ok"),
        ("1h30m", 3600, "error"),
        ("forever", 3600, "warning"),
    ],
)
def test_session_against_the_maximum_token_age(
    tmp_path: Path, session: str, max_age: int | None, severity: str
) -> None:
    """An Access session longer than CF_ACCESS_MAX_TOKEN_AGE locks signed-in users out."""
    app = one_application_app(CF_ACCESS_MAX_TOKEN_AGE=max_age)
    applications = [application("Example App", AUD_APP, HOST, session_duration=session)]
    lines = doctor_lines(app, tmp_path, applications)
    assert severities(lines, "session") == [severity]


def test_key_rotation_against_the_keys_max_age(api: FakeCloudflareApi) -> None:
    """A key set kept longer than the rotation interval is a warning."""
    api.key_rotation_interval_days = 1
    app = one_application_app(CF_ACCESS_KEYS_MAX_AGE=86400)
    result = run(app, "doctor", env=environment(api))
    expected = "warning  keys      the team's keys rotate every 1 day and the app keeps"
    assert expected in result.stdout


def test_a_team_domain_that_is_not_the_teams(api: FakeCloudflareApi) -> None:
    """The organization's auth domain differs from CF_ACCESS_TEAM_DOMAIN: an error."""
    api.auth_domain = "other.cloudflareaccess.com"
    result = run(one_application_app(), "doctor", env=environment(api))
    assert result.exit_code == 1
    assert "error    team      the team's tokens are issued by https://other" in result.stdout


# -- coverage and durations --------------------------------------------------------------


def test_hosts_with_ports(tmp_path: Path) -> None:
    """SERVER_NAME with a port, and an application domain with one, match the host."""
    app = one_application_app(SERVER_NAME=f"{HOST}:8443")
    lines = doctor_lines(app, tmp_path, [application("Example App", AUD_APP, f"{HOST}:8443")])
    assert lines[0].startswith(f"Checking {HOST} against 1 of the 1 Access applications")


def test_the_most_specific_application_covers_a_path() -> None:
    """An exact host beats a wildcard; a longer path a shorter one; a path covers what is below."""
    whole = AccessApplication("Whole", "1", "self_hosted", ("*.example.com",))
    host = AccessApplication("Host", "2", "self_hosted", ("app.example.com",))
    api = AccessApplication("API", "3", "self_hosted", ("app.example.com/api/",))
    apps = [whole, host, api]
    assert covering(apps, "app.example.com", "/") is host
    assert covering(apps, "app.example.com", "/api") is api
    assert covering(apps, "app.example.com", "/api/v1/items") is api
    assert covering(apps, "app.example.com", "/apiary") is host
    assert covering(apps, "www.example.com", "/api") is whole
    assert covering(apps, "example.com", "/") is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("30m", 1800), ("1h30m", 5400), ("0s", 0), ("730h", 2628000), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    """Session durations as the API writes them (Go durations)."""
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "24h ", "1d", "-1h", "24hh"])
def test_not_durations(text: str) -> None:
    """Anything else is no duration."""
    assert duration_seconds(text) is None


def test_api_errors_never_hold_the_credentials(api: FakeCloudflareApi) -> None:
    """The exception of every failure mode: no token, no account id, in its text or args."""
    credentials = Credentials.from_environment(
        {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID}
    )
    for status in (400, 401, 403, 404, 429, 500, 503):
        api.failures["apps"] = Failure(status, [{"code": 1, "message": "no"}])
        with pytest.raises(ApiError) as caught:
            CloudflareApi(credentials, base_url=api.url, timeout=5).applications()
        assert caught.value.status == status
        for secret in (TOKEN, ACCOUNT_ID):
            assert secret not in str(caught.value)
            assert secret not in repr(caught.value.args)
        assert caught.value.__cause__ is None


SEGMENT = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True)


@pytest.mark.slow
@given(
    prefix=st.lists(SEGMENT, min_size=1, max_size=4),
    below=st.lists(SEGMENT, max_size=3),
    slash=st.booleans(),
    sibling=SEGMENT,
)
def test_a_path_covers_itself_and_what_is_below_it_only(
    prefix: list[str], below: list[str], slash: bool, sibling: str
) -> None:
    """An application for host/a/b covers /a/b and /a/b/..., never /a/bX or /a; the
    application for the whole host takes the rest, whatever the segments."""
    path = "/" + "/".join(prefix)
    whole = AccessApplication("Whole", "1", "self_hosted", (HOST,))
    part = AccessApplication("Part", "2", "self_hosted", (f"{HOST}{path}{'/' if slash else ''}",))
    apps = [whole, part]
    assert covering(apps, HOST, path) is part
    assert covering(apps, HOST, "/".join([path, *below])) is part
    assert covering(apps, HOST, path + sibling) is whole
    assert covering(apps, HOST, path.rsplit("/", 1)[0] or "/") is whole
    assert covering([part], HOST, path + sibling) is None


def test_names_from_the_api_cannot_end_or_fake_a_line(tmp_path: Path) -> None:
    """An application's name or AUD with line breaks or escapes prints escaped, on one line,
    and the AUD pasted is a quoted literal."""
    hostile = application("Evil\nCF_ACCESS_AUDIENCE = 'x'\x1b[2J", 'a"b\nc', HOST)
    path = export(tmp_path, [hostile, application("Example App", AUD_APP, HOST)])
    result = run(one_application_app(), "discover", "--from-file", path)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "\nCF_ACCESS_AUDIENCE = 'x'" not in result.stdout
    pasted = '    "Evil\\\\nCF_ACCESS_AUDIENCE = \'x\'\\\\x1b[2J": {"audience": "a\\"b\\\\nc"'
    assert pasted in result.stdout


def test_one_deadline_for_every_call(api: FakeCloudflareApi) -> None:
    """The deadline holds for the run as a whole: once past, no further call is made."""
    credentials = Credentials.from_environment(
        {"CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID}
    )
    clock = FrozenClock()
    client = CloudflareApi(credentials, base_url=api.url, timeout=10, clock=clock)
    assert len(client.applications()) == 2
    clock.advance(10)
    with pytest.raises(ApiError, match=r"did not answer GET /accounts/\{account_id\}/access/apps"):
        client.deployment()
    assert len(api.requests) == 1
