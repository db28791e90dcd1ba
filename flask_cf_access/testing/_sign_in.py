"""A local sign-in page shaped like Access's, for a developer's browser.

Served by a :class:`StandInServer` started with ``sign_in=True`` (only ever on
127.0.0.1): ``GET /cdn-cgi/access/login/<app-host>?kid=<aud>&redirect_url=<path>``
shows a form (an e-mail, groups, MFA and device posture results), its
``POST`` sets the ``CF_Authorization`` cookie to a token signed by the
stand-in (its profile served by ``get-identity``) and sends the browser back;
``GET /cdn-cgi/access/logout`` drops the cookie. Cookies belong to a host
name, not a port, so the cookie set here on 127.0.0.1 reaches the app on
127.0.0.1's other port, which verifies the token like any other. A browser
that uses the app as ``localhost`` is served the page as ``localhost`` too
(sent there if it came by the other name), so the cookie is for the name
it goes back to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from .._core.browser import LOGIN_PATH, LOGOUT_PATH, SAME_MACHINE_NAMES, safe_next
from .._core.csrf import origin_of
from .._core.tokens import TOKEN_COOKIE

if TYPE_CHECKING:
    # For annotations only: the stand-in's server serves this page, so the
    # stand-in's module imports this one (through the server's), not the reverse.
    from ._stand_in import AccessIssuer

#: Attributes of the cookie, as Access sets them (Chromium counts loopback as secure).
_COOKIE_ATTRIBUTES = "Path=/; HttpOnly; Secure; SameSite=None"


@dataclass
class PageAnswer:
    """What the server sends back: status, content type, body and extra headers."""

    status: int
    body: str
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def is_sign_in_path(path: str) -> bool:
    """Whether ``path`` is the sign-in page's or the logout's."""
    return path.startswith(LOGIN_PATH) or path == LOGOUT_PATH


def reached_origin(host_header: str | None, own_origin: str) -> str:
    """The stand-in server's origin as the browser named it (``Host``): ``http://localhost:<port>``
    when it came by that name, else ``own_origin`` (``http://127.0.0.1:<port>``)."""
    own = urlsplit(own_origin)
    reached = urlsplit(f"http://{host_header}")
    try:
        port = reached.port
    except ValueError:
        return own_origin
    if host_header and reached.hostname in SAME_MACHINE_NAMES and port == own.port:
        return f"http://{reached.hostname}:{port}"
    return own_origin


def _to_the_apps_name(app_host: str, origin: str, target: str) -> PageAnswer | None:
    """A redirect to this page under the name the browser uses for the app, if it came
    by another one: the cookie set here must be for the app's host name."""
    app_name = urlsplit(f"http://{app_host}").hostname
    reached = urlsplit(origin)
    if app_name == reached.hostname:
        return None
    parts = urlsplit(target)  # the path and query only, whatever form the target came in
    here = parts.path + (f"?{parts.query}" if parts.query else "")
    return PageAnswer(303, "", headers=[("Location", f"http://{app_name}:{reached.port}{here}")])


def answer_get(issuer: AccessIssuer, target: str, origin: str) -> PageAnswer:
    """The sign-in form, or the logout (``target`` is the request's path and query,
    ``origin`` the stand-in server's as the browser named it, see :func:`reached_origin`)."""
    parts = urlsplit(target)
    if parts.path == LOGOUT_PATH:
        return PageAnswer(
            200,
            _page(
                "Signed out",
                "<p>You are signed out of the local Access stand-in.</p>",
            ),
            headers=[("Set-Cookie", f"{TOKEN_COOKIE}=; Max-Age=0; {_COOKIE_ATTRIBUTES}")],
        )
    try:
        app_host, _ = _way_back(issuer, parts.path, parts.query)
    except ValueError as exc:
        return PageAnswer(400, _page("Cannot sign in", f"<p>{escape(str(exc))}</p>"))
    elsewhere = _to_the_apps_name(app_host, origin, target)
    if elsewhere is not None:
        return elsewhere
    form = f"""
<p>Local Access stand-in for team <code>{escape(issuer.team_domain)}</code>:
   sign in to <code>{escape(app_host)}</code> as anyone. Never use this for real.</p>
<form method="post">
  <label>E-mail <input name="email" type="email" value="ada@example.com" required></label>
  <label>Groups (comma-separated) <input name="groups" value="Admins, Staff"></label>
  <label class="check"><input name="mfa" type="checkbox" value="yes" checked>
    Signed in with MFA (amr: pwd, otp)</label>
  <label>Device posture rules passed (ids, comma-separated) <input name="posture"></label>
  <label>Device posture rules failing (ids, comma-separated)
    <input name="failing_posture"></label>
  <button type="submit">Sign in</button>
</form>"""
    return PageAnswer(200, _page("Sign in", form))


def answer_post(
    issuer: AccessIssuer, target: str, form_body: bytes, origin: str | None, own_origin: str
) -> PageAnswer:
    """Sign in: set the cookie to a token for the form's e-mail and groups, and go back.

    ``own_origin`` is the stand-in server's as the browser named it (:func:`reached_origin`);
    the form must come from there, and it must be the app's host name.
    """
    parts = urlsplit(target)
    if not parts.path.startswith(LOGIN_PATH):
        return PageAnswer(404, _page("Not found", ""))
    if origin is None or origin_of(origin) != own_origin:
        return PageAnswer(403, _page("Cannot sign in", "<p>Sign in from this page.</p>"))
    try:
        app_host, next_path = _way_back(issuer, parts.path, parts.query)
        form = parse_qs(form_body.decode("utf-8"), max_num_fields=10)
    except (ValueError, UnicodeDecodeError) as exc:
        return PageAnswer(400, _page("Cannot sign in", f"<p>{escape(str(exc))}</p>"))
    elsewhere = _to_the_apps_name(app_host, own_origin, target)
    if elsewhere is not None:  # the cookie would be for another name than the app's
        return elsewhere
    email = (form.get("email") or [""])[0].strip()
    if not email or any(ord(char) < 0x20 for char in email):
        return PageAnswer(400, _page("Cannot sign in", "<p>An e-mail is needed.</p>"))
    groups = _listed(form, "groups")
    posture = {
        **dict.fromkeys(_listed(form, "posture"), True),
        **dict.fromkeys(_listed(form, "failing_posture"), False),
    }
    # The same reader as ``flask cf-access mint``'s requests: one way to ask for a token.
    token = issuer._mint_asked(
        {
            "email": email,
            "groups": groups,
            "profile": {
                "amr": ["pwd", "otp"] if form.get("mfa") == ["yes"] else ["pwd"],
                "posture": posture or None,
            },
        }
    )
    return PageAnswer(
        302,
        "",
        headers=[
            ("Set-Cookie", f"{TOKEN_COOKIE}={token}; {_COOKIE_ATTRIBUTES}"),
            ("Location", f"http://{app_host}{next_path}"),
        ],
    )


def _listed(form: dict[str, list[str]], name: str) -> list[str]:
    """The comma-separated names of the form's field ``name``."""
    return [item.strip() for item in (form.get(name) or [""])[0].split(",") if item.strip()]


def _way_back(issuer: AccessIssuer, path: str, query: str) -> tuple[str, str]:
    """The app's host (a loopback one) and the path to go back to, from the login URL.

    :raises ValueError: another application's AUD tag, a host off this machine, a bad path.
    """
    app_host = path.removeprefix(LOGIN_PATH)
    params = parse_qs(query, max_num_fields=10)
    if (params.get("kid") or [""])[0] != issuer.audience:
        raise ValueError("This login link is for another application (kid).")
    hostname = urlsplit(f"http://{app_host}").hostname
    if hostname not in SAME_MACHINE_NAMES or "/" in app_host:
        raise ValueError("The local sign-in page only sends you back to this machine.")
    next_path = safe_next((params.get("redirect_url") or ["/"])[0])
    return app_host, next_path


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html>\n<html lang=en>\n<meta charset=utf-8>\n"
        f"<title>{escape(title)} · Cloudflare Access (local stand-in)</title>\n"
        "<style>body{font-family:sans-serif;max-width:32em;margin:4em auto}"
        "label{display:block;margin:1em 0}input{width:100%;padding:.4em}"
        "label.check input{width:auto}button{padding:.5em 2em}</style>\n"
        f"<h1>{escape(title)}</h1>\n{content}\n"
    )
