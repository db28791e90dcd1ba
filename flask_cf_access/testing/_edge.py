"""A local Access edge: a loopback-only reverse proxy that behaves like Access.

Run an app behind it and it sees what it sees in production: requests
admitted by Access carry ``Cf-Access-Jwt-Assertion``, signed by the stand-in
(:class:`~flask_cf_access.testing.AccessIssuer`), for the application
that covers the path. Everything is decided here, as Access decides it:

- a browser's ``CF_Authorization`` cookie (or a token in ``Cf-Access-Token``)
  for the application is a session, until the edge's clock passes its expiry
  or ``session_duration`` after it was issued;
- ``CF-Access-Client-Id`` and ``CF-Access-Client-Secret`` of a known service
  token are exchanged for a token (and a ``CF_Authorization`` cookie);
- ``Cf-Access-Token`` holding another application's token is exchanged for
  one with this application's AUD when that application is among
  ``linked_apps`` (a Linked App Token);
- without any of them, a browser gets a 302 to the team's login page
  (``/cdn-cgi/access/login/<host>?kid=<AUD>&redirect_url=<path>``), a
  request with ``X-Requested-With`` a 401; an identity the policy refuses,
  or credentials that are wrong, Access's block page (403);
- ``/cdn-cgi/access/logout`` drops the cookie and ends the session;
- every ``Cf-Access-*`` header a client sends (and ``Cf-Access-Authenticated-User-Email``)
  is removed before the request goes on: the app only ever sees the edge's.

It binds 127.0.0.1 only, forwards only to an ``http://`` URL on this machine,
and signs only with the stand-in's keys, which no app outside a test trusts.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .._core.browser import LOGIN_PATH, LOGOUT_PATH
from .._core.errors import AccessError
from .._core.logsafe import loggable
from .._core.paths import _loose_segments, _PathReadings, _segments
from .._core.tokens import TOKEN_COOKIE, TOKEN_HEADER, check_token_shape, read_unverified_header
from .._core.tokens import decode_segment as _decode_segment
from .._onward.policy import CLIENT_ID_HEADER, CLIENT_SECRET_HEADER, LINKED_TOKEN_HEADER
from ._server import KitHTTPServer, RequestCounts, ServedInThread, logger
from ._stand_in import AccessIssuer, cookie_value, decode_unverified_claims

#: The header Access adds for a user, beside the token.
EMAIL_HEADER = "Cf-Access-Authenticated-User-Email"

#: The only address the edge listens on and forwards to.
_LOOPBACK = "127.0.0.1"
_UPSTREAM_HOSTS = frozenset({"127.0.0.1", "localhost"})
#: Hop-by-hop headers, never forwarded (RFC 9110 7.6.1), and those the edge sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)
#: The largest request body the edge reads.
_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class EdgeApplication:
    """One Access application of the edge: its AUD, its paths and its policy.

    A user is admitted when their e-mail is in ``emails`` (compared
    case-insensitively) or they belong to one of ``groups`` (names), or
    when ``everyone`` is true; a service token when its client id is a
    key of ``service_tokens`` (a Service Auth policy).

    :param name: a name for the tests and the log.
    :param audience: the application's AUD tag.
    :param paths: the path prefixes it covers, whole segments (``"/admin"``
        covers ``/admin`` and ``/Admin/x``, not ``/administrator``).
    :param service_tokens: client id to client secret of the service tokens it admits.
    :param linked_apps: the AUD tags of the applications whose tokens it
        takes in ``Cf-Access-Token`` (its "Linked App Token" rule).
    :param session_duration: seconds a session lasts after its token was issued.
    """

    name: str
    audience: str
    paths: tuple[str, ...] = ("/",)
    emails: AbstractSet[str] = frozenset()
    groups: AbstractSet[str] = frozenset()
    everyone: bool = False
    service_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    linked_apps: AbstractSet[str] = frozenset()
    session_duration: int = 24 * 3600

    def __post_init__(self) -> None:
        if not self.audience or not self.paths:
            raise ValueError("an edge application needs an AUD tag and at least one path")
        if not all(path.startswith("/") for path in self.paths):
            raise ValueError("an edge application's paths start with '/'")
        object.__setattr__(self, "emails", frozenset(email.lower() for email in self.emails))
        object.__setattr__(self, "groups", frozenset(self.groups))
        object.__setattr__(self, "linked_apps", frozenset(self.linked_apps))
        object.__setattr__(self, "service_tokens", dict(self.service_tokens))

    def covers(self, segments: tuple[str, ...]) -> int:
        """How many of a path's ``segments`` (read loosely: letter case and ``;``
        parameters ignored) the longest of ``paths`` covering it has; ``-1`` if none."""
        best = -1
        for prefix in self.paths:
            stem = _loose_segments(_segments(prefix))
            if segments[: len(stem)] == stem:
                best = max(best, len(stem))
        return best


@dataclass
class _Answer:
    """What the edge answers itself, without the app."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Admission:
    """What the edge made of a request's credentials: ``kind`` is counted in
    :attr:`LocalEdge.admissions`."""

    kind: str
    token: str | None = None
    answer: _Answer | None = None
    set_cookie: bool = False


