"""A plain WSGI application, no Flask, behind Cloudflare Access.

``/healthz`` is open, ``/admin`` is for the ``Admins`` group, ``/api`` for
service tokens only (a :func:`~flask_cf_access.require` rule), everything else
for any verified caller. Run it with no team at all::

    python -m examples.plain_wsgi_app [--port 8000]

It starts a local Access stand-in (``--port 0`` picks a free port for the
app), trusts it, and prints ``curl`` commands with ready tokens, each with the
status it gets, then ``Example app ready on http://…/``. Ctrl+C stops it.

Behind a real Access team, configured from the environment, no stand-in is
started::

    export CF_ACCESS_TEAM_DOMAIN=acme.cloudflareaccess.com
    export CF_ACCESS_AUDIENCE=4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2
    python -m examples.plain_wsgi_app
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask_cf_access import CloudflareAccessMiddleware, require
from flask_cf_access.testing import AccessIssuer, StandInServer

from ._runner import Try, run_example, stand_in_guide

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def environ_text(environ: WSGIEnvironment, key: str) -> str:
    """An environ value as text: WSGI passes UTF-8 bytes in a latin-1 string."""
    return str(environ.get(key, "")).encode("latin-1").decode("utf-8")


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The application: it knows nothing of tokens, only of who is calling."""
    if environ.get("PATH_INFO") == "/healthz":
        body = b"ok"
    else:
        groups = environ_text(environ, "HTTP_X_AUTH_GROUPS")
        body = json.dumps(
            {
                "user": environ_text(environ, "REMOTE_USER"),
                "email": environ_text(environ, "HTTP_X_AUTH_EMAIL"),
                "groups": groups.split(",") if groups else [],
                "department": environ_text(environ, "HTTP_X_AUTH_DEPARTMENT"),
            }
        ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def make_app(config: Mapping[str, Any], **options: Any) -> CloudflareAccessMiddleware:
    """``hello`` behind Cloudflare Access: ``/healthz`` open, ``/admin`` for Admins
    only, ``/api`` for service tokens only.

    ``config`` holds the ``CF_ACCESS_*`` settings; ``options`` go to the
    middleware (``session`` and ``clock`` in tests).
    """
    return CloudflareAccessMiddleware.from_mapping(
        config,
        hello,
        public_paths=["/healthz"],
        rules={"/admin": ["Admins"], "/api": require(service_tokens=[])},
        headers={
            "X-Auth-Email": "email",
            "X-Auth-Groups": "groups",
            "X-Auth-Department": "custom.department",
        },
        **options,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the example until Ctrl+C (or SIGTERM); the exit status."""
    return run_example(
        argv,
        prog="python -m examples.plain_wsgi_app",
        description="Run the plain WSGI example, against a local Access stand-in unless "
        "CF_ACCESS_TEAM_DOMAIN is set.",
        default_port=8000,
        make_app=_make_app,
        guide=_stand_in_guide,
    )


def _make_app(stand_in_settings: Mapping[str, Any] | None) -> CloudflareAccessMiddleware:
    """The app; configured from the environment when a real team is set there."""
    return make_app(os.environ if stand_in_settings is None else stand_in_settings)


def _stand_in_guide(url: str, stand_in: StandInServer) -> str:
    """What to paste: curl commands with the status each gets."""
    return stand_in_guide(url, stand_in, _tries(stand_in.issuer))


def _tries(issuer: AccessIssuer) -> list[Try]:
    """A request for each rule and each kind of caller, with the status it gets."""
    admin = issuer.user_token("ada@example.com", ["Admins"], custom={"department": "R&D"})
    user = issuer.user_token("bob@example.com", ["Staff"])
    return [
        Try("The health check needs no token", 200, "/healthz"),
        Try("No token at all", 401, "/"),
        Try("Ada, in Admins, opens /admin and the app is told who she is", 200, "/admin", admin),
        Try("Bob, not in Admins, opens /admin", 403, "/admin", user),
        Try(
            "A service token calls the API",
            200,
            "/api/status",
            issuer.service_token("example-client.access"),
        ),
        Try("Bob, a person, calls the API (service tokens only)", 403, "/api/status", user),
        Try(
            "A path through the public /healthz with a dot segment, sent as it is",
            400,
            "/healthz/../admin",
            curl_options=("--path-as-is",),
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
