"""Calling other Access apps: the one policy behind the ``requests`` and ``httpx`` auths.

Sans-IO: :meth:`OnwardPolicy.start` says what to add to a request (and
refuses one that must not be sent), :meth:`OnwardPolicy.finish` reads the
answer (and turns Access's into typed errors). The HTTP clients' auths
(:mod:`._onward_requests`, :mod:`._onward_httpx`) only carry these out.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from html import unescape
from ipaddress import ip_address
from typing import Any, Protocol
from urllib.parse import parse_qs, urljoin, urlsplit

from flask import has_request_context, request

from .._core.browser import LOGIN_PATH
from .._core.clock import Clock, system_time
from .._core.csrf import origin_of
from .._core.errors import ConfigurationError, warn_renamed
from .._core.identity import AccessIdentity
from .._core.json_input import parse_json
from .._core.logsafe import loggable
from .._core.signals import onward_call
from .._core.tokens import TOKEN_COOKIE, read_unverified_claims, sent_token
from .._flask.request import get_identity

logger = logging.getLogger("flask_cf_access.onward")

#: The headers a service token is sent in.
CLIENT_ID_HEADER = "CF-Access-Client-Id"
CLIENT_SECRET_HEADER = "CF-Access-Client-Secret"
#: The header a Linked App Token (the user's token for this app) is sent in.
LINKED_TOKEN_HEADER = "Cf-Access-Token"
#: The settings (or environment variables) a service token is read from.
CLIENT_ID_KEY = "CF_ACCESS_CLIENT_ID"
CLIENT_SECRET_KEY = "CF_ACCESS_CLIENT_SECRET"

#: What an AUD tag read from Access's answers may be (real ones are 64 hex digits).
_TAG = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_LOOPBACK_NAMES = frozenset({"localhost"})
#: How much of an answer is read to recognise Access's block page.
_BLOCK_PAGE_SCAN = 64 * 1024


class Answer(Protocol):
    """What both clients' responses give: status, headers (case-insensitive) and text."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...


class OnwardError(Exception):
    """A call to another Access app was not made, or Access did not let it through.

    The message names the target and what to do; it never holds a token or a
    secret. ``target`` is the URL called (scheme, host and path);
    ``application`` the AUD tag of the Access application that answered,
    when it said.
    """

    def __init__(self, message: str, *, target: str, application: str | None = None) -> None:
        super().__init__(message)
        self.target = target
        self.application = application


class OnwardRefusedError(OnwardError):
    """Not sent: the target (or a redirect) is off the allow-list, or no token may go."""


class AccessChallengeError(OnwardError):
    """Access answered instead of the target app: the credentials did not get through."""

    #: The status Access answered with (302, 401 or 403).
    status: int = 0


class AccessLoginRequiredError(AccessChallengeError):
    """Access asked to sign in: a 302 to its login page, or a 401. No redirect was followed."""


class AccessBlockedError(AccessChallengeError):
    """Access's block page (403): the identity was recognised and its policy refused it."""


class ServiceToken:
    """A service token's client id and secret. The secret is never shown.

    ``repr`` and ``str`` name the client id only; nothing in this package
    logs, signals or raises the secret.
    """

    __slots__ = ("_secret", "client_id")

    def __init__(self, client_id: str, client_secret: str) -> None:
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise ValueError(f"a service token's {name} must be a non-empty printable string")
        self.client_id = client_id.strip()
        self._secret = client_secret.strip()

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None = None) -> ServiceToken:
        """The token in ``CF_ACCESS_CLIENT_ID`` and ``CF_ACCESS_CLIENT_SECRET`` of
        ``config`` (e.g. ``app.config``); by default, of the environment.

        :raises ConfigurationError: naming the key that is missing or empty (never its value).
        """
        source: Mapping[str, Any] = os.environ if config is None else config
        values = []
        for key in (CLIENT_ID_KEY, CLIENT_SECRET_KEY):
            value = source.get(key)
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise ConfigurationError(f"{key} must be set to the service token's value.")
            values.append(value)
        return cls(values[0], values[1])

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> ServiceToken:
        """Deprecated spelling of :meth:`from_mapping`, kept for one release."""
        warn_renamed("ServiceToken.from_config", "ServiceToken.from_mapping")
        return cls.from_mapping(config)

    def headers(self) -> dict[str, str]:
        """The two headers Access takes a service token in."""
        return {CLIENT_ID_HEADER: self.client_id, CLIENT_SECRET_HEADER: self._secret}

    def __repr__(self) -> str:
        return f"ServiceToken(client_id={self.client_id!r}, client_secret=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a ServiceToken is not pickled: its secret would go with it")


