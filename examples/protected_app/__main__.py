"""Run the example app: ``python -m examples.protected_app [--port 5000]``.

With no ``CF_ACCESS_TEAM_DOMAIN`` in the environment, a local Access stand-in
(:class:`~flask_cf_access.testing.AccessIssuer` served on 127.0.0.1) is
started first and the app trusts it; ``curl`` commands with ready tokens are
printed, with the status each gets, and the settings for ``flask cf-access``
in another shell. With ``CF_ACCESS_TEAM_DOMAIN`` and ``CF_ACCESS_AUDIENCE``
set, the same app trusts that real team and no stand-in is started.

``--port 0`` (or ``PORT=0``) picks a free port; the line
``Example app ready on http://…/`` says which, once the app is serving.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask

from flask_cf_access.testing import AccessIssuer, StandInServer

from .._runner import Try, run_example, stand_in_guide
from . import create_app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the example until Ctrl+C (or SIGTERM); the exit status."""
    return run_example(
        argv,
        prog="python -m examples.protected_app",
        description="Run the example app, against a local Access stand-in unless "
        "CF_ACCESS_TEAM_DOMAIN is set.",
        default_port=5000,
        make_app=_make_app,
        guide=_stand_in_guide,
        real_team_hint="(`flask --app examples.protected_app cf-access check` checks the set-up)",
        minting=True,
        sign_in=True,
    )


def _make_app(stand_in_settings: Mapping[str, Any] | None) -> Flask:
    """The app; from the environment alone when a real team is configured there.

    Against the stand-in, a browser without a token is sent to its sign-in page.
    """
    if stand_in_settings is None:
        return create_app({})
    return create_app({**stand_in_settings, "CF_ACCESS_UNAUTHORIZED": "redirect"})


def _stand_in_guide(url: str, stand_in: StandInServer) -> str:
    """What to paste: curl commands with the status each gets, and the CLI settings."""
    return stand_in_guide(url, stand_in, _tries(stand_in.issuer), _command_line_notes(stand_in))


def _tries(issuer: AccessIssuer) -> list[Try]:
    """A request for each kind of caller, with the status it gets."""
    return [
        Try(
            "Ada, in Admins, opens the admin area",
            200,
            "/admin/",
            issuer.user_token("ada@example.com", ["Admins", "Staff"]),
        ),
        Try(
            "Bob, not in Admins, opens the admin area",
            403,
            "/admin/",
            issuer.user_token("bob@example.com", ["Staff"]),
        ),
        Try(
            "A service token calls the API",
            200,
            "/api/whoami",
            issuer.service_token("example-client.access"),
        ),
        Try("No token at all", 401, "/"),
    ]


def _command_line_notes(stand_in: StandInServer) -> list[str]:
    """The settings for ``flask cf-access`` in another shell, and what to run."""
    exports = " ".join(
        f"{name}={shlex.quote(value)}" for name, value in sorted(stand_in.environ().items())
    )
    return [
        "For `flask cf-access` in another shell, from this directory:",
        f"  export {exports}",
        "  flask --app examples.protected_app cf-access check",
        "  flask --app examples.protected_app cf-access routes --strict",
        "",
    ]


if __name__ == "__main__":
    sys.exit(main())
