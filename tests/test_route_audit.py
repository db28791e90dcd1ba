"""``flask cf-access routes`` and assert_routes_protected: what each endpoint requires."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Blueprint, Flask

from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    Reason,
    access_guard,
    require,
    require_access,
    require_check,
    require_group,
    require_role,
    require_service_token,
)
from flask_cf_access.cli import cli
from flask_cf_access.testing import AccessCapture, AccessIssuer, assert_routes_protected, run_inline

cf_access = CloudflareAccess(background=run_inline)


def in_office(identity: AccessIdentity) -> bool:
    """A predicate, named in the audit."""
    return True


def make_app(
    tmp_path: Path, *, protect_all: bool = False, misordered: bool = True, **config: Any
) -> Flask:
    """An app with a public, a protected, an unprotected and (optionally) a mis-ordered view."""
    (tmp_path / "static").mkdir(exist_ok=True)
    app = Flask("audited", static_folder=str(tmp_path / "static"))
    app.config.update(
        CF_ACCESS_TEAM_DOMAIN="acme.cloudflareaccess.com",
        CF_ACCESS_AUDIENCE="aud",
        CF_ACCESS_LOAD_KEYS_ON_INIT=False,
        CF_ACCESS_PROTECT_ALL=protect_all,
        **config,
    )
    cf_access.init_app(app)

    @app.get("/health")
    @cf_access.public
    def health() -> str:
        return "ok"

    @app.route("/admin", methods=["GET", "POST"])
    @require_role("admin", "ops", match="all")
    @require_check(in_office)
    def admin() -> str:
        return "admin"

    @app.get("/deploy")
    @require_service_token("ci.access")
    def deploy() -> str:
        return "deploy"

    @app.get("/staff")
    @require_group("Staff")
    def staff() -> str:
        return "staff"

    @app.get("/open")
    def open_view() -> str:
        return "open"

    if misordered:

        @require_access  # above the route: the route registers the bare function
        @app.get("/reports")
        def reports() -> str:
            return "reports"

    api = Blueprint("api", __name__)
    api.before_request(access_guard(require(roles=["api"])))
    api.add_url_rule("/items", "items", lambda: "items")
    app.register_blueprint(api, url_prefix="/api")
    return app


def run(app: Flask, *args: str) -> Result:
    """``flask cf-access routes ARGS`` for ``app``."""
    return app.test_cli_runner().invoke(cli, ["routes", *args])


def line_of(output: str, rule: str) -> str:
    """The printed line of ``rule``."""
    (line,) = [line for line in output.splitlines() if line.split("  ")[0].strip() == rule]
    return line


def test_lists_every_rule_with_its_requirement(tmp_path: Path) -> None:
    """Each rule is listed with its methods, endpoint and requirement in words."""
    result = run(make_app(tmp_path))
    output = result.output
    assert result.exit_code == 0, output
    assert line_of(output, "RULE").split()[:4] == ["RULE", "METHODS", "ENDPOINT", "REQUIRES"]
    assert line_of(output, "/health").split()[-1] == "public"
    admin = line_of(output, "/admin")
    assert "GET,POST" in admin
    assert admin.endswith("token; roles: all of admin, ops; check: in_office")
    assert line_of(output, "/deploy").endswith("token; service tokens only: ci.access")
    assert line_of(output, "/staff").endswith("token; groups: any of Staff")
    assert line_of(output, "/api/items").endswith("token; roles: any of api")
    assert line_of(output, "/open").endswith("nothing")
    assert line_of(output, "/static/<path:filename>").endswith("nothing")
    assert "Deny by default (CF_ACCESS_PROTECT_ALL): off." in output


def test_flags_the_misordered_decorator(tmp_path: Path) -> None:
    """A decorator above @app.route is reported: declared but not applied."""
    output = run(make_app(tmp_path)).output
    reports = line_of(output, "/reports")
    assert "declared but NOT APPLIED: token" in reports
    assert "above @app.route" in reports
    assert "REQUIREMENT NOT APPLIED: /reports (reports)" in output
    assert "UNPROTECTED: /open (open_view)" in output
    assert "UNPROTECTED: /static/<path:filename> (static)" in output


def test_misordered_view_is_really_unprotected(tmp_path: Path) -> None:
    """What the audit flags is true: the mis-ordered view answers without a token."""
    app = make_app(tmp_path)
    assert app.test_client().get("/reports").get_data(as_text=True) == "reports"


def test_strict_fails_on_problems(tmp_path: Path) -> None:
    """--strict exits 1 while anything is unprotected or not applied."""
    assert run(make_app(tmp_path), "--strict").exit_code == 1


def test_strict_passes_with_deny_by_default(tmp_path: Path) -> None:
    """With deny by default, static public and no mis-ordered view, --strict exits 0."""
    app = make_app(
        tmp_path,
        protect_all=True,
        misordered=False,
        CF_ACCESS_PUBLIC_ENDPOINTS=["static"],
        CF_ACCESS_ROLES={"admin": ["Admins"], "ops": ["Ops"], "api": ["Api"]},
    )
    result = run(app, "--strict")
    assert result.exit_code == 0, result.output
    assert line_of(result.output, "/open").endswith("token (deny by default)")
    assert line_of(result.output, "/static/<path:filename>").endswith("public")
    assert "Every endpoint is protected or explicitly public." in result.output


def test_strict_flags_misordered_even_with_deny_by_default(tmp_path: Path) -> None:
    """Deny by default asks the mis-ordered view for a token, but its requirement is still lost."""
    app = make_app(tmp_path, protect_all=True, CF_ACCESS_PUBLIC_ENDPOINTS=["static"])
    result = run(app, "--strict")
    assert result.exit_code == 1
    reports = line_of(result.output, "/reports")
    assert reports.split("  ")[-1].startswith("token (deny by default); declared but NOT APPLIED")


def test_unknown_public_endpoint_warned(tmp_path: Path) -> None:
    """A name in CF_ACCESS_PUBLIC_ENDPOINTS that is no endpoint is pointed out."""
    app = make_app(tmp_path, CF_ACCESS_PUBLIC_ENDPOINTS=["helth"])
    assert "CF_ACCESS_PUBLIC_ENDPOINTS names 'helth', which is no endpoint" in run(app).output


def test_helper_raises_naming_each_problem(tmp_path: Path) -> None:
    """assert_routes_protected fails a test, naming each endpoint at fault."""
    with pytest.raises(AssertionError) as raised:
        assert_routes_protected(make_app(tmp_path))
    message = str(raised.value)
    assert "/reports (reports)" in message
    assert "/open (open_view)" in message
    assert "/static/<path:filename> (static)" in message
    assert "/admin" not in message
    assert "/health" not in message


def test_helper_passes_a_protected_app(tmp_path: Path) -> None:
    """assert_routes_protected returns the audit when nothing is at fault."""
    app = make_app(
        tmp_path, protect_all=True, misordered=False, CF_ACCESS_PUBLIC_ENDPOINTS=["static"]
    )
    audits = assert_routes_protected(app)
    statuses = {audit.endpoint: audit.status for audit in audits}
    assert statuses["health"] == "public"
    assert statuses["open_view"] == "protected"
    assert statuses["api.items"] == "protected"


def test_audit_without_init_app(tmp_path: Path) -> None:
    """An app without the extension lists every view as unprotected."""
    app = Flask("bare")
    app.add_url_rule("/", "home", lambda: "")
    with pytest.raises(AssertionError, match="/ \\(home\\)"):
        assert_routes_protected(app)


def test_the_example_app_passes_strict(
    cf_access_issuer: AccessIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example app protects every endpoint or marks it public."""
    from examples.protected_app import create_app

    for name in [name for name in os.environ if name.startswith("CF_ACCESS_")]:
        monkeypatch.delenv(name)
    app = create_app({**cf_access_issuer.settings(), "CF_ACCESS_LOAD_KEYS_ON_INIT": False})
    result = run(app, "--strict")
    assert result.exit_code == 0, result.output
    assert_routes_protected(app)


