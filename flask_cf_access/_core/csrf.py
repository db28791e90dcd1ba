"""Cross-site request forgery defence for requests that carry the Access cookie.

A form on another site can make a browser send the ``CF_Authorization``
cookie (Access sets it ``SameSite=None``), never a custom header. So an
unsafe request from a user that carries the cookie must show that it comes
from the application's own origin, following OWASP's Fetch Metadata advice:

1. ``Sec-Fetch-Site`` (sent by every current browser): ``same-origin`` or
   ``none`` (typed in, a bookmark) passes; ``same-site`` and ``cross-site``
   pass only from an origin listed in ``CF_ACCESS_TRUSTED_ORIGINS``.
2. Without it, ``Origin``: the request's own origin or a listed one;
   ``Origin: null`` (sandboxed frames, some redirects) is refused.
3. Without either, ``Referer``'s origin, judged the same way.
4. None of the three: refused.

The request's own origin is ``request.host_url``: the scheme the WSGI server
saw and the ``Host`` header. Behind a proxy that terminates TLS (Cloudflare
Tunnel, a load balancer) that scheme is ``http`` while the browser's is
``https``: use werkzeug's ``ProxyFix`` (the only place ``X-Forwarded-*`` is
trusted), or list the public origin in ``CF_ACCESS_TRUSTED_ORIGINS``.
Browsers that send ``Sec-Fetch-Site`` are judged by it alone, so they are
unaffected either way.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from werkzeug.wrappers import Request

from .errors import Reason, refusal

#: Methods that change nothing, never checked.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: ``Sec-Fetch-Site`` values of a request the user or the app itself started.
_SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-cased, default port dropped; ``None`` if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_forgery_candidate(request: Request, mode: str, carries_cookie: bool) -> bool:
    """Whether ``request`` must prove where it comes from, under ``mode``."""
    if mode == "off" or request.method in SAFE_METHODS:
        return False
    return carries_cookie or mode == "always"


def comes_from_trusted_origin(request: Request, trusted: frozenset[str]) -> bool:
    """Whether the browser says ``request`` comes from its own origin or a trusted one."""
    headers = request.headers
    origin_header = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() in _SAME_ORIGIN_SITES:
            return True
        return origin_header is not None and origin_of(origin_header) in trusted
    own = origin_of(request.host_url)
    if origin_header is not None:
        if origin_header.strip().lower() == "null":
            return False
        origin = origin_of(origin_header)
        return origin is not None and (origin == own or origin in trusted)
    referer = headers.get("Referer")
    if referer:
        origin = origin_of(referer)
        return origin is not None and (origin == own or origin in trusted)
    return False


def check_origin(
    request: Request, mode: str, trusted: frozenset[str], carries_cookie: bool
) -> None:
    """Refuse an unsafe user request that may be forged.

    :raises AccessForbidden: 403 with :attr:`Reason.CROSS_SITE_REQUEST`.
    """
    if is_forgery_candidate(request, mode, carries_cookie) and not comes_from_trusted_origin(
        request, trusted
    ):
        raise refusal(Reason.CROSS_SITE_REQUEST)
