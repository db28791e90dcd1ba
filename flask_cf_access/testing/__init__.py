"""Test your protected views without Cloudflare: a local stand-in for an Access team.

One word for each thing, here and in the docs:

- a **team** is a Cloudflare Access team, named by its team domain: it
  publishes the keys and answers ``get-identity``;
- the **stand-in** is an :class:`AccessIssuer`: a local imitation of one team
  and one of its applications. It holds RSA-2048 signing keys whose ``kid``
  is the SHA-256 of the key's DER SubjectPublicKeyInfo (as real Access key
  ids are), publishes them in Cloudflare's certs shape, mints tokens with the
  claims you choose, rotates its keys, and answers ``get-identity`` for the
  users it minted tokens for. (``issuer``, in code, is the usual name of the
  variable holding it; in prose, the issuer is only a token's ``iss``.)
- the **stand-in server** is a :class:`StandInServer`: the stand-in served
  over HTTP on 127.0.0.1, optionally with a sign-in page for a browser;
- the **edge** is a :class:`LocalEdge`: the part of Access in front of an app.

An app reaches the stand-in in one of three ways, whichever suits the test:

- in process, with no HTTP at all: ``CloudflareAccess(app, session=issuer.session())``;
- through ``responses``: ``issuer.register(mock)``;
- over real HTTP on 127.0.0.1: ``with issuer.serve() as server:`` and
  ``app.config.update(server.settings())``.

::

    issuer = AccessIssuer()
    app.config.update(issuer.settings())
    CloudflareAccess(app, session=issuer.session(), background=run_inline)
    token = issuer.user_token("ada@example.com", groups=["Admins"])
    client.get("/", headers={"Cf-Access-Jwt-Assertion": token})

    app.test_client_class = AccessClient
    client = app.test_client(issuer=issuer)
    client.get("/admin/", as_user="ada@example.com", groups=["Admins"])

``background=run_inline`` makes the work the extension does off the request
(key refreshes, get-identity calls) run in the request that starts it, so a
test sees it done when the request returns; leave it out to test the threads.

The app's user loader runs for these requests as for real ones.
``client.ensure_account(as_user=…)`` makes a user who already has an
account; :func:`capture_user_loads` shows what the loader gave, and whether
it created the account (a first visit).
:class:`LocalEdge` is the part of Access in front of an app: a reverse proxy on
127.0.0.1 that admits, challenges and blocks as Access does (sessions, service
tokens, linked-app tokens), so a test runs browser → edge → app, or app A →
edge → app B, over real HTTP.
:func:`assert_routes_protected` fails a test when an endpoint is neither
protected nor explicitly public, as ``flask cf-access routes --strict`` does.

To assert why a request was refused, not only its status::

    with capture_access(app) as captured:
        client.get("/admin/", as_user="bob@example.com")
    assert captured.last.reason is Reason.NOT_IN_GROUP

With pytest, the fixtures of :mod:`flask_cf_access.pytest_plugin`
(``cf_access_issuer``, ``cf_access_server``, ``cf_access_responses``) are
available as soon as the package is installed.
"""

from __future__ import annotations

from .._core.single_flight import run_inline as run_inline
from ._capture import AccessCapture as AccessCapture
from ._capture import AccessRecord as AccessRecord
from ._capture import UserLoad as UserLoad
from ._capture import assert_routes_protected as assert_routes_protected
from ._capture import capture_access as capture_access
from ._capture import capture_user_loads as capture_user_loads
from ._client import AccessClient as AccessClient
from ._edge import EdgeApplication as EdgeApplication
from ._edge import LocalEdge as LocalEdge
from ._server import CERTS_PATH as CERTS_PATH
from ._server import IDENTITY_PATH as IDENTITY_PATH
from ._server import RequestCounts as RequestCounts
from ._server import StandInServer as StandInServer
from ._stand_in import OUT_OF_LEEWAY as OUT_OF_LEEWAY
from ._stand_in import AccessIssuer as AccessIssuer
from ._stand_in import SigningKey as SigningKey
from ._stand_in import decode_unverified_claims as decode_unverified_claims
from ._stand_in import encode_token as encode_token
from ._stand_in import identity_profile as identity_profile

__all__ = [
    "CERTS_PATH",
    "IDENTITY_PATH",
    "OUT_OF_LEEWAY",
    "AccessCapture",
    "AccessClient",
    "AccessIssuer",
    "AccessRecord",
    "EdgeApplication",
    "LocalEdge",
    "RequestCounts",
    "SigningKey",
    "StandInServer",
    "UserLoad",
    "assert_routes_protected",
    "capture_access",
    "capture_user_loads",
    "decode_unverified_claims",
    "encode_token",
    "identity_profile",
    "run_inline",
]
