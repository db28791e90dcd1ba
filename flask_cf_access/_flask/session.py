"""For pages that outlive their Access session: the session view, the page a
sign-in popup ends on, and the browser module that uses them.

:func:`session_blueprint` serves, under a URL the app chooses (``/auth/session``):

- ``GET <url>``: JSON about the request's Access session (when its token
  expires, when it was issued, whom it is for), never the token itself;
- ``GET <url>/signed-in``: where a sign-in ends. In a popup, a page that tells
  the page that opened it and closes; with ``?next=/path``, a redirect there;
- ``GET <url>/cf-access.js``: the browser module (``static/cf-access.js`` in
  the package), public and cacheable.

:func:`add_expiry_header` is the ``after_request`` hook of
``CF_ACCESS_EXPIRY_HEADER``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, redirect, request
from flask.typing import ResponseReturnValue

from .._core.browser import safe_next
from .._core.csrf import origin_of
from .._core.identity import AccessIdentity
from .app_state import access_state
from .decorators import require_access
from .guards import PUBLIC_ATTRIBUTE
from .request import get_identity

#: The browser module, shipped in the package: serve it, or give it to a bundler.
SCRIPT_FILE = Path(__file__).parent.parent / "static" / "cf-access.js"
#: The response header ``CF_ACCESS_EXPIRY_HEADER`` adds: the token's ``exp``.
EXPIRY_HEADER = "Access-Session-Expires"
#: Seconds browsers and shared caches may keep the module before asking again.
SCRIPT_MAX_AGE = 3600

#: The script of the signed-in page: it posts the module's ``SIGNED_IN_MESSAGE``
#: on the ``cf-access`` broadcast channel (pages of this origin) and to its
#: opener, if that is on one of ``%s`` (this origin and the trusted ones), then
#: closes. The message carries nothing but its type.
_SIGNED_IN_SCRIPT = (
    "(function () {"
    ' var message = {type: "cf-access:signed-in"};'
    ' try { new BroadcastChannel("cf-access").postMessage(message); } catch (e) {}'
    " if (!window.opener) { return; }"
    " %s.forEach(function (origin) {"
    " try { window.opener.postMessage(message, origin); } catch (e) {} });"
    " window.close();"
    " })();"
)


def signed_in_page(origins: list[str]) -> tuple[str, str]:
    """The signed-in page telling an opener on one of ``origins``, and its
    ``Content-Security-Policy``: its own script and nothing else runs."""
    script = _SIGNED_IN_SCRIPT % json.dumps(origins)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    page = (
        "<!doctype html>\n<html lang=en>\n<meta charset=utf-8>\n"
        "<title>Signed in</title>\n<h1>Signed in</h1>\n"
        "<p>You are signed in again: you can close this window.</p>\n"
        f"<script>{script}</script>\n"
    )
    return page, f"default-src 'none'; script-src 'sha256-{digest}'"


def session_summary(identity: AccessIdentity, now: float) -> dict[str, Any]:
    """What the session view says of ``identity``'s verified token, at ``now``.

    ``expires_at`` is the token's ``exp`` and ``expires_in`` the seconds left
    by the app's clock; ``issued_at`` is its ``iat`` (when Access issued this
    application token, at sign-in), ``None`` if it has none.
    """
    claims = identity.claims
    expires_at = int(claims["exp"])
    issued_at = claims.get("iat")
    return {
        "expires_at": expires_at,
        "expires_in": max(0, expires_at - int(now)),
        "issued_at": int(issued_at) if isinstance(issued_at, (int, float)) else None,
        "name": identity.name,
        "email": identity.email,
        "service_token": identity.is_service_token,
    }


def session_blueprint(name: str = "cf_access_session", *, url: str = "/auth/session") -> Blueprint:
    """A blueprint with the session view at ``url``, for pages that must notice
    their Access session ending::

        app.register_blueprint(session_blueprint())
        # GET /auth/session             -> {"expires_in": 3599, "email": ..., ...}
        # url_for("cf_access_session.script") -> "/auth/session/cf-access.js"

    ``GET <url>`` answers, for a verified token (any caller, people and
    service tokens), a JSON object with ``expires_at`` (the token's ``exp``,
    seconds since the epoch), ``expires_in`` (seconds left by the app's
    clock), ``issued_at`` (its ``iat``: when Access issued the application
    token, at sign-in; ``null`` if absent), ``name``, ``email`` (``null`` for
    a service token) and ``service_token``; never the token. It is answered
    with ``Cache-Control: no-store``, and refused like any protected view.

    ``GET <url>/signed-in`` is protected too, so a browser reaches it only
    through sign-in: in the popup the browser module opens, it tells the page
    that opened it (on this origin, or one in ``CF_ACCESS_TRUSTED_ORIGINS``)
    and closes; with ``?next=/path`` it sends the browser back
    there (a path on this host; anything else goes to ``/``).

    ``GET <url>/cf-access.js`` is the browser module (see :doc:`spa`): public
    (deny by default lets it through) and cacheable for an hour.

    :raises ValueError: ``url`` does not start with ``/``, or ends with one.
    """
    if not url.startswith("/") or url.endswith("/"):
        raise ValueError("url must be a path such as '/auth/session': a leading '/', no trailing.")
    blueprint = Blueprint(name, __name__)

    @blueprint.get(url)
    @require_access
    def session() -> ResponseReturnValue:
        summary = session_summary(get_identity(), access_state().checker.clock())
        return summary, 200, {"Cache-Control": "no-store"}

    @blueprint.get(url + "/signed-in")
    @require_access
    def signed_in() -> ResponseReturnValue:
        next_path = request.args.get("next")
        if next_path is not None:
            try:
                target = safe_next(next_path)
            except ValueError:
                target = "/"
            response = redirect(target, 303)
        else:
            # Only origins the app trusts learn that this browser signed in.
            settings = access_state().checker.settings
            own = origin_of(request.host_url) or request.host_url.rstrip("/")
            page, policy = signed_in_page([own, *sorted(settings.trusted_origins - {own})])
            response = Response(page, content_type="text/html; charset=utf-8")
            response.headers["Content-Security-Policy"] = policy
        response.headers["Cache-Control"] = "no-store"
        return response

    def script() -> ResponseReturnValue:
        response = Response(SCRIPT_FILE.read_bytes(), mimetype="text/javascript")
        response.cache_control.public = True
        response.cache_control.max_age = SCRIPT_MAX_AGE
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.add_etag()
        return response.make_conditional(request)

    setattr(script, PUBLIC_ATTRIBUTE, True)  # what @cf_access.public sets
    blueprint.add_url_rule(url + "/cf-access.js", view_func=script, methods=["GET"])
    return blueprint


def add_expiry_header(response: Response) -> Response:
    """With ``CF_ACCESS_EXPIRY_HEADER``: an admitted response says when its token
    expires, in :data:`EXPIRY_HEADER` (seconds since the epoch)."""
    identity = get_identity(None)
    if identity is not None and EXPIRY_HEADER not in response.headers:
        response.headers[EXPIRY_HEADER] = str(int(identity.claims["exp"]))
    return response