@dataclass(frozen=True)
class OnwardCall:
    """One call in flight: where to, as whom, and with what (kept from logs).

    :meth:`OnwardPolicy.start` makes it; a client's auth hands it back to the
    policy's other methods for each hop and answer.
    """

    #: The HTTP method.
    method: str
    #: Scheme, host and path of the URL called (no query).
    target: str
    #: Its origin, one of the policy's.
    origin: str
    #: The service token's client id, or the forwarded user's name.
    identity: str
    #: Whether the call carries the Access session cookie Access set for the
    #: service token, rather than the token's own headers.
    used_cookie: bool


@dataclass(frozen=True)
class _Cookie:
    token: str
    expires: float


class OnwardPolicy:
    """Who calls other Access apps, and where: one policy for every HTTP client.

    Either with a service token::

        reports = OnwardPolicy(
            ["https://reports.example.com"], service_token=ServiceToken.from_mapping()
        )
        requests.get("https://reports.example.com/api/daily", auth=AccessRequestsAuth(reports))

    or as the user of the current (verified) request, forwarded as a Linked
    App Token in ``Cf-Access-Token``::

        as_user = OnwardPolicy(["https://reports.example.com"], forward_user=True)

    :param origins: the only origins (``https://host[:port]``) credentials are
        sent to; ``http://`` only for this machine (tests). A redirect to
        any other origin is refused, and never followed with credentials.
    :param service_token: call as this service token.
    :param forward_user: call as the current request's identity, with its own
        verified token (read from the package's per-request state, never
        from a header the package has not verified).
    :param forward_service_tokens: with ``forward_user``, also forward the
        token of a service token calling this app (refused by default).
    :param reuse_cookie: with ``service_token``, send the ``CF_Authorization``
        cookie Access returns for an origin instead of the secret, until it
        expires (the application must accept it: Access's default).
    :param expiry_margin: seconds before its expiry a token is no longer sent.
    :param clock: the time, for expiries.
    :raises ValueError: no origin, an origin that is not one, plain ``http://``
        off this machine, or neither or both of ``service_token`` and ``forward_user``.
    """

    def __init__(
        self,
        origins: Iterable[str],
        *,
        service_token: ServiceToken | None = None,
        forward_user: bool = False,
        forward_service_tokens: bool = False,
        reuse_cookie: bool = False,
        expiry_margin: float = 10.0,
        clock: Clock = system_time,
    ) -> None:
        if isinstance(origins, str):
            origins = (origins,)
        self.origins = frozenset(_allowed_origin(origin) for origin in origins)
        if not self.origins:
            raise ValueError("an onward policy needs at least one origin to call")
        if (service_token is None) == (not forward_user):
            raise ValueError("give either a service_token or forward_user=True, not both")
        if service_token is not None and not isinstance(service_token, ServiceToken):
            raise TypeError("service_token must be a ServiceToken")
        if reuse_cookie and service_token is None:
            raise ValueError("reuse_cookie is for a service token's cookie")
        self.service_token = service_token
        self.forward_user = forward_user
        self.forward_service_tokens = forward_service_tokens
        self.reuse_cookie = reuse_cookie
        self.expiry_margin = expiry_margin
        self.clock = clock
        self._cookies: dict[str, _Cookie] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = repr(self.service_token) if self.service_token else "forward_user=True"
        return f"<OnwardPolicy {sorted(self.origins)} {mode}>"

    # -- before sending --------------------------------------------------

    def start(
        self, method: str, url: str, *, fresh: bool = False
    ) -> tuple[dict[str, str], OnwardCall]:
        """The headers to add to ``method url``, and the call to :meth:`finish`.

        :param fresh: do not use a remembered cookie (it was just refused).
        :raises OnwardRefusedError: the origin is not allowed, or no token may be sent.
        """
        target = _target(url)
        origin = origin_of(url)
        if origin is None or origin not in self.origins:
            error = OnwardRefusedError(
                f"Not calling {target}: its origin is not among the onward policy's"
                " origins. Add it to OnwardPolicy(origins=...) if it is an Access app"
                " you mean to send credentials to.",
                target=target,
            )
            self._report(OnwardCall(method, target, origin or "", "", False), None, error)
            raise error
        if self.service_token is not None:
            cookie = None if fresh else self._cookie_for(origin)
            call = OnwardCall(
                method, target, origin, self.service_token.client_id, cookie is not None
            )
            if cookie is not None:
                return {"Cookie": f"{TOKEN_COOKIE}={cookie}"}, call
            return self.service_token.headers(), call
        token, name = self._user_token(method, target, origin)
        return {LINKED_TOKEN_HEADER: token}, OnwardCall(method, target, origin, name, False)

    def check_hop(self, call: OnwardCall, url: str) -> OnwardCall:
        """Refuse a request of ``call`` to ``url`` (a redirect) off the call's origin;
        else the call as it goes on, to ``url``.

        :raises AccessLoginRequiredError: ``url`` is Access's login page.
        :raises OnwardRefusedError: ``url`` is on another origin.
        """
        if origin_of(url) == call.origin:
            target = _target(url)
            return call if target == call.target else replace(call, target=target)
        error: OnwardError | None = self._login_redirect(call, url)
        if error is not None and call.used_cookie:
            self.forget_cookie(call.origin)  # refused: the next call sends the secret
        if error is None:
            error = OnwardRefusedError(
                f"Not following the redirect of {call.target} to another origin"
                f" ({_target(url)}): credentials never leave {call.origin}.",
                target=call.target,
            )
        self._report(call, None, error)
        raise error

    def _login_redirect(self, call: OnwardCall, url: str) -> AccessLoginRequiredError | None:
        """The error a redirect to ``url`` amounts to, if it is Access's login page."""
        where = urlsplit(url)
        if not where.path.startswith(LOGIN_PATH):
            return None
        kid = _tag((parse_qs(where.query).get("kid") or [""])[0])
        error = AccessLoginRequiredError(
            _login_message(self, call, kid), target=call.target, application=kid
        )
        error.status = 302
        return error

    def _user_token(self, method: str, target: str, origin: str) -> tuple[str, str]:
        """The verified token of the current request, and its identity's name."""
        identity = get_identity(default=None) if has_request_context() else None
        token = None
        if identity is None:
            refused = (
                "there is no verified Access identity here: forward the user only from a"
                " request that passed a check (@require_access, a guard)"
            )
        elif identity.is_service_token and not self.forward_service_tokens:
            refused = (
                "the identity calling this app is a service token; give the policy its own"
                " service_token, or forward_service_tokens=True"
            )
        else:
            token, refused = self._forwardable(identity)
        name = identity.name if identity is not None else ""
        if token is None:
            error = OnwardRefusedError(
                f"Not forwarding the user to {target}: {refused}.", target=target
            )
            self._report(OnwardCall(method, target, origin, name, False), None, error)
            raise error
        return token, name

    def _forwardable(self, identity: AccessIdentity) -> tuple[str | None, str]:
        """The request's token, if it is the one verified for ``identity`` and lives on;
        else ``None`` and why not."""
        header, cookie = sent_token(request)
        token = header if header is not None else cookie
        if token is None or not _same_token(token, identity.claims):
            return None, "the request's token is not the one that was verified"
        expires = identity.claims.get("exp")
        if not isinstance(expires, (int, float)) or expires - self.expiry_margin <= self.clock():
            return None, (
                f"the user's token expires within {self.expiry_margin:g} seconds;"
                " sign in again and retry"
            )
        return token, ""

    def _cookie_for(self, origin: str) -> str | None:
        if not self.reuse_cookie:
            return None
        with self._lock:
            cookie = self._cookies.get(origin)
            if cookie is not None and cookie.expires - self.expiry_margin <= self.clock():
                del self._cookies[origin]
                cookie = None
        return None if cookie is None else cookie.token

    def forget_cookie(self, origin: str) -> None:
        """Drop the cookie remembered for ``origin`` (Access refused it)."""
        with self._lock:
            self._cookies.pop(origin, None)

    # -- after the answer ------------------------------------------------

    def challenge_of(self, call: OnwardCall, answer: Answer) -> AccessChallengeError | None:
        """The error ``answer`` amounts to, if it is one of Access's; else ``None``.

        Its body is read only for a 403, to tell Access's block page from the app's own.
        """
        status, headers = answer.status_code, answer.headers
        location = headers.get("Location")
        error: AccessChallengeError | None = None
        if 300 <= status < 400 and location is not None:
            error = self._login_redirect(call, urljoin(call.target, location))
        elif status == 401:
            error = AccessLoginRequiredError(_login_message(self, call, None), target=call.target)
        elif status == 403:
            aud = _block_page_aud(headers, answer)
            if aud is not None:
                error = AccessBlockedError(
                    f"Access blocked the call to {call.target} as {call.identity or 'nobody'}"
                    f" (application {aud or 'unknown'}): its policy does not admit this"
                    f" identity. {_what_to_do(self)}",
                    target=call.target,
                    application=aud or None,
                )
        if error is not None:
            error.status = status
        return error

    def refuses_cookie(self, call: OnwardCall, answer: Answer) -> bool:
        """Whether Access asked to sign in though ``call`` sent a remembered cookie.

        The clients then forget it (:meth:`forget_cookie`) and send the call
        once more with the service token.
        """
        return call.used_cookie and isinstance(
            self.challenge_of(call, answer), AccessLoginRequiredError
        )

    def finish(self, call: OnwardCall, answer: Answer, cookie: str | None) -> None:
        """Read the answer to ``call``: remember a new cookie, report, raise Access's refusals.

        A redirect to another origin is refused here too, though not followed.

        :param cookie: the ``CF_Authorization`` cookie the answer set, if any.
        :raises AccessChallengeError: Access answered instead of the app.
        :raises OnwardRefusedError: a redirect to another origin.
        """
        status, headers = answer.status_code, answer.headers
        error: OnwardError | None = self.challenge_of(call, answer)
        location = headers.get("Location")
        if error is None and 300 <= status < 400 and location is not None:
            self.check_hop(call, urljoin(call.target, location))
        if error is None and cookie and self.reuse_cookie:
            self._remember(call.origin, cookie)
        self._report(call, status, error)
        if error is not None:
            raise error

    def _remember(self, origin: str, token: str) -> None:
        expires = _unverified_expiry(token)
        if expires is None:
            return
        with self._lock:
            self._cookies[origin] = _Cookie(token, expires)

    def _report(self, call: OnwardCall, status: int | None, error: OnwardError | None) -> None:
        """One log line and one signal per call; neither holds a token or a secret."""
        if error is not None:
            logger.warning(
                "onward %s %s as %s refused: %s",
                call.method,
                loggable(call.target),
                loggable(call.identity or "-"),
                type(error).__name__,
            )
        onward_call.send(
            self,
            method=call.method,
            target=call.target,
            status=status,
            identity=call.identity or None,
            error=error,
        )