class LocalEdge(ServedInThread):
    """A local Cloudflare Access edge in front of an app on this machine, in a thread.

    ::

        blog = EdgeApplication("blog", issuer.audience, emails={"ada@example.com"})
        with LocalEdge(issuer, app_url, [blog]) as edge:
            requests.get(edge.url + "/", cookies={"CF_Authorization": token})

    :param issuer: the stand-in whose keys sign the edge's tokens and
        verify the tokens clients bring.
    :param upstream: the app's URL, ``http://127.0.0.1:<port>`` (or ``localhost``).
    :param applications: the Access applications in front of it; the one
        with the longest matching path covers a request, and a path none
        covers goes through unauthenticated (and stripped), as with Access.
    :param login_origin: where the team's login page is (a
        :class:`~flask_cf_access.testing.StandInServer` started with
        ``sign_in=True``); by default ``https://<team domain>``.
    :param clock: the edge's time, for sessions; by default the stand-in's.
    :raises ValueError: a host other than 127.0.0.1, or an upstream off this machine.
    """

    def __init__(
        self,
        issuer: AccessIssuer,
        upstream: str,
        applications: Iterable[EdgeApplication],
        *,
        host: str = _LOOPBACK,
        port: int = 0,
        login_origin: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if host != _LOOPBACK:
            raise ValueError("the local Access edge is only ever served on 127.0.0.1")
        parts = urlsplit(upstream)
        if (
            parts.scheme != "http"
            or parts.hostname not in _UPSTREAM_HOSTS
            or parts.path not in ("", "/")
        ):
            raise ValueError("the local Access edge forwards only to http://127.0.0.1:<port>")
        super().__init__(host, port, _EdgeHandler, "local Access edge")
        self.issuer = issuer
        self.upstream = (parts.hostname or _LOOPBACK, parts.port or 80)
        self.applications = tuple(applications)
        if not self.applications:
            raise ValueError("the local Access edge needs at least one application")
        self.login_origin = (login_origin or issuer.issuer).rstrip("/")
        self.clock: Callable[[], float] = clock or issuer.clock
        #: Requests answered so far, by path.
        self.calls = RequestCounts()
        #: How requests to an application were taken, by kind: ``"service token"``,
        #: ``"session"`` (a cookie or ``Cf-Access-Token``), ``"linked app token"``,
        #: ``"challenged"`` (302 or 401) and ``"blocked"`` (403).
        self.admissions = RequestCounts()
        self._ended: set[str] = set()  # digests of the tokens of sessions logged out
        self._lock = threading.Lock()

    # -- deciding, called from the server's threads -------------------------

    def application_for(self, path: str) -> EdgeApplication | None:
        """The application covering ``path``: the one with the longest matching path.

        Every reading of the path (percent-decoded, NFKC, letter case and ``;``
        parameters ignored, empty segments dropped) must fall under the same
        application.

        :raises ValueError: a path readers may resolve differently (``..``,
            encoded ``/``, control characters…), or whose readings fall under
            different applications.
        """
        try:
            readings = _PathReadings(path)
        except AccessError as exc:
            raise ValueError("an ambiguous path") from exc
        found = [self._longest(segments) for segments in readings.loose_segments]
        if any(application is not found[0] for application in found):
            raise ValueError("a path whose readings fall under different applications")
        return found[0]

    def _longest(self, segments: tuple[str, ...]) -> EdgeApplication | None:
        best: tuple[int, EdgeApplication | None] = (-1, None)
        for application in self.applications:
            length = application.covers(segments)
            if length > best[0]:
                best = (length, application)
        return best[1]

    def _admit(
        self, application: EdgeApplication, headers: Mapping[str, str], cookie: str | None
    ) -> _Admission:
        """How ``application`` takes a request: with a token to forward, or an answer instead.

        ``headers`` maps lower-cased names to values, as the client sent them.
        Service token headers come first, then ``Cf-Access-Token``, then the
        cookie; a service token that is unknown, or whose secret is wrong,
        counts as no credentials at all, as with Access.
        """
        client_id = headers.get(CLIENT_ID_HEADER.lower())
        client_secret = headers.get(CLIENT_SECRET_HEADER.lower())
        if client_id is not None or client_secret is not None:
            known = application.service_tokens.get(client_id or "")
            if known is None or not secrets.compare_digest(
                known.encode(), (client_secret or "").encode()
            ):
                return _Admission("challenged", answer=self._challenge(application, headers))
            token = self.issuer.mint(
                {"common_name": client_id, "sub": "", "email": None},
                audience=application.audience,
                lifetime=application.session_duration,
                issued_at=self.clock(),
            )
            return _Admission("service token", token=token, set_cookie=True)
        linked = headers.get(LINKED_TOKEN_HEADER.lower())
        sent = linked or cookie
        claims = self._verified(sent) if sent else None
        if sent is None or claims is None:
            return _Admission("challenged", answer=self._challenge(application, headers))
        if application.audience in claims["aud"]:
            if not self._in_session(application, sent, claims):
                return _Admission("challenged", answer=self._challenge(application, headers))
            if not self._allowed(application, sent, claims):
                return _Admission("blocked", answer=self._block(application))
            return _Admission("session", token=sent)
        if linked is None:  # a cookie of another application: no session here
            return _Admission("challenged", answer=self._challenge(application, headers))
        if application.linked_apps.isdisjoint(claims["aud"]):
            return _Admission("blocked", answer=self._block(application))
        return _Admission("linked app token", token=self._linked(application, claims))

    def end_session(self, token: str) -> None:
        """Log out: the session of ``token`` is over, whatever its expiry."""
        with self._lock:
            self._ended.add(_digest(token))

    def _verified(self, token: str) -> dict[str, Any] | None:
        """The claims of a token the stand-in signed, unexpired on the edge's clock."""
        try:
            signing_input, header_segment, _, signature = check_token_shape(token)
            header = read_unverified_header(header_segment)
            claims = decode_unverified_claims(token)
            key = next(key for key in self.issuer.published_keys() if key.kid == header.get("kid"))
            key.private_key.public_key().verify(
                _decode_segment(signature), signing_input, padding.PKCS1v15(), hashes.SHA256()
            )
        except (AccessError, ValueError, StopIteration, InvalidSignature):
            return None
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        if (
            header.get("alg") != "RS256"
            or claims.get("iss") != self.issuer.issuer
            or not isinstance(audiences, list)
            or not isinstance(claims.get("exp"), int)
            or claims["exp"] <= self.clock()
        ):
            return None
        claims["aud"] = audiences
        return claims

    def _in_session(
        self, application: EdgeApplication, token: str, claims: Mapping[str, Any]
    ) -> bool:
        issued = claims.get("iat")
        if not isinstance(issued, int) or issued + application.session_duration <= self.clock():
            return False
        with self._lock:
            return _digest(token) not in self._ended

    def _allowed(self, application: EdgeApplication, token: str, claims: Mapping[str, Any]) -> bool:
        common_name = claims.get("common_name")
        if common_name and not claims.get("sub"):
            return common_name in application.service_tokens
        if application.everyone or str(claims.get("email", "")).lower() in application.emails:
            return True
        identity = self.issuer.identity_for(token) or {}
        names = {group.get("name") for group in identity.get("groups", [])}
        return not application.groups.isdisjoint(names)

    def _linked(self, application: EdgeApplication, claims: Mapping[str, Any]) -> str:
        """A token for ``application`` standing for the same identity as ``claims``."""
        kept = {name: claims.get(name) for name in ("email", "sub", "common_name")}
        lifetime = min(application.session_duration, int(claims["exp"] - self.clock()))
        return self.issuer.mint(
            kept, audience=application.audience, lifetime=lifetime, issued_at=self.clock()
        )

    def _challenge(self, application: EdgeApplication, headers: Mapping[str, str]) -> _Answer:
        """401 to ``X-Requested-With``; otherwise a 302 to the application's login page."""
        if "x-requested-with" in headers:
            return _Answer(401, b"", [("Content-Type", "text/plain; charset=utf-8")])
        host = headers.get("host", f"{self.host}:{self.port}")
        query = urlencode({"kid": application.audience, "redirect_url": headers[":path"]})
        location = f"{self.login_origin}{LOGIN_PATH}{quote(host, safe=':[]')}?{query}"
        return _Answer(302, b"", [("Location", location)])

    def _block(self, application: EdgeApplication) -> _Answer:
        """Access's block page: 403, with its ``json_data`` (AUD and ray id)."""
        data = {
            "message": "Forbidden. You don't have permission to view this."
            " Please contact your system administrator.",
            "status_code": 403,
            "aud": application.audience,
            "ray_id": secrets.token_hex(8),
        }
        page = (
            "<!doctype html>\n<html lang=en>\n<title>Forbidden · Cloudflare Access</title>\n"
            "<h1>Forbidden</h1>\n<p>You don't have permission to view this.</p>\n"
            f'<input type="hidden" name="json_data" value="{escape(json.dumps(data))}">\n'
        )
        return _Answer(403, page.encode(), [("Content-Type", "text/html; charset=utf-8")])

    def _logout(self, cookie: str | None) -> _Answer:
        if cookie:
            self.end_session(cookie)
        return _Answer(
            200,
            b"Signed out.\n",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Set-Cookie", f"{TOKEN_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=None"),
            ],
        )

    def _answer(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Answer:
        """What the edge answers ``method target``: its own answer or the app's."""
        path = urlsplit(target).path
        self.calls.add(path)
        lowered = {name.lower(): value for name, value in headers}
        lowered[":path"] = target
        cookie = cookie_value(lowered.get("cookie", ""), TOKEN_COOKIE)
        if path == LOGOUT_PATH:
            return self._logout(cookie)
        forwarded = [
            (name, value)
            for name, value in headers
            if name.lower() not in _NOT_FORWARDED and not name.lower().startswith("cf-access-")
        ]
        try:
            application = self.application_for(path)
        except ValueError:
            return _Answer(400, b"Bad request: an ambiguous path.\n")
        admission = None
        if application is not None:
            admission = self._admit(application, lowered, cookie)
            self.admissions.add(admission.kind)
            if admission.token is None:
                return admission.answer or _Answer(403)
            forwarded.append((TOKEN_HEADER, admission.token))
            email = decode_unverified_claims(admission.token).get("email")
            if email:
                forwarded.append((EMAIL_HEADER, str(email)))
        answer = self._forward(method, target, lowered.get("host"), forwarded, body)
        if admission is not None and admission.set_cookie:
            answer.headers.append(
                ("Set-Cookie", f"{TOKEN_COOKIE}={admission.token}; Path=/; HttpOnly; SameSite=None")
            )
        return answer

    def _forward(
        self,
        method: str,
        target: str,
        host: str | None,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> _Answer:
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", host or f"{self.host}:{self.port}")
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            kept = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in _NOT_FORWARDED
            ]
            return _Answer(response.status, data, kept)
        except OSError:
            return _Answer(502, b"The app behind the edge did not answer.\n")
        finally:
            connection.close()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _EdgeHandler(BaseHTTPRequestHandler):
    """Answers one request for a :class:`LocalEdge` (HTTP/1.0: one per connection)."""

    server: KitHTTPServer
    server_version = "cf-access-local-edge"

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._send(_Answer(400, b"bad Content-Length\n"))
            return
        body = self.rfile.read(length)
        self._send(
            self.server.owner._answer(self.command, self.path, list(self.headers.items()), body)
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def do_HEAD(self) -> None:
        self._handle()

    def _send(self, answer: _Answer) -> None:
        try:
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("edge: %s went away before its answer", self.address_string())

    def log_message(self, format: str, *args: Any) -> None:
        safe = (loggable(arg) if isinstance(arg, str) else arg for arg in args)
        logger.debug("edge %s: " + format, self.address_string(), *safe)
