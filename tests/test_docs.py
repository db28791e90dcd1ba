"""The documentation: its settings table matches the code, its samples run, it builds clean."""

from __future__ import annotations

import ast
import html
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

import pytest
import responses
from flask import Flask

import flask_cf_access
import flask_cf_access.onward
import flask_cf_access.testing
from flask_cf_access import CloudflareAccess, Reason
from flask_cf_access._core.settings import DEFAULTS
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    assert_routes_protected,
    capture_access,
    identity_profile,
    run_inline,
)

from .support import outcome

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
#: As CI builds the docs: every warning is an error, and every reference must resolve.
SPHINX_BUILD = (sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b")


def load(path: Path, name: str) -> ModuleType:
    """Import a file that is not in a package, under ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


settings_ext = load(DOCS / "_ext" / "cf_access_settings.py", "docs_cf_access_settings")
reasons_ext = load(DOCS / "_ext" / "cf_access_reasons.py", "docs_cf_access_reasons")


def settings_directive_body() -> list[str]:
    """The lines of the ``cf-access-settings`` directive in configuration.rst, dedented."""
    lines = (DOCS / "configuration.rst").read_text().splitlines()
    start = lines.index(".. cf-access-settings::") + 1
    body: list[str] = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        body.append(line[3:])
    return body


def settings_in_code() -> set[str]:
    """Every ``CF_ACCESS_*`` name in the package's code (docstrings left out)."""
    package = Path(flask_cf_access.__file__).parent
    names: set[str] = set()
    for path in package.rglob("*.py"):
        names |= settings_ext.names_in_code(path.read_text())
    return names


def test_settings_table_lists_exactly_the_settings_the_code_reads() -> None:
    """The configuration page's rows are the CF_ACCESS_* names in the code, no more, no less."""
    rows, _ = settings_ext.rows(settings_directive_body(), {})
    documented = [row.key for row in rows]
    assert len(documented) == len(set(documented))
    assert set(documented) == settings_in_code()
    assert set(DEFAULTS) <= set(documented)


def test_settings_table_shows_required_and_given_defaults() -> None:
    """Required keys say so, the body's defaults win, others show the code's value."""
    rows, _ = settings_ext.rows(settings_directive_body(), {})
    defaults = {row.key: row.default for row in rows}
    assert defaults["CF_ACCESS_TEAM_DOMAIN"] == "required"
    assert defaults["CF_ACCESS_AUDIENCE"] == "required"
    assert defaults["CF_ACCESS_CERTS_URL"] == "``https://<team>/cdn-cgi/access/certs``"
    assert defaults["CF_ACCESS_LEEWAY"] == f"``{DEFAULTS['CF_ACCESS_LEEWAY']!r}``"


def test_settings_table_flags_a_setting_without_a_description() -> None:
    """A key with neither a field comment nor text in the page is reported."""
    _, problems = settings_ext.rows(["CF_ACCESS_STAND_IN"], {})
    assert any(problem.startswith("CF_ACCESS_TEAM_DOMAIN ") for problem in problems)
    assert any(problem.startswith("CF_ACCESS_STAND_IN ") for problem in problems)


def test_setting_names_in_docstrings_and_prefixes_are_not_settings() -> None:
    """Only whole names in code strings count: not docstrings, HTTP_ headers or the bare prefix."""
    source = (
        '"""Reads CF_ACCESS_IN_DOCSTRING."""\n'
        'KEY = "CF_ACCESS_REAL"\n'
        'HEADER = "HTTP_CF_ACCESS_AUTHENTICATED_USER_EMAIL"\n'
        'PREFIX = "CF_ACCESS_"\n'
        'MESSAGE = f"{KEY} or CF_ACCESS_OTHER is wrong"\n'
    )
    assert settings_ext.names_in_code(source) == {"CF_ACCESS_REAL", "CF_ACCESS_OTHER"}


def test_errors_page_lists_every_reason() -> None:
    """errors.rst shows the generated reasons table: one row per Reason, in the enum's order,
    with the status and description the member carries, not a second copy."""
    assert "\n.. cf-access-reasons::\n" in (DOCS / "errors.rst").read_text()
    assert reasons_ext.rows() == [
        (reason.value, reason.status, reasons_ext.meaning(reason.description)) for reason in Reason
    ]


def test_reasons_table_links_the_settings_a_description_names() -> None:
    """A CF_ACCESS_* key in a description becomes a link to its setting; the rest is text."""
    assert reasons_ext.meaning(Reason.TOKEN_TOO_OLD.description) == (
        "the token was issued longer ago than :confval:`CF_ACCESS_MAX_TOKEN_AGE` allows"
    )
    markup = r'max_login_age, match="all", *x* `y` |z| \ '
    escaped = r"max\_login\_age, match=\"all\", \*x\* \`y\` \|z\| \\ "
    assert reasons_ext.meaning(markup) == escaped


def test_reasons_table_reads_as_each_description(built_site: Path) -> None:
    """On the built errors page, each reason's row reads as its status and description, quotes
    and underscores as written."""
    page = (built_site / "errors.html").read_text()
    for reason in Reason:
        anchor = f'id="reason-{reason.value.replace("_", "-")}"'
        assert anchor in page, reason
        row = page[page.index(anchor) : page.index("</tr>", page.index(anchor))]
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row.split(">", 1)[1])).split())
        assert text == f"{reason.value} {reason.status} {reason.description}", text