def _allowed_origin(text: str) -> str:
    origin = origin_of(text)
    parts = urlsplit(text.strip())
    if origin is None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not an origin (scheme://host[:port])")
    if origin.startswith("http://") and not _is_loopback(parts.hostname or ""):
        raise ValueError(f"{text!r}: credentials go over https only (http for this machine only)")
    return origin


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _target(url: str) -> str:
    """``url`` without its query, fragment or user info, escaped: what messages and
    signals name (a redirect's URL comes from the remote end)."""
    parts = urlsplit(url)
    origin = origin_of(url) or f"{parts.scheme}://{parts.hostname or ''}"
    return loggable(origin + (parts.path or "/"))


def _same_token(token: str, claims: Mapping[str, Any]) -> bool:
    """Whether ``token`` carries exactly the verified ``claims`` (the request's token was
    read again, so this makes sure it is the one that was verified)."""
    try:
        sent = read_unverified_claims(token)
    except ValueError:
        return False
    return _same_json(sent, claims)


def _same_json(sent: object, verified: object) -> bool:
    """Equal JSON values, read as parsed (lists) and as frozen (tuples, read-only mappings)."""
    if isinstance(sent, Mapping) and isinstance(verified, Mapping):
        return sent.keys() == verified.keys() and all(
            _same_json(sent[key], verified[key]) for key in sent
        )
    if isinstance(sent, (list, tuple)) and isinstance(verified, (list, tuple)):
        return len(sent) == len(verified) and all(map(_same_json, sent, verified))
    return type(sent) is type(verified) and sent == verified


def _unverified_expiry(token: str) -> float | None:
    try:
        expires = read_unverified_claims(token).get("exp")
    except ValueError:
        return None
    return float(expires) if isinstance(expires, (int, float)) else None


def _block_page_aud(headers: Mapping[str, str], answer: Answer) -> str | None:
    """The AUD on Access's block page (``""`` when it names none); ``None`` if not one."""
    if not headers.get("Content-Type", "").lower().startswith("text/html"):
        return None
    page = answer.text[:_BLOCK_PAGE_SCAN]
    marker = 'name="json_data" value="'
    start = page.find(marker)
    if start < 0:
        return None
    end = page.find('"', start + len(marker))
    try:
        data = parse_json(unescape(page[start + len(marker) : end]).encode())
    except ValueError:
        return ""
    aud = data.get("aud") if isinstance(data, dict) else None
    return _tag(aud) or ""


def _tag(text: object) -> str | None:
    """``text`` if it can be an AUD tag (read from a remote answer); else ``None``."""
    return text if isinstance(text, str) and _TAG.fullmatch(text) else None


def _what_to_do(policy: OnwardPolicy) -> str:
    if policy.service_token is not None:
        return (
            "In the Access dashboard, give the application a Service Auth policy"
            f" that includes the service token {policy.service_token.client_id!r}."
        )
    return (
        "In the Access dashboard, give the application a Service Auth policy with"
        " a Linked App Token rule naming the calling application."
    )


def _login_message(policy: OnwardPolicy, call: OnwardCall, kid: str | None) -> str:
    application = f" (application {kid})" if kid else ""
    return (
        f"Access asked to sign in instead of answering {call.method} {call.target}"
        f"{application}: the credentials were missing, expired or not accepted."
        f" No redirect was followed. {_what_to_do(policy)}"
    )


def add_cookie(existing: str | None, pair: str) -> str:
    """A ``Cookie`` header of ``existing`` cookies and the ``name=value`` ``pair``."""
    return f"{existing}; {pair}" if existing else pair


def drop_cookie(existing: str | None, name: str) -> str:
    """A ``Cookie`` header of ``existing`` cookies without the one called ``name``."""
    kept = [
        part.strip()
        for part in (existing or "").split(";")
        if part.strip() and part.strip().partition("=")[0] != name
    ]
    return "; ".join(kept)
