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

import argparse
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from werkzeug.serving import make_server

from flask_cf_access import ConfigurationError
from flask_cf_access.testing import AccessIssuer, StandInServer

from . import create_app, settings_from_environ

#: The stand-in team's host name; ``.invalid`` so it can never be a real team.
STAND_IN_TEAM = "local-stand-in.invalid"


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the example until Ctrl+C (or SIGTERM); the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.protected_app",
        description="Run the example app, against a local Access stand-in unless "
        "CF_ACCESS_TEAM_DOMAIN is set.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "5000")),
        help="default: $PORT or 5000; 0 picks a free port",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)

    with contextlib.ExitStack() as stack:
        stand_in: StandInServer | None = None
        if settings_from_environ(os.environ).get("CF_ACCESS_TEAM_DOMAIN"):
            config = {}
        else:
            issuer = AccessIssuer(team_domain=STAND_IN_TEAM)
            # The sign-in page sets a cookie for 127.0.0.1: served only there.
            stand_in = stack.enter_context(issuer.serve(minting=True, sign_in=True))
            config = stand_in.settings(CF_ACCESS_UNAUTHORIZED="redirect")
        try:
            app = create_app(config)
        except ConfigurationError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        server = make_server(args.host, args.port, app, threaded=True)
        stack.callback(server.server_close)
        host = "127.0.0.1" if args.host in ("", "0.0.0.0") else args.host  # noqa: S104
        url = f"http://{host}:{server.server_port}"
        if stand_in is not None:
            print(_stand_in_guide(url, stand_in))
        else:
            print(
                f"Trusting the Access team {app.config['CF_ACCESS_TEAM_DOMAIN']}: requests must"
                " come through Cloudflare with a token (`flask --app examples.protected_app"
                " cf-access check` checks the set-up)."
            )
        with contextlib.suppress(KeyboardInterrupt):  # entered before anyone is told to stop us
            print(f"Example app ready on {url}/ (Ctrl+C to stop)", flush=True)
            server.serve_forever()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stand_in_guide(url: str, stand_in: StandInServer) -> str:
    """What to paste: curl commands with the status each gets, and the CLI settings."""
    issuer = stand_in.issuer
    header = "Cf-Access-Jwt-Assertion: "
    tries = [
        (
            "Ada, in Admins, opens the admin area",
            200,
            "/admin/",
            issuer.user_token("ada@example.com", ["Admins", "Staff"]),
        ),
        (
            "Bob, not in Admins, opens the admin area",
            403,
            "/admin/",
            issuer.user_token("bob@example.com", ["Staff"]),
        ),
        (
            "A service token calls the API",
            200,
            "/api/whoami",
            issuer.service_token("example-client.access"),
        ),
        ("No token at all", 401, "/", None),
    ]
    lines = [
        f"No CF_ACCESS_TEAM_DOMAIN: trusting a local Access stand-in (team {issuer.team_domain}),",
        f"its keys served at {stand_in.certs_url}.",
        "",
        f"Open {url}/ in a browser to sign in on the stand-in's page (pick any e-mail and groups).",
        "",
        "Try it from another shell (tokens valid for 24 hours):",
    ]
    for title, status, path, token in tries:
        command = ["curl", "-i", url + path]
        if token is not None:
            command += ["-H", header + token]
        lines += ["", f"# {title}: expect {status}", shlex.join(command)]
    exports = " ".join(
        f"{name}={shlex.quote(value)}" for name, value in sorted(stand_in.environ().items())
    )
    lines += [
        "",
        "For `flask cf-access` in another shell, from this directory:",
        f"  export {exports}",
        "  flask --app examples.protected_app cf-access check",
        "  flask --app examples.protected_app cf-access routes --strict",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
