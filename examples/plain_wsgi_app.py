"""A plain WSGI application, no Flask, behind Cloudflare Access.

Behind a real Access team, configured from the environment::

    export CF_ACCESS_TEAM_DOMAIN=acme.cloudflareaccess.com
    export CF_ACCESS_AUDIENCE=4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2
    python -m examples.plain_wsgi_app

With no team configured it trusts a local stand-in team instead and prints
tokens to try it with::

    python -m examples.plain_wsgi_app
    curl -H "Cf-Access-Jwt-Assertion: $TOKEN" http://127.0.0.1:8000/admin
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import make_server

from flask_cf_access import CloudflareAccessMiddleware
from flask_cf_access.testing import AccessIssuer

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
    """``hello`` behind Cloudflare Access: ``/healthz`` open, ``/admin`` for Admins only.

    ``config`` holds the ``CF_ACCESS_*`` settings; ``options`` go to the
    middleware (``session`` and ``clock`` in tests).
    """
    return CloudflareAccessMiddleware.from_config(
        config,
        hello,
        public_paths=["/healthz"],
        rules={"/admin": ["Admins"]},
        headers={
            "X-Auth-Email": "email",
            "X-Auth-Groups": "groups",
            "X-Auth-Department": "custom.department",
        },
        **options,
    )


def main() -> None:
    """Serve the example on http://127.0.0.1:8000 (``PORT`` to change it)."""
    if os.environ.get("CF_ACCESS_TEAM_DOMAIN"):
        app = make_app(os.environ)
    else:
        issuer = AccessIssuer()
        app = make_app(issuer.settings(), session=issuer.session())
        print("No CF_ACCESS_TEAM_DOMAIN: trusting a local stand-in team. Try these tokens:")
        admin = issuer.user_token("ada@example.com", ["Admins"], custom={"department": "R&D"})
        print(f"  an admin:        TOKEN={admin}")
        print(f"  a user:          TOKEN={issuer.user_token('bob@example.com', ['Staff'])}")
        print(f"  a service token: TOKEN={issuer.service_token()}")
    port = int(os.environ.get("PORT", "8000"))
    with make_server("127.0.0.1", port, app) as server:
        print(f"Serving on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        server.serve_forever()


if __name__ == "__main__":
    main()
