"""What the runners of the examples share: ``python -m examples.protected_app`` and
``python -m examples.plain_wsgi_app`` behave alike.

:func:`run_example` parses ``--host`` and ``--port`` (``--port 0`` picks a free
port), starts a local Access stand-in unless ``CF_ACCESS_TEAM_DOMAIN`` is set,
prints ``curl`` commands with ready tokens and the status each gets, prints
the line ``Example app ready on http://…/`` once the app is serving, and
returns 0 when stopped by Ctrl+C (SIGINT) or SIGTERM, with no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from werkzeug.serving import make_server

from flask_cf_access import ConfigurationError
from flask_cf_access.testing import AccessIssuer, EdgeApplication, LocalEdge, StandInServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The stand-in's team domain; ``.invalid`` so it can never be a real team.
STAND_IN_TEAM = "local-stand-in.invalid"
#: The header Cloudflare Access sends the token in.
TOKEN_HEADER = "Cf-Access-Jwt-Assertion"
#: The exit status for a bad ``CF_ACCESS_*`` setting, as argparse uses for bad arguments.
CONFIGURATION_ERROR = 2


@dataclass(frozen=True)
class Try:
    """A request to paste into another shell, and the status it gets."""

    #: What it shows, e.g. "Bob, not in Admins, opens the admin area".
    title: str
    #: The status the app answers it with.
    status: int
    #: The path asked for, from the root.
    path: str
    #: The token sent in the ``Cf-Access-Jwt-Assertion`` header; ``None`` sends none.
    token: str | None = None
    #: ``curl`` options before the URL, e.g. ``("--path-as-is",)``.
    curl_options: tuple[str, ...] = ()
    #: More request headers (name, value), e.g. a browser's ``Cookie``.
    headers: tuple[tuple[str, str], ...] = ()

    def command(self, url: str) -> str:
        """The ``curl`` command line asking ``url`` (no trailing slash) for it."""
        argv = ["curl", "-i", *self.curl_options, url + self.path]
        if self.token is not None:
            argv += ["-H", f"{TOKEN_HEADER}: {self.token}"]
        for name, value in self.headers:
            argv += ["-H", f"{name}: {value}"]
        return shlex.join(argv)


def run_example(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    default_port: int,
    make_app: Callable[[Mapping[str, Any] | None], WSGIApplication],
    guide: Callable[[str, StandInServer], str],
    real_team_hint: str = "",
    minting: bool = False,
    sign_in: bool = False,
    edge: Callable[[AccessIssuer], Sequence[EdgeApplication]] | None = None,
    edge_guide: Callable[[str, StandInServer], str] | None = None,
) -> int:
    """Serve an example app until Ctrl+C or SIGTERM; the exit status.

    :param argv: the command line arguments (``None``: ``sys.argv[1:]``).
    :param prog: the command, for ``--help``.
    :param description: what it does, for ``--help``.
    :param default_port: the port when neither ``--port`` nor ``PORT`` says one.
    :param make_app: the app, given the stand-in's settings, or ``None`` for
        the real team configured in the environment.
    :param guide: what to print, given the app's URL and the stand-in it
        trusts: usually :func:`stand_in_guide` with the example's tries.
    :param real_team_hint: said after "requests must come through Cloudflare
        with a token" when a real team is configured.
    :param minting: let the stand-in mint tokens for ``flask cf-access mint``.
    :param sign_in: let the stand-in serve its sign-in page, for a browser.
    :param edge: the Access applications of a local Access edge in front of the
        app (``--edge``): browser → edge on the port asked for → app on
        another; none without it.
    :param edge_guide: what to print then, given the edge's URL and the stand-in.
    """
    args = _arguments(
        argv,
        prog=prog,
        description=description,
        default_port=default_port,
        edge=edge is not None,
    )
    # Ctrl+C or SIGTERM, at any moment, stops the example with status 0; the
    # ExitStack closes what was started. The handlers are installed, not
    # inherited: a shell starts a background job with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt), contextlib.ExitStack() as stack:
        stand_in: StandInServer | None = None
        if not os.environ.get("CF_ACCESS_TEAM_DOMAIN"):
            issuer = AccessIssuer(team_domain=STAND_IN_TEAM)
            stand_in = stack.enter_context(issuer.serve(minting=minting, sign_in=sign_in))
        try:
            app = make_app(None if stand_in is None else stand_in.settings())
        except ConfigurationError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return CONFIGURATION_ERROR
        if getattr(args, "edge", False):
            if stand_in is None or edge is None or edge_guide is None:
                print("Error: --edge runs against the local stand-in only.", file=sys.stderr)
                return CONFIGURATION_ERROR
            return _behind_edge(stack, app, stand_in, edge, edge_guide, args.port)
        server = make_server(args.host, args.port, app, threaded=True)
        stack.callback(server.server_close)
        host = "127.0.0.1" if args.host in ("", "0.0.0.0") else args.host  # noqa: S104
        url = f"http://{host}:{server.server_port}"
        if stand_in is not None:
            print(guide(url, stand_in))
        else:
            team = os.environ["CF_ACCESS_TEAM_DOMAIN"]
            hint = f" {real_team_hint}" if real_team_hint else ""
            print(
                f"Trusting the Access team {team}: requests must come through Cloudflare"
                f" with a token{hint}."
            )
        print(f"Example app ready on {url}/ (Ctrl+C to stop)", flush=True)
        server.serve_forever()  # returns on KeyboardInterrupt
    return 0


def _behind_edge(
    stack: contextlib.ExitStack[Any],
    app: WSGIApplication,
    stand_in: StandInServer,
    edge: Callable[[AccessIssuer], Sequence[EdgeApplication]],
    edge_guide: Callable[[str, StandInServer], str],
    port: int,
) -> int:
    """Serve ``app`` on a free port of 127.0.0.1 behind a local Access edge on ``port``,
    until Ctrl+C or SIGTERM: browser → edge → app, as in a deployment."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    stack.callback(server.server_close)
    origin = f"http://127.0.0.1:{server.server_port}"
    front = stack.enter_context(
        LocalEdge(
            stand_in.issuer, origin, edge(stand_in.issuer), port=port, login_origin=stand_in.url
        )
    )
    print(edge_guide(front.url, stand_in))
    print(f"The app itself is on {origin}/; Access (the local edge) in front of it.")
    print(f"Example app ready on {front.url}/ (Ctrl+C to stop)", flush=True)
    server.serve_forever()  # returns on KeyboardInterrupt
    return 0


