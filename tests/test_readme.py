"""The README's quick-start code protects a view, as a new user would run it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import responses

from flask_cf_access import Reason
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    assert_routes_protected,
    capture_access,
)

from .support import bearer

README = (Path(__file__).parents[1] / "README.md").read_text()


def quick_start_code() -> str:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the Quick start section has a python code block"
    return match.group(1)


def test_quick_start_protects_a_view() -> None:
    """The quick-start app refuses a request without a token and admits a team token."""
    code = quick_start_code()
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    domain = re.search(r'CF_ACCESS_TEAM_DOMAIN="([^"]+)"', code)
    audience = re.search(r'CF_ACCESS_AUDIENCE="([^"]+)"', code)
    assert domain
    assert audience
    team = AccessIssuer(domain.group(1), audience.group(1))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(team.certs_url, json=team.certs())
        answer = {"email": "ada@example.com", "groups": [{"id": "1", "name": "Admins"}]}
        mock.get(team.identity_url, json=answer)
        client = namespace["create_app"]().test_client()
        with capture_access() as captured:
            assert client.get("/").status_code == 401
        assert captured.reasons == [Reason.MISSING_TOKEN]
        token = team.user_token("ada@example.com")
        response = client.get("/", headers=bearer(token))
        assert response.status_code == 200
        assert "ada@example.com" in response.get_data(as_text=True)
        assert client.get("/admin", headers=bearer(token)).status_code == 200
        stranger = AccessIssuer(domain.group(1), audience.group(1)).user_token("eve@example.com")
        with capture_access() as captured:
            assert client.get("/", headers=bearer(stranger)).status_code == 401
        assert captured.reasons == [Reason.UNKNOWN_KID]


def test_readme_links_point_at_files_in_the_repository() -> None:
    """Every relative link of the README (the docs pages, the changes) names an existing file."""
    root = Path(__file__).parents[1]
    links = re.findall(r"\]\(([^)]+)\)", README)
    relative = [link for link in links if "://" not in link]
    assert "docs/roles.rst" in relative
    assert [link for link in relative if not (root / link).is_file()] == []


def rules_code() -> str:
    section = README.split("## Roles, service tokens and deny by default", 1)[1]
    match = re.search(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert match, "the roles section has a python code block"
    return match.group(1)


RULES_CI_DEPLOYER = "4b4b2bde1e7c48d3a8f0c8f3e2b76a11.access"


def test_roles_service_tokens_and_deny_by_default_as_the_readme_shows() -> None:
    """The README's rules app: public health, token everywhere else, roles from groups and
    from a known service token, the e-mail rule, unknown service tokens refused."""
    namespace: dict[str, Any] = {"__name__": "rules"}
    exec(compile(rules_code(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["CI_DEPLOYER"] == RULES_CI_DEPLOYER
    team = AccessIssuer()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        team.register(mock)
        app = namespace["create_app"](team.settings())
        client = AccessClient.for_app(app, team)
        captured = check_rules_app(client)
    assert_routes_protected(app)
    assert captured.reasons == [
        Reason.MISSING_TOKEN,
        Reason.NO_ROLE,
        Reason.EMAIL_NOT_ALLOWED,
        Reason.UNKNOWN_SERVICE_TOKEN,
        Reason.NO_ROLE,
    ]


def check_rules_app(client: AccessClient) -> AccessCapture:
    """Each kind of caller against the rules app; the decisions captured."""
    with capture_access() as captured:
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 401
        assert client.get("/", as_user="ada@acme.com").status_code == 200
        assert (
            client.get("/tickets", as_user="ada@acme.com", groups=["Helpdesk"]).status_code == 200
        )
        assert client.get("/tickets", as_user="bob@acme.com", groups=["Staff"]).status_code == 403
        assert client.get("/", as_user="eve@acme.com.evil.example").status_code == 403
        deployed = client.post("/deploy", as_service_token=RULES_CI_DEPLOYER)
        assert client.post("/deploy", as_service_token="0123abcd.access").status_code == 403
        assert client.post("/deploy", as_user="ada@acme.com", groups=["Admins"]).status_code == 403
        assert client.get("/nowhere", as_user="ada@acme.com").status_code == 404
    assert deployed.status_code == 200
    assert deployed.get_data(as_text=True) == "deployed by ci-deployer"
    return captured


def test_readme_python_blocks_are_all_executed() -> None:
    """The Python blocks are the quick start's and the rules app, which the tests above run."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert blocks == [quick_start_code(), rules_code()]


def how_it_works_rows() -> list[list[str]]:
    """The cells of each row of the "How it works" table, header and rule left out."""
    section = README.split("## How it works", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_how_it_works_names_every_internal_module_as_it_is() -> None:
    """The table names each internal module of the package, by its path, one per step:
    those of the layers' subpackages and the private ones at the top, and only those."""
    package = Path(__file__).parents[1] / "flask_cf_access"
    internal = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py" and path.relative_to(package).parts[0].startswith("_")
    }
    modules = [row[1] for row in how_it_works_rows() if row[1] != "`testing/`"]
    assert all(re.fullmatch(r"`[a-z_/]+\.py`", module) for module in modules), modules
    assert sorted(module.strip("`") for module in modules) == sorted(internal)


def test_how_it_works_names_every_testing_kit_module_as_it_is() -> None:
    """The table's testing kit row lists each private module of the kit, and only those."""
    section = README.split("## How it works", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`testing\.(_[a-z_]+)`", section))
    kit = Path(__file__).parents[1] / "flask_cf_access" / "testing"
    private = {path.stem for path in kit.glob("_*.py") if path.stem != "__init__"}
    assert named == private
