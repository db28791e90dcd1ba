"""Run the example app: ``python -m examples.protected_app [--port 5000]``.

With no ``CF_ACCESS_TEAM_DOMAIN`` in the environment, a local Access stand-in
(:class:`~flask_cf_access.testing.AccessIssuer` served on 127.0.0.1) is
started first and the app trusts it; ``curl`` commands with ready tokens are
printed, with the status each gets, and the settings for ``flask cf-access``
in another shell. With ``CF_ACCESS_TEAM_DOMAIN`` and ``CF_ACCESS_AUDIENCE``
set, the same app trusts that real team and no stand-in is started.

``--port 0`` (or ``PORT=0``) picks a free port; the line
``Example app ready on http://…/`` says which, once the app is serving.

``--edge`` puts a local Access edge (:class:`~flask_cf_access.testing.LocalEdge`)
on that port in front of the app, as Access is in a deployment: browser →
edge → app. The edge signs a browser in through the stand-in's page, takes a
service token's id and secret, and strips any ``Cf-Access-*`` header a client
forges.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask

from flask_cf_access.testing import AccessIssuer, EdgeApplication, StandInServer

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
        edge=_edge_applications,
        edge_guide=_edge_guide,
    )


#: The service token the edge knows (a Service Auth policy): its id and secret.
EDGE_CLIENT_ID, EDGE_CLIENT_SECRET = "example-client.access", "example-secret-" + "0" * 17


def _edge_applications(issuer: AccessIssuer) -> list[EdgeApplication]:
    """One Access application over the whole app: anyone may sign in, and one service token."""
    return [
        EdgeApplication(
            "example",
            issuer.audience,
            everyone=True,
            service_tokens={EDGE_CLIENT_ID: EDGE_CLIENT_SECRET},
        )
    ]


def _edge_guide(url: str, stand_in: StandInServer) -> str:
    """What to paste when the edge is in front: cookies and service token credentials,
    as a browser and a machine send them to Access."""
    issuer = stand_in.issuer

    def cookie(token: str) -> tuple[tuple[str, str], ...]:
        return (("Cookie", f"CF_Authorization={token}"),)

    ada = issuer.user_token("ada@example.com", ["Admins", "Staff"])
    bob = issuer.user_token("bob@example.com", ["Staff"])
    tries = [
        Try("Ada's session opens the admin area", 200, "/admin/", headers=cookie(ada)),
        Try("Bob's session, not in Admins, the admin area", 403, "/admin/", headers=cookie(bob)),
        Try(
            "A service token's id and secret, exchanged by the edge",
            200,
            "/api/whoami",
            headers=(
                ("CF-Access-Client-Id", EDGE_CLIENT_ID),
                ("CF-Access-Client-Secret", EDGE_CLIENT_SECRET),
            ),
        ),
        Try("No session: the edge sends you to sign in", 302, "/"),
        Try(
            "A forged Cf-Access-Jwt-Assertion is stripped by the edge",
            302,
            "/admin/",
            headers=(("Cf-Access-Jwt-Assertion", ada),),
        ),
    ]
    return stand_in_guide(url, stand_in, tries, _command_line_notes(stand_in))


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
