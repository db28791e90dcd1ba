"""Signing in and out through Access: the URLs of its login and logout pages.

Pure functions of the app's settings and host, and the decision to send a
refused browser to sign in rather than answer 401 or 403
(:func:`offer_login`); the ready "log out" view is in
:mod:`flask_cf_access._logout`.

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

from .csrf import origin_of
from .errors import AccessError, AccessUnauthorized, Reason, prefers_html

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from .applications import ApplicationMap, ApplicationSettings
    from .settings import AccessSettings

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


def login_audience(applications: ApplicationMap | None, host: str, path_info: str) -> str | None:
    """The AUD a browser signs in to for ``path_info`` on ``host``: that of the
    path's application (``CF_ACCESS_APPLICATIONS``); ``None`` for the default
    (the first tag), also for a path no application covers or an ambiguous one."""
    if applications is None:
        return None
    try:
        application = applications.application_for(host, path_info)
    except AccessError:
        return None
    return application.audience[0] if application is not None else None


def offer_login(
    settings: AccessSettings,
    request: Request,
    error: AccessError,
    application: ApplicationSettings | None,
) -> None:
    """Send a browser refused with ``error`` to sign in instead, when signing in may mend it.

    Only with ``CF_ACCESS_UNAUTHORIZED = "redirect"``: a browser without a
    token (or with a bad one), or whose sign-in is too old for the view, is
    sent to sign in (again), and one with another application's token to sign
    in to ``application``, the request path's (step-up). Such a refusal varies
    with the headers that tell a browser (:meth:`AccessError.may_send_to_login`);
    only a GET or HEAD from a browser that prefers HTML gets the redirect.
    """
    if settings.unauthorized == "redirect" and (
        isinstance(error, AccessUnauthorized)
        or error.reason is Reason.LOGIN_TOO_OLD
        or (error.reason is Reason.WRONG_APPLICATION and application is not None)
    ):
        error.may_send_to_login()
        if request.method in ("GET", "HEAD") and prefers_html(request.environ):
            audience = application.audience[0] if application is not None else None
            url = login_redirect_for(settings, request.host, request.full_path, audience)
            error.send_to_login(url)


def logout_url(settings: AccessSettings, app_host_url: str) -> str:
    """The app's own Access logout (``<app>/cdn-cgi/access/logout``), or the stand-in's."""
    if is_stand_in(settings):
        return access_origin_for(settings, urlsplit(app_host_url).netloc) + LOGOUT_PATH
    return app_host_url.rstrip("/") + LOGOUT_PATH


def team_logout_url(settings: AccessSettings) -> str:
    """The team-wide Access logout, ``https://<team>/cdn-cgi/access/logout``."""
    return access_origin(settings) + LOGOUT_PATH