def stand_in_guide(
    url: str, stand_in: StandInServer, tries: Sequence[Try], notes: Sequence[str] = ()
) -> str:
    """What to paste: a ``curl`` command per try, under ``# <title>: expect <status>``.

    ``url`` is the app's, with no trailing slash; ``notes`` are more lines to
    print after the commands.
    """
    lines = [
        "No CF_ACCESS_TEAM_DOMAIN: trusting a local Access stand-in"
        f" (team {stand_in.issuer.team_domain}),",
        f"its keys served at {stand_in.certs_url}.",
        "",
    ]
    if stand_in.sign_in:
        lines += [
            f"Open {url}/ in a browser to sign in on the stand-in's page"
            " (pick any e-mail and groups).",
            "",
        ]
    lines += [
        f"Try it from another shell (tokens valid for {_hours(stand_in.issuer)} hours):",
    ]
    for attempt in tries:
        lines += ["", f"# {attempt.title}: expect {attempt.status}", attempt.command(url)]
    return "\n".join([*lines, "", *notes])


def _arguments(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    default_port: int,
    edge: bool = False,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("PORT", str(default_port)),  # argparse applies type=int
        help=f"default: $PORT or {default_port}; 0 picks a free port",
    )
    if edge:
        parser.add_argument(
            "--edge",
            action="store_true",
            help="put a local Access edge (on 127.0.0.1, the port above) in front of the"
            " app, as Access is in a deployment: browser -> edge -> app",
        )
    return parser.parse_args(argv)


def _hours(issuer: AccessIssuer) -> int:
    return issuer.token_lifetime // 3600


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT and SIGTERM stop the example as Ctrl+C does."""
    raise KeyboardInterrupt
