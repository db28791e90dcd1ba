"""The default bodies of refusals, in the form the client prefers.

JSON for clients that prefer it, a small HTML page for browsers, plain text
otherwise. No body names the reason, the token, the audience or a key.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The one-word ``error`` of the JSON body, by status.
_ERROR_WORDS = {401: "unauthorized", 403: "forbidden", 503: "unavailable"}
#: What a client's ``Accept`` is matched against; the first wins a tie (``*/*``).
_OFFERED = ("text/plain", "application/json", "text/html")


def preferred_type(environ: WSGIEnvironment | None) -> str:
    """``text/plain``, ``application/json`` or ``text/html``, as ``Accept`` prefers."""
    if environ is None:
        return "text/plain"
    accept = parse_accept_header(environ.get("HTTP_ACCEPT"), MIMEAccept)
    return accept.best_match(_OFFERED) or "text/plain"


def prefers_html(environ: WSGIEnvironment) -> bool:
    """Whether the client is a browser navigating: it prefers HTML and is not an XHR."""
    return (
        environ.get("HTTP_X_REQUESTED_WITH", "").lower() != "xmlhttprequest"
        and preferred_type(environ) == "text/html"
    )


def negotiated_body(
    status: int, name: str, description: str, environ: WSGIEnvironment | None
) -> str:
    """The body of a refusal (``status``, its ``name``, a ``description``) for the
    client of ``environ``."""
    kind = preferred_type(environ)
    if kind == "application/json":
        return json.dumps({"error": _ERROR_WORDS.get(status, "refused")})
    if kind == "text/html":
        return (
            "<!doctype html>\n<html lang=en>\n<meta charset=utf-8>\n"
            f"<title>{status} {escape(name)}</title>\n<h1>{escape(name)}</h1>\n"
            f"<p>{escape(description)}</p>\n"
        )
    return f"{status} {name}: {description}\n"


def negotiated_headers(
    environ: WSGIEnvironment | None, inherited: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``inherited`` with the negotiated ``Content-Type``."""
    kind = preferred_type(environ)
    charset = "" if kind == "application/json" else "; charset=utf-8"
    result = [(name, value) for name, value in inherited if name.lower() != "content-type"]
    result.append(("Content-Type", kind + charset))
    result.append(("Vary", "Accept"))
    return result