# -- the samples the pages include -------------------------------------------


@pytest.fixture
def examples_on_path() -> Iterator[None]:
    """docs/examples importable, as in a project of the reader's own."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield
    finally:
        sys.path.remove(str(EXAMPLES))
        for name in (
            "yourapp",
            "admin_area",
            "custom_errors",
            "audit",
            "wsgi_app",
            "rules_app",
            "context_app",
        ):
            sys.modules.pop(name, None)


@pytest.fixture
def team() -> AccessIssuer:
    """A stand-in team for the samples."""
    return AccessIssuer()


def app_trusting(team: AccessIssuer) -> Flask:
    """A bare app trusting ``team`` in process."""
    app = Flask("docs_sample")
    app.config.update(team.settings())
    CloudflareAccess(app, session=team.session(), background=run_inline)
    return app


@pytest.mark.slow
def test_quick_start_tests_pass_in_a_project_of_their_own() -> None:
    """test_yourapp.py passes under pytest with only the installed package and its fixtures."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "test_yourapp.py"]
    result = subprocess.run(  # noqa: S603 (our interpreter, our test file)
        [*command, "-p", "no:cacheprovider"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_blueprint_guard_admits_admins_only(examples_on_path: None, team: AccessIssuer) -> None:
    """The admin blueprint admits Admins, refuses others and service tokens with their reasons."""
    import admin_area

    app = app_trusting(team)
    app.register_blueprint(admin_area.admin)
    client = AccessClient.for_app(app, team)
    with capture_access(app) as captured:
        ada = client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
        bob = client.get("/admin/", as_user="bob@example.com", groups=["Staff"])
        machine = client.get("/admin/", as_service_token="ci.access")
    assert ada.status_code == 200
    assert ada.json is not None
    assert ada.json["email"] == "ada@example.com"
    assert ada.json["groups"] == ["Admins"]
    assert (bob.status_code, machine.status_code) == (403, 403)
    assert captured.reasons == [Reason.NOT_IN_GROUP, Reason.SERVICE_TOKEN_REFUSED]


def test_custom_error_pages(
    examples_on_path: None, team: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """The sample's handlers answer each refusal with its own body and log the reason."""
    import admin_area
    import custom_errors

    app = app_trusting(team)
    app.register_blueprint(admin_area.admin)
    custom_errors.register_error_pages(app)
    client = AccessClient.for_app(app, team)

    bob = client.get("/admin/", as_user="bob@example.com", groups=["Staff"])
    machine = client.get("/admin/", as_service_token="ci.access")
    with caplog.at_level(logging.INFO, logger=app.logger.name):
        missing = client.get("/admin/")
    assert (bob.status_code, bob.text) == (403, "Ask the admins to add you to the group.")
    assert machine.status_code == 403
    assert machine.text == "This page is for people, not service tokens."
    assert missing.status_code == 401
    assert missing.json == {"error": "A valid Cloudflare Access token is required."}
    assert "refused /admin/: missing_token" in caplog.text


def test_audit_log_records_grants_and_refusals(
    examples_on_path: None, team: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit sample logs who was let in and who was refused, and why."""
    import admin_area
    import audit

    app = app_trusting(team)
    app.register_blueprint(admin_area.admin)
    audit.record_access(app)
    client = AccessClient.for_app(app, team)
    with caplog.at_level(logging.INFO, logger="audit"):
        client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
        client.get("/admin/", as_user="bob@example.com", groups=["Staff"])
        client.get("/admin/")
    audit_lines = [record.getMessage() for record in caplog.records if record.name == "audit"]
    assert audit_lines == [
        "granted GET /admin/ to ada@example.com",
        "refused GET /admin/ to bob@example.com: 403 not_in_group",
        "refused GET /admin/ to unknown: 401 missing_token",
    ]


class SentAs(TypedDict, total=False):
    """Whom a request is sent as: the keywords of AccessClient.open that choose the token."""

    as_user: str
    groups: list[str]
    as_service_token: str


def test_context_sample_needs_device_key_and_recent_sign_in(
    examples_on_path: None, team: AccessIssuer
) -> None:
    """The context rules page's admin area: posture, hardware key, sign-in age, MFA app-wide."""
    import context_app

    good = identity_profile(
        amr=["pwd", "hwk"],
        posture={context_app.DISK_ENCRYPTION: True, context_app.MANAGED_DEVICE: True},
        login_at=team.clock() - 600,
        device_id="dev-1",
    )
    cases: list[tuple[dict[str, Any], int, Reason | None]] = [
        (good, 200, None),
        ({**good, "amr": ["pwd", "otp"]}, 403, Reason.AMR_NOT_ALLOWED),
        ({**good, "amr": ["hwk"]}, 403, Reason.MFA_REQUIRED),
        ({**good, "iat": team.clock() - 3700}, 403, Reason.LOGIN_TOO_OLD),
        (
            {**good, **identity_profile(posture={context_app.DISK_ENCRYPTION: False})},
            403,
            Reason.POSTURE_FAILED,
        ),
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        team.register(mock)
        app = context_app.create_app(team.settings())
        for index, (fields, status, reason) in enumerate(cases):
            token = team.user_token(f"u{index}@example.com", ["Admins"], profile=fields)
            assert outcome(app, token, "/admin/") == (status, reason), fields
        staff = team.user_token("ada@example.com", ["Staff"], profile=good)
        assert outcome(app, staff, "/admin/") == (403, Reason.NO_ROLE)


def test_rules_sample_refuses_each_rule_with_its_reason(
    examples_on_path: None, team: AccessIssuer
) -> None:
    """The roles page's app: deny by default, roles, all-of, checks, e-mail rules, known tokens."""
    import rules_app

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        team.register(mock)
        app = rules_app.create_app(team.settings())
        client = AccessClient.for_app(app, team)
        cases: list[tuple[str, str, SentAs, int, Reason | None]] = [
            ("GET", "/health", {}, 200, None),
            ("GET", "/", {}, 401, Reason.MISSING_TOKEN),
            ("GET", "/", {"as_user": "ada@example.com"}, 200, None),
            ("GET", "/", {"as_user": "ada@eu.example.com"}, 200, None),
            ("GET", "/", {"as_user": "contractor@gmail.com"}, 200, None),
            ("GET", "/", {"as_user": "eve@evil-example.com"}, 403, Reason.EMAIL_NOT_ALLOWED),
            ("GET", "/tickets", {"as_user": "ada@example.com", "groups": ["Helpdesk"]}, 200, None),
            (
                "GET",
                "/tickets",
                {"as_user": "ada@example.com", "groups": ["Staff"]},
                403,
                Reason.NO_ROLE,
            ),
            (
                "GET",
                "/billing",
                {"as_user": "ada@example.com", "groups": ["Admins"]},
                403,
                Reason.NOT_IN_ALL_GROUPS,
            ),
            (
                "GET",
                "/billing",
                {"as_user": "ada@example.com", "groups": ["Admins", "Finance"]},
                200,
                None,
            ),
            (
                "GET",
                "/eu-data",
                {"as_user": "ada@example.com", "groups": ["Helpdesk"]},
                403,
                Reason.CHECK_FAILED,
            ),
            ("POST", "/deploy", {"as_service_token": "ci.access"}, 200, None),
            (
                "POST",
                "/deploy",
                {"as_service_token": "backup.access"},
                403,
                Reason.SERVICE_TOKEN_NOT_ADMITTED,
            ),
            (
                "POST",
                "/deploy",
                {"as_service_token": "rogue.access"},
                403,
                Reason.UNKNOWN_SERVICE_TOKEN,
            ),
            ("POST", "/deploy", {"as_user": "ada@example.com"}, 403, Reason.SERVICE_TOKEN_REQUIRED),
            ("GET", "/ops/", {"as_service_token": "ci.access"}, 200, None),
            (
                "GET",
                "/ops/",
                {"as_user": "bob@example.com", "groups": ["Staff"]},
                403,
                Reason.NO_ROLE,
            ),
            ("GET", "/nowhere", {}, 404, None),
        ]
        for method, path, options, status, reason in cases:
            with capture_access(app) as captured:
                response = client.open(path, method=method, **options)
            assert (method, path, options, response.status_code) == (method, path, options, status)
            assert captured.reasons == ([reason] if reason else [])
        assert (
            client.post("/deploy", as_service_token="ci.access").text == "deployed by ci-deployer"
        )
        assert_routes_protected(app)


def test_wsgi_sample_passes_the_identity_on(
    examples_on_path: None, team: AccessIssuer, captured: AccessCapture
) -> None:
    """The middleware sample: health open, admin for Admins, identity and groups passed on."""
    import wsgi_app
    from werkzeug.test import Client

    client = Client(wsgi_app.make_app(team.settings(), session=team.session()))
    ada = {"Cf-Access-Jwt-Assertion": team.user_token("ada@example.com", ["Admins"])}
    bob = {"Cf-Access-Jwt-Assertion": team.user_token("bob@example.com", ["Staff"])}

    health = client.get("/healthz", headers={"Remote-User": "x", "X-Auth-Email": "eve@x"})
    assert (health.status_code, health.text) == (200, "Hello, nobody ()")
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/").status_code == 401
    assert client.get("/admin", headers=bob).status_code == 403
    assert captured.reasons == [Reason.MISSING_TOKEN, Reason.NOT_IN_GROUP]
    assert client.get("/admin", headers=ada).text == "Hello, ada@example.com (Admins)"
    assert client.get("/", headers=bob).text == "Hello, bob@example.com (Staff)"


# -- the site ------------------------------------------------------------------


def public_names() -> set[str]:
    """Every public name the package and its testing kit export."""
    tree = ast.parse(Path(flask_cf_access.__file__).read_text())
    package = {  # the explicit re-exports: ``from .x import Name as Name``
        f"flask_cf_access.{alias.name}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names
        if alias.asname == alias.name
    }
    kit = {f"flask_cf_access.testing.{name}" for name in flask_cf_access.testing.__all__}
    onward = {f"flask_cf_access.onward.{name}" for name in flask_cf_access.onward.__all__}
    return package | kit | onward | {"flask_cf_access.__version__"}


def inventory(path: Path) -> dict[str, str]:
    """The Python objects of a built site's objects.inv: name to the anchor it links to.

    Sphinx also lists a class under its defining module's name (``:canonical:``),
    linking to the public entry; the anchor tells the two apart.
    """
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    entries: dict[str, str] = {}
    for line in zlib.decompress(data[header_end:]).decode().splitlines():
        name, role, _, uri = line.split(" ")[:4]
        if role.startswith("py:"):
            anchor = uri.partition("#")[2]
            entries[name] = anchor[:-1] + name if anchor.endswith("$") else anchor
    return entries


def need_docs_tools(*, html: bool) -> None:
    """Skip without the docs extra (Sphinx, Furo) or Graphviz's ``dot``; under CI, fail.

    The nox sessions for other Pythons set ``DOCS_TESTED_ELSEWHERE``:
    the docs are built once, by CI's main job, not once per Python.
    """
    missing = [name for name in ("sphinx", "furo") if importlib.util.find_spec(name) is None]
    if html and shutil.which("dot") is None:
        missing.append("graphviz (dot)")
    if missing and os.environ.get("CI") and not os.environ.get("DOCS_TESTED_ELSEWHERE"):
        pytest.fail(f"CI builds the docs, but {', '.join(missing)} is not installed")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML site, built as CI builds it: warnings are errors, nitpicky."""
    need_docs_tools(html=True)
    out = tmp_path_factory.mktemp("html")
    result = subprocess.run(  # noqa: S603 (our interpreter, our docs)
        [*SPHINX_BUILD, "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.slow
def test_every_public_name_has_an_entry(built_site: Path) -> None:
    """The API reference documents every exported name, and nothing from a private module."""
    documented = inventory(built_site / "objects.inv")
    assert public_names() <= set(documented)
    rendered = set(documented.values())
    private = {anchor for anchor in rendered if any(p.startswith("_") for p in anchor.split("."))}
    assert private == {"flask_cf_access.__version__"}
    modules = {anchor for anchor in rendered if anchor.startswith("module-")}
    assert modules == {
        "module-flask_cf_access",
        "module-flask_cf_access.onward",
        "module-flask_cf_access.testing",
        "module-flask_cf_access.pytest_plugin",
    }


def test_reason_status_and_description_are_documented(built_site: Path) -> None:
    """The API reference has entries for what each Reason carries."""
    documented = inventory(built_site / "objects.inv")
    assert {"flask_cf_access.Reason.status", "flask_cf_access.Reason.description"} <= set(
        documented
    )


@pytest.mark.slow
def test_diagram_is_drawn_from_its_source(built_site: Path) -> None:
    """The request-flow page holds the SVG Graphviz drew from docs/diagrams/request-flow.dot."""
    page = (built_site / "flow.html").read_text()
    svgs = list((built_site / "_images").glob("graphviz-*.svg"))
    assert len(svgs) == 1
    assert svgs[0].name in page
    drawing = html.unescape(svgs[0].read_text())
    assert "get-identity" in drawing
    assert "/cdn-cgi/access/certs" in drawing


@pytest.mark.slow
def test_doctests_pass(tmp_path: Path) -> None:
    """Every doctest in the pages passes."""
    need_docs_tools(html=False)
    result = subprocess.run(  # noqa: S603 (our interpreter, our docs)
        [*SPHINX_BUILD, "doctest", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures in tests" in (tmp_path / "output.txt").read_text()