def test_misordered_view_needs_a_token_under_deny_by_default(
    tmp_path: Path, captured: AccessCapture
) -> None:
    """Under deny by default the mis-ordered view asks for a token, at least."""
    client = make_app(tmp_path, protect_all=True).test_client()
    assert client.get("/reports").status_code == 401
    assert captured.last.reason is Reason.MISSING_TOKEN


def test_nested_blueprint_guard_in_the_audit(tmp_path: Path) -> None:
    """A parent blueprint's access_guard shows on its nested blueprints' endpoints."""
    app = make_app(tmp_path, misordered=False)
    parent = Blueprint("parent", __name__)
    parent.before_request(access_guard(require(groups=["Ops"])))
    child = Blueprint("child", __name__)
    child.add_url_rule("/", "index", lambda: "child")
    parent.register_blueprint(child, url_prefix="/child")
    app.register_blueprint(parent, url_prefix="/parent")
    assert line_of(run(app).output, "/parent/child/").endswith("token; groups: any of Ops")


@pytest.mark.parametrize(
    "roles",
    [{}, {"admin": ["Admins"], "ops": ["Ops"]}, {"ops": ["Ops"], "api": ["Api"]}],
)
def test_strict_fails_on_a_role_granted_by_nothing(
    tmp_path: Path, roles: dict[str, list[str]]
) -> None:
    """--strict exits 1 while a required role is granted by nothing (every request 403s)."""
    app = make_app(
        tmp_path,
        protect_all=True,
        misordered=False,
        CF_ACCESS_PUBLIC_ENDPOINTS=["static"],
        CF_ACCESS_ROLES=roles,
    )
    assert run(app).exit_code == 0
    result = run(app, "--strict")
    assert result.exit_code == 1
    missing = sorted({"admin", "ops", "api"} - set(roles))
    for role in missing:
        assert f"Warning: the role {role!r} is required but granted by nothing" in result.output


def test_roles_granted_by_nothing_warned(tmp_path: Path) -> None:
    """A required role that no group mapping or service token grants is pointed out."""
    output = run(make_app(tmp_path)).output
    for role in ("admin", "api", "ops"):
        assert f"Warning: the role {role!r} is required but granted by nothing" in output
    app = make_app(
        tmp_path,
        CF_ACCESS_ROLES={"admin": ["Admins"], "ops": ["Ops"]},
        CF_ACCESS_SERVICE_TOKENS={"ci.access": {"roles": ["api"]}},
    )
    assert "granted by nothing" not in run(app).output
