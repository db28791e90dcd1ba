"""The checker's parts are built in one place, from the settings, and shared as configured."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import requests
from cachelib import SimpleCache

import flask_cf_access
from flask_cf_access import AccessSettings
from flask_cf_access._core.assembly import build_checker
from flask_cf_access.testing import AccessIssuer, run_inline

from .support import FrozenClock

PACKAGE_DIR = Path(flask_cf_access.__file__).parent

#: What the checker runs requests through, and the names that make them.
PART_MAKERS = frozenset(
    {
        "KeyStore",
        "IdentityEndpoint",
        "TokenVerifier",
        "ClaimsPolicy",
        "AccessPolicy",
        "ApplicationMap",
        "SharedCache",
        "SimpleCache",
        "fork_safe_session",
    }
)


def called_names(module: str) -> set[str]:
    """The plain names ``module`` of the package calls (``f(...)``, not ``x.f(...)``)."""
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text(encoding="utf-8"))
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def test_the_checker_builds_none_of_its_parts() -> None:
    """_core/checker.py runs requests through its parts; _core/assembly.py alone makes them."""
    assert called_names("_core/checker") & PART_MAKERS == set()
    assert called_names("_core/assembly") >= PART_MAKERS


class RefusingAdapter(requests.adapters.BaseAdapter):
    """An adapter that answers no call, counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise requests.ConnectionError("no network here")

    def close(self) -> None:
        pass


def test_checkers_built_from_one_settings_share_its_cache(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """Keys one built checker loaded reach another through ``settings.cache``, with no call."""
    settings = AccessSettings.from_mapping(
        issuer.settings(CF_ACCESS_CACHE=SimpleCache(), CF_ACCESS_LOAD_KEYS_ON_INIT=False)
    )
    build_checker(
        settings, session=issuer.session(), clock=clock, background=run_inline
    ).keys.preload()
    offline = requests.Session()
    adapter = RefusingAdapter()
    offline.mount("https://", adapter)
    offline.mount("http://", adapter)
    other = build_checker(settings, session=offline, clock=clock, background=run_inline)
    token = issuer.user_token("ada@example.com")
    assert other.verify_token(token).email == "ada@example.com"
    assert adapter.calls == 0
