"""The default bodies of refusals, in the form the client prefers.

JSON for clients that prefer it, a small HTML page for browsers, plain text
otherwise. No body names the reason, the token, the audience or a key.

A refusal's form depends on request headers, so it names them in ``Vary``
(``Accept``; with the login redirect, ``X-Requested-With`` too), and no
cache keeps it (``Cache-Control: no-store``): it belongs to one request's
token, and the next request, signed in, must not be answered from it.
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
#: The request headers a refusal's form depends on: ``Accept`` picks its body.
NEGOTIATED_ON = ("Accept",)
#: With ``CF_ACCESS_UNAUTHORIZED = "redirect"``, a 401 may be the login redirect
#: instead: for a browser navigating (:func:`prefers_html`), as these say.
BROWSER_NEGOTIATED_ON = ("Accept", "X-Requested-With")
#: How every refusal is cached: never, by anyone.
REFUSAL_CACHE_CONTROL = "no-store"

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
    environ: WSGIEnvironment | None,
    inherited: list[tuple[str, str]],
    varies_with: tuple[str, ...] = NEGOTIATED_ON,
) -> list[tuple[str, str]]:
    """``inherited`` with the negotiated ``Content-Type``, ``Vary`` naming the
    ``varies_with`` headers it was chosen by, and ``Cache-Control: no-store``."""
    kind = preferred_type(environ)
    charset = "" if kind == "application/json" else "; charset=utf-8"
    replaced = {"content-type", "vary", "cache-control"}
    result = [(name, value) for name, value in inherited if name.lower() not in replaced]
    result.append(("Content-Type", kind + charset))
    result.extend(refusal_cache_headers(varies_with))
    return result


def refusal_cache_headers(varies_with: tuple[str, ...]) -> list[tuple[str, str]]:
    """``Vary`` (the request headers the refusal's form depends on) and ``Cache-Control``."""
    return [("Vary", ", ".join(varies_with)), ("Cache-Control", REFUSAL_CACHE_CONTROL)]
