"""Exceptions raised when a request cannot be let through.

Every refusal is a werkzeug HTTP exception, so an application customises the
response with a plain ``@app.errorhandler(401)`` (or 403, 503, and 400 for
the WSGI middleware's ambiguous paths). Each carries a
machine :class:`Reason` for the log line; the response body never names the
reason, the token, the audience or the key.

Which status a refusal gets is decided here and only here: each
:class:`Reason` member carries its status and its description, and code that
refuses names a reason, ``raise refusal(Reason.EXPIRED)``, whose status
picks the exception class.

A refusal lives here whole: its :class:`Reason`, the exception it is raised
as, the body and headers it is answered with (negotiated with the client's
``Accept``, never cached) and how it is told (one log line, then the
``access_denied`` signal).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from enum import Enum
from html import escape
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    Unauthorized,
)
from werkzeug.http import parse_accept_header
from werkzeug.utils import redirect

from .logsafe import loggable
from .signals import access_denied

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .identity import AccessIdentity

logger = logging.getLogger("flask_cf_access")


class Reason(str, Enum):
    """Why a request was refused, for logs and metrics, never for the client.

    Each member's value is its code (``"expired"``), the word logs, signals
    and :func:`~flask_cf_access.testing.capture_access` carry; beside it
    stand the HTTP status a refusal for it is answered with
    (:attr:`status`) and what it means, for the app's people
    (:attr:`description`; no more for the client than the code). Both are
    written once, here: ``refusal()`` picks the exception class by the
    status, and the CLI and the documentation's table of reasons read both.
    """

    _value_: str
    _status: int
    _description: str

    if TYPE_CHECKING:
        # What a caller sees: Reason("expired") looks the member up by its code,
        # and .value is that code (mypy infers neither through the __new__ below).
        def __new__(cls, value: str) -> Reason: ...

        @property
        def value(self) -> str: ...

    else:

        def __new__(cls, value: str, status: int, description: str) -> Reason:
            """A member of code ``value``, answered with ``status``, meaning ``description``."""
            member = str.__new__(cls, value)
            member._value_ = value
            member._status = status
            member._description = description
            return member

    # 401: no token, or one that does not verify.
    MISSING_TOKEN = (
        "missing_token",
        401,
        "no token, in neither a Cf-Access-Jwt-Assertion header nor a CF_Authorization cookie",
    )
    TOKEN_TOO_LARGE = (
        "token_too_large",
        401,
        "the token is over 16 KB, or its header segment over 1 KB:"
        " larger than any Access token, so it is not parsed",
    )
    MALFORMED_TOKEN = (
        "malformed_token",
        401,
        "not a compact JWS of three base64url segments, or a segment that is not strict"
        " UTF-8 JSON (a BOM, NaN, nesting deeper than 32 levels)",
    )
    BAD_ALGORITHM = (
        "bad_algorithm",
        401,
        "the header's alg is not RS256, the only algorithm accepted",
    )
    CRITICAL_HEADER = "critical_header", 401, "the header has a crit parameter, which is refused"
    MISSING_KID = "missing_kid", 401, "the header names no kid to choose the key by"
    UNKNOWN_KID = (
        "unknown_kid",
        401,
        "the kid is not among the team's published keys, even after a refresh:"
        " a token of another team, or signed with a key rotated out",
    )
    BAD_SIGNATURE = "bad_signature", 401, "the signature does not verify with the team's key"
    MALFORMED_CLAIMS = (
        "malformed_claims",
        401,
        "a claim (the groups claim too) has the wrong type or shape,"
        " or a time claim lies outside the years 1970 to 9999",
    )
    MISSING_CLAIM = (
        "missing_claim",
        401,
        "a required claim is missing: iss, aud or exp, and iat when a maximum token age is set",
    )
    INVALID_ISSUER = "invalid_issuer", 401, "iss is not this app's team"
    INVALID_AUDIENCE = (
        "invalid_audience",
        401,
        "aud holds none of this app's AUD tags: a token of another Access application",
    )
    EXPIRED = "expired", 401, "exp is past, beyond the leeway"
    NOT_YET_VALID = (
        "not_yet_valid",
        401,
        "nbf is still ahead, beyond the leeway (check this machine's clock)",
    )
    ISSUED_IN_FUTURE = (
        "issued_in_future",
        401,
        "iat is ahead of the clock, beyond the leeway (check this machine's clock)",
    )
    TOKEN_TOO_OLD = (
        "token_too_old",
        401,
        "the token was issued longer ago than CF_ACCESS_MAX_TOKEN_AGE allows",
    )
    NOT_AN_APP_TOKEN = (
        "not_an_app_token",
        401,
        "type is not 'app': not an application token (an org token, say)",
    )
    IDENTITY_REFUSED = (
        "identity_refused",
        401,
        "get-identity refused the token (a 4xx other than 408 or 429):"
        " its Access session was revoked or has ended, so the user signs in again",
    )
    # 403: a good token that a rule refuses.
    SERVICE_TOKEN_REFUSED = (
        "service_token_refused",
        403,
        "a service token, on a view with allow_service_tokens=False",
    )
    NOT_IN_GROUP = "not_in_group", 403, "the identity is in none of the groups asked for"
    NO_ACCOUNT = "no_account", 403, "the app's user loader found no account for this identity"
    NOT_IN_ALL_GROUPS = (
        "not_in_all_groups",
        403,
        'the identity is not in every one of the groups asked for (match="all")',
    )
    NO_ROLE = "no_role", 403, "the identity has none of the roles asked for"
    NOT_ALL_ROLES = (
        "not_all_roles",
        403,
        'the identity lacks one of the roles asked for (match="all")',
    )
    CHECK_FAILED = (
        "check_failed",
        403,
        "the view's own check on the identity did not return True, or raised"
        " (the traceback is logged)",
    )
    EMAIL_NOT_ALLOWED = (
        "email_not_allowed",
        403,
        "the e-mail is outside CF_ACCESS_ALLOWED_EMAIL_DOMAINS and CF_ACCESS_ALLOWED_EMAILS",
    )
    MALFORMED_EMAIL = (
        "malformed_email",
        403,
        "e-mail rules are set and the e-mail is not a well-formed address: no rule admits it",
    )
    UNKNOWN_SERVICE_TOKEN = (
        "unknown_service_token",
        403,
        "the service token is not in CF_ACCESS_SERVICE_TOKENS",
    )
    SERVICE_TOKEN_REQUIRED = (
        "service_token_required",
        403,
        "only service tokens are let in here, and this is a user",
    )
    SERVICE_TOKEN_NOT_ADMITTED = (
        "service_token_not_admitted",
        403,
        "this service token is not among the client ids the view lets in",
    )
    WRONG_APPLICATION = (
        "wrong_application",
        403,
        "the token is for another of CF_ACCESS_APPLICATIONS than the one covering this path,"
        " or none covers the path",
    )
    CROSS_SITE_REQUEST = (
        "cross_site_request",
        403,
        "an unsafe request carrying the Access cookie came from another origin",
    )
    MFA_REQUIRED = "mfa_required", 403, "the user did not sign in with more than one factor"
    AMR_NOT_ALLOWED = (
        "amr_not_allowed",
        403,
        "the user signed in with none of the methods (amr) asked for",
    )
    IDP_NOT_ALLOWED = (
        "idp_not_allowed",
        403,
        "the user signed in through none of the identity providers asked for",
    )
    POSTURE_FAILED = (
        "posture_failed",
        403,
        "a device posture check asked for has no result, or did not pass",
    )
    WARP_REQUIRED = "warp_required", 403, "the user did not come through the WARP client"
    GATEWAY_REQUIRED = (
        "gateway_required",
        403,
        "the user's WARP is not enrolled in the team's Gateway",
    )
    COUNTRY_NOT_ALLOWED = (
        "country_not_allowed",
        403,
        "the user authenticated from none of the countries asked for",
    )
    LOGIN_TOO_OLD = (
        "login_too_old",
        403,
        "the user signed in longer ago than the view's max_login_age allows",
    )
    CLIENT_CERTIFICATE_REQUIRED = (
        "client_certificate_required",
        403,
        "Access saw no valid client certificate (mTLS)",
    )
    # 503: the request cannot be judged just now. A profile of the wrong shape
    # came from Cloudflare, not the client, and says nothing against the user.
    KEYS_UNAVAILABLE = (
        "keys_unavailable",
        503,
        "the team's keys could not be fetched, and no earlier set is at hand",
    )
    IDENTITY_UNAVAILABLE = (
        "identity_unavailable",
        503,
        "get-identity failed, answered nonsense, or answered about someone other than"
        " the token's user",
    )
    MALFORMED_PROFILE = (
        "malformed_profile",
        503,
        "get-identity answered a profile field of the wrong shape, on a view with a rule"
        " on the profile",
    )
    # 400: a path the WSGI middleware cannot judge.
    AMBIGUOUS_PATH = (
        "ambiguous_path",
        400,
        "the middleware cannot tell which path the application would read"
        " (a dot segment, an encoded slash, a backslash or a control character)",
    )

    def __str__(self) -> str:
        return self.value

    @property
    def status(self) -> int:
        """The HTTP status a refusal for this reason is answered with: 401 for a
        missing or bad token, 403 for a good token a rule refuses, 503 when keys
        or identity cannot be had, 400 for a path the WSGI middleware cannot judge."""
        return self._status

    @property
    def description(self) -> str:
        """What this reason means, for people: one line of plain text, as
        ``flask cf-access verify`` prints it and the documentation's table of
        reasons shows it."""
        return self._description


# The response a refusal gets: JSON for clients that prefer it, a small HTML
# page for browsers, plain text otherwise. No body names the reason, the token,
# the audience or a key. A refusal's form depends on request headers, so it
# names them in ``Vary`` (``Accept``; with the login redirect,
# ``X-Requested-With`` too), and no cache keeps it (``Cache-Control:
# no-store``): it belongs to one request's token, and the next request, signed
# in, must not be answered from it.

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


class AccessError(HTTPException):
    """Base of every refusal; ``reason`` says why, for the log only.

    The default body is negotiated with the client's ``Accept`` header: JSON
    (``{"error": "unauthorized"}``), a small HTML page, or plain text; none
    names the reason. A browser's GET refused for want of a token (or with a
    token of another application, ``wrong_application``) is sent to the
    Access login page instead when ``CF_ACCESS_UNAUTHORIZED = "redirect"``
    (:attr:`login_redirect` holds where; a custom ``errorhandler(401)`` still
    gets the error first).
    """

    #: Why the request was refused.
    reason: Reason
    #: The Access login page a browser is sent to instead of this refusal, if any.
    login_redirect: str | None = None
    #: The request headers this refusal's form depends on, for ``Vary``.
    varies_with: tuple[str, ...] = NEGOTIATED_ON

    def __init__(self, reason: Reason) -> None:
        """A refusal for ``reason``, which must be one of this class's status.

        :raises ValueError: the class's status is not :attr:`Reason.status`
            (``AccessForbidden(Reason.EXPIRED)``), or ``reason`` is no :class:`Reason`.
        """
        status = reason.status if isinstance(reason, Reason) else None
        if status != self.code:
            if status is None:
                raise ValueError(f"{reason!r} is not a Reason.")
            raise ValueError(
                f"Reason.{reason.name} is answered with {status}, not {self.code}: "
                f"raise {_CLASS_BY_STATUS[status].__name__}(Reason.{reason.name})."
            )
        super().__init__()
        self.reason = reason

    def get_body(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> str:
        """The refusal's body, in the form the client prefers."""
        return negotiated_body(self.code or 500, self.name, self.description or "", environ)

    def get_headers(
        self, environ: WSGIEnvironment | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """The refusal's headers: its negotiated ``Content-Type``, ``Vary`` and
        ``Cache-Control: no-store``."""
        return negotiated_headers(environ, super().get_headers(environ, scope), self.varies_with)

    @property
    def sent_status(self) -> int:
        """The status the client is answered with: 302 when it is sent to the login
        page (:attr:`login_redirect`), else the refusal's own ``code``."""
        return 302 if self.login_redirect is not None else self.code or 500

    def may_send_to_login(self) -> None:
        """Mark this refusal as one a browser may be sent to sign in for instead
        (``CF_ACCESS_UNAUTHORIZED = "redirect"``): its form then depends on
        ``X-Requested-With`` too, whether or not this client is sent."""
        self.varies_with = BROWSER_NEGOTIATED_ON

    def send_to_login(self, url: str) -> None:
        """Answer with a redirect to the Access login page at ``url`` instead of the refusal.

        The redirect names in ``Vary`` the headers that chose it, and is not cached.
        """
        self.may_send_to_login()
        self.login_redirect = url
        response = redirect(url, 302)
        for name, value in refusal_cache_headers(self.varies_with):
            response.headers[name] = value
        self.response = response


class AccessBadRequest(AccessError, BadRequest):
    """400: the WSGI middleware cannot tell which path the request is for.

    Its ``PATH_INFO`` has a ``.`` or ``..`` segment, an encoded ``/`` or
    ``\\``, a backslash or a control character, raw or percent-encoded: the
    application behind may read it as another path than the one a rule would
    be judged on.
    """

    description = "The request path cannot be accepted."


class AccessUnauthorized(AccessError, Unauthorized):
    """401: the request carries no token, or one that does not verify."""

    description = "A valid Cloudflare Access token is required."


class AccessForbidden(AccessError, Forbidden):
    """403: the token verified, but the identity may not use this resource."""

    description = "You do not have access to this resource."


class AccessUnavailable(AccessError, ServiceUnavailable):
    """503: the signing keys or the identity could not be had just now."""

    description = "Access cannot be checked right now. Please try again shortly."


_CLASS_BY_STATUS: Mapping[int, type[AccessError]] = MappingProxyType(
    {
        cls.code: cls
        for cls in (AccessBadRequest, AccessUnauthorized, AccessForbidden, AccessUnavailable)
        if cls.code is not None
    }
)


def refusal(reason: Reason) -> AccessError:
    """The refusal for ``reason``, of the class its :attr:`Reason.status` calls for.

    ``raise refusal(Reason.NOT_IN_GROUP)`` raises an :class:`AccessForbidden`.
    """
    return _CLASS_BY_STATUS[reason.status](reason)


class ConfigurationError(ValueError):
    """A ``CF_ACCESS_*`` setting is missing or invalid; the message names it."""


class UnknownSettingWarning(UserWarning):
    """A ``CF_ACCESS_*`` key that no setting has (a misspelling, say) was ignored.

    Warned once per app (or middleware) naming every such key and the known
    key nearest to it. Silence it with ``warnings.filterwarnings("ignore",
    category=UnknownSettingWarning)``.
    """


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is a deprecated spelling of ``new``, kept for one release.

    A :class:`DeprecationWarning` pointing, by default, at the caller of the
    function or property that calls this.
    """
    warnings.warn(
        f"{old} is deprecated and goes in the next release; use {new}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


class NoAccessContextError(RuntimeError):
    """Verified claims were asked for outside a request that passed a check."""


# How a refusal is told, whoever refuses (the checker for the decorators,
# guards and middleware; the middleware's path judgement; the user loader):
# one log line, then the ``access_denied`` signal.


def report_refusal(
    sender: object,
    error: AccessError,
    *,
    method: str,
    path: str,
    identity: AccessIdentity | None,
) -> None:
    """Tell of one refusal: one log line, then the ``access_denied`` signal.

    The line says what the client was sent: ``401 missing_token``, or
    ``302 missing_token (to the login page)`` for a browser sent to sign in.
    The method and path come from the client, so they are escaped for the
    log (a ``%0D%0A`` in a path cannot write a line of its own); the token
    is never logged.
    """
    logger.warning(
        "Cloudflare Access refused %s %s: %d %s%s",
        loggable(method),
        loggable(path),
        error.sent_status,
        error.reason,
        "" if error.login_redirect is None else " (to the login page)",
    )
    if access_denied.receivers:
        access_denied.send(
            sender,
            error=error,
            reason=error.reason,
            method=method,
            path=path,
            identity=identity,
        )
