"""The README's quick-start code protects a view, as a new user would run it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import responses

from flask_cf_access import Reason
from flask_cf_access.testing import AccessIssuer, capture_access

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


def test_readme_python_blocks_are_all_executed() -> None:
    """The only Python block is the quick start's, which the test above runs."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert blocks == [quick_start_code()]


def test_how_it_works_names_every_internal_module_as_it_is() -> None:
    """The layout table lists each private module of the package, and only modules that exist."""
    section = README.split("## How it works", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(_[a-z_]+)\.py`", section))
    package = Path(__file__).parents[1] / "flask_cf_access"
    private = {path.stem for path in package.glob("_*.py") if path.stem != "__init__"}
    assert named == private
