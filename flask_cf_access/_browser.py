"""Signing in and out through Access: the URLs of its login and logout pages.

Pure functions of the app's settings and host; the ready "log out" view is
in :mod:`flask_cf_access._logout`.

Access signs a browser in at
``https://<team>/cdn-cgi/access/login/<app-domain>?kid=<aud>&redirect_url=<path>``
and out at ``/cdn-cgi/access/logout``, on the application's own domain (ends
the session everywhere) or on the team's. When ``CF_ACCESS_CERTS_URL`` points
somewhere else than the team (a local stand-in on 127.0.0.1), the login and
logout pages are taken to be there too: the stand-in serves them. A browser
is sent to a stand-in on this machine by the name it used for the app
(``localhost`` or ``127.0.0.1``): a cookie belongs to a host name, so the one
the sign-in page sets must be for the app's, or the browser comes back
without it and is sent to sign in again, for ever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from ._csrf import origin_of

if TYPE_CHECKING:
    from ._settings import AccessSettings

LOGIN_PATH = "/cdn-cgi/access/login/"
LOGOUT_PATH = "/cdn-cgi/access/logout"


def access_origin(settings: AccessSettings) -> str:
    """Where Access's own pages are: the team, or the stand-in its keys come from."""
    return origin_of(settings.certs_url) or settings.issuer


#: The names a browser reaches this machine by, which a local stand-in answers to.
SAME_MACHINE_NAMES = frozenset({"127.0.0.1", "localhost"})


def access_origin_for(settings: AccessSettings, app_host: str) -> str:
    """:func:`access_origin` for a browser at ``app_host`` (``host[:port]``).

    A stand-in on this machine is named as the browser named the app, so the
    cookie its sign-in page sets is sent back to the app.
    """
    origin = access_origin(settings)
    stand_in = urlsplit(origin)
    app_name = urlsplit(f"http://{app_host}").hostname
    if (
        origin != settings.issuer
        and stand_in.scheme == "http"
        and stand_in.hostname in SAME_MACHINE_NAMES
        and app_name in SAME_MACHINE_NAMES
        and app_name != stand_in.hostname
    ):
        port = stand_in.port
        return f"http://{app_name}" + ("" if port is None else f":{port}")
    return origin


def is_stand_in(settings: AccessSettings) -> bool:
    """Whether the keys come from elsewhere than the team itself (a local stand-in)."""
    return access_origin(settings) != settings.issuer


def safe_next(next_path: str) -> str:
    """``next_path`` if it is a path on this host; refuses anything that leaves it.

    :raises ValueError: not a path starting with a single ``/``.
    """
    if (
        not next_path.startswith("/")
        or next_path.startswith("//")
        or "\\" in next_path
        or any(ord(char) < 0x20 for char in next_path)
    ):
        raise ValueError("next must be a path on this host, starting with a single '/'.")
    return next_path


def login_url(
    settings: AccessSettings, app_host: str, next_path: str = "/", audience: str | None = None
) -> str:
    """The Access login page for the app at ``app_host``, coming back to ``next_path``.

    ``audience`` is the AUD of the application to sign in to (``kid``); by
    default the first of ``CF_ACCESS_AUDIENCE`` (or of ``CF_ACCESS_APPLICATIONS``).
    """
    kid = audience or settings.audience[0]
    query = urlencode({"kid": kid, "redirect_url": safe_next(next_path)})
    origin = access_origin_for(settings, app_host)
    return f"{origin}{LOGIN_PATH}{quote(app_host, safe=':[]')}?{query}"


def login_redirect_for(
    settings: AccessSettings, host: str, full_path: str, audience: str | None = None
) -> str:
    """Where a browser refused at ``full_path`` (path and query) is sent to sign in
    (to the application of AUD ``audience``, by default the first).

    A path that would leave the host once back (``//evil.example``) comes back to ``/``.
    """
    next_path = full_path.rstrip("?") or "/"
    try:
        return login_url(settings, host, next_path, audience)
    except ValueError:
        return login_url(settings, host, "/", audience)


def logout_url(settings: AccessSettings, app_host_url: str) -> str:
    """The app's own Access logout (``<app>/cdn-cgi/access/logout``), or the stand-in's."""
    if is_stand_in(settings):
        return access_origin_for(settings, urlsplit(app_host_url).netloc) + LOGOUT_PATH
    return app_host_url.rstrip("/") + LOGOUT_PATH


def team_logout_url(settings: AccessSettings) -> str:
    """The team-wide Access logout, ``https://<team>/cdn-cgi/access/logout``."""
    return access_origin(settings) + LOGOUT_PATH
