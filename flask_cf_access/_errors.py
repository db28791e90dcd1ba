"""Exceptions raised when a request cannot be let through.

Every refusal is a werkzeug HTTP exception, so an application customises the
response with a plain ``@app.errorhandler(401)`` (or 403, 503, and 400 for
the WSGI middleware's ambiguous paths). Each carries a
machine :class:`Reason` for the log line; the response body never names the
reason, the token, the audience or the key.

Which status a refusal gets is decided here and only here, by
:data:`STATUS_BY_REASON`: code that refuses names a reason,
``raise refusal(Reason.EXPIRED)``, and the table picks the exception class.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    ServiceUnavailable,
    Unauthorized,
)
from werkzeug.utils import redirect

from ._refusals import (
    BROWSER_NEGOTIATED_ON,
    NEGOTIATED_ON,
    negotiated_body,
    negotiated_headers,
    refusal_cache_headers,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


class Reason(str, Enum):
    """Why a request was refused, for logs and metrics, never for the client."""

    MISSING_TOKEN = "missing_token"
    TOKEN_TOO_LARGE = "token_too_large"
    MALFORMED_TOKEN = "malformed_token"
    BAD_ALGORITHM = "bad_algorithm"
    CRITICAL_HEADER = "critical_header"
    MISSING_KID = "missing_kid"
    UNKNOWN_KID = "unknown_kid"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED_CLAIMS = "malformed_claims"
    MISSING_CLAIM = "missing_claim"
    INVALID_ISSUER = "invalid_issuer"
    INVALID_AUDIENCE = "invalid_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ISSUED_IN_FUTURE = "issued_in_future"
    TOKEN_TOO_OLD = "token_too_old"
    NOT_AN_APP_TOKEN = "not_an_app_token"
    IDENTITY_REFUSED = "identity_refused"
    SERVICE_TOKEN_REFUSED = "service_token_refused"
    NOT_IN_GROUP = "not_in_group"
    NO_ACCOUNT = "no_account"
    NOT_IN_ALL_GROUPS = "not_in_all_groups"
    NO_ROLE = "no_role"
    NOT_ALL_ROLES = "not_all_roles"
    CHECK_FAILED = "check_failed"
    EMAIL_NOT_ALLOWED = "email_not_allowed"
    MALFORMED_EMAIL = "malformed_email"
    UNKNOWN_SERVICE_TOKEN = "unknown_service_token"
    SERVICE_TOKEN_REQUIRED = "service_token_required"
    SERVICE_TOKEN_NOT_ADMITTED = "service_token_not_admitted"
    WRONG_APPLICATION = "wrong_application"
    MFA_REQUIRED = "mfa_required"
    AMR_NOT_ALLOWED = "amr_not_allowed"
    IDP_NOT_ALLOWED = "idp_not_allowed"
    POSTURE_FAILED = "posture_failed"
    WARP_REQUIRED = "warp_required"
    GATEWAY_REQUIRED = "gateway_required"
    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    LOGIN_TOO_OLD = "login_too_old"
    CLIENT_CERTIFICATE_REQUIRED = "client_certificate_required"
    KEYS_UNAVAILABLE = "keys_unavailable"
    IDENTITY_UNAVAILABLE = "identity_unavailable"
    MALFORMED_PROFILE = "malformed_profile"
    AMBIGUOUS_PATH = "ambiguous_path"
    CROSS_SITE_REQUEST = "cross_site_request"

    def __str__(self) -> str:
        return self.value

    @property
    def status(self) -> int:
        """The HTTP status a refusal for this reason is answered with."""
        return STATUS_BY_REASON[self]


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
        status = STATUS_BY_REASON.get(reason) if isinstance(reason, Reason) else None
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


_UNAUTHORIZED = (
    Reason.MISSING_TOKEN,
    Reason.TOKEN_TOO_LARGE,
    Reason.MALFORMED_TOKEN,
    Reason.BAD_ALGORITHM,
    Reason.CRITICAL_HEADER,
    Reason.MISSING_KID,
    Reason.UNKNOWN_KID,
    Reason.BAD_SIGNATURE,
    Reason.MALFORMED_CLAIMS,
    Reason.MISSING_CLAIM,
    Reason.INVALID_ISSUER,
    Reason.INVALID_AUDIENCE,
    Reason.EXPIRED,
    Reason.NOT_YET_VALID,
    Reason.ISSUED_IN_FUTURE,
    Reason.TOKEN_TOO_OLD,
    Reason.NOT_AN_APP_TOKEN,
    Reason.IDENTITY_REFUSED,
)
_FORBIDDEN = (
    Reason.SERVICE_TOKEN_REFUSED,
    Reason.NOT_IN_GROUP,
    Reason.NO_ACCOUNT,
    Reason.NOT_IN_ALL_GROUPS,
    Reason.NO_ROLE,
    Reason.NOT_ALL_ROLES,
    Reason.CHECK_FAILED,
    Reason.EMAIL_NOT_ALLOWED,
    Reason.MALFORMED_EMAIL,
    Reason.UNKNOWN_SERVICE_TOKEN,
    Reason.SERVICE_TOKEN_REQUIRED,
    Reason.SERVICE_TOKEN_NOT_ADMITTED,
    Reason.WRONG_APPLICATION,
    Reason.CROSS_SITE_REQUEST,
    Reason.MFA_REQUIRED,
    Reason.AMR_NOT_ALLOWED,
    Reason.IDP_NOT_ALLOWED,
    Reason.POSTURE_FAILED,
    Reason.WARP_REQUIRED,
    Reason.GATEWAY_REQUIRED,
    Reason.COUNTRY_NOT_ALLOWED,
    Reason.LOGIN_TOO_OLD,
    Reason.CLIENT_CERTIFICATE_REQUIRED,
)
# A get-identity answer whose profile is malformed came from Cloudflare, not the
# client, and says nothing against the user: like an identity that cannot be
# had, the request cannot be judged just now.
_UNAVAILABLE = (Reason.KEYS_UNAVAILABLE, Reason.IDENTITY_UNAVAILABLE, Reason.MALFORMED_PROFILE)
_BAD_REQUEST = (Reason.AMBIGUOUS_PATH,)

#: The one table from refusal reason to HTTP status: 401 for a missing or bad
#: token, 403 for a good token a rule refuses, 503 when keys or identity cannot
#: be had, 400 for a path the middleware cannot judge.
STATUS_BY_REASON: Mapping[Reason, int] = MappingProxyType(
    {
        **dict.fromkeys(_UNAUTHORIZED, 401),
        **dict.fromkeys(_FORBIDDEN, 403),
        **dict.fromkeys(_UNAVAILABLE, 503),
        **dict.fromkeys(_BAD_REQUEST, 400),
    }
)

_CLASS_BY_STATUS: Mapping[int, type[AccessError]] = MappingProxyType(
    {
        cls.code: cls
        for cls in (AccessBadRequest, AccessUnauthorized, AccessForbidden, AccessUnavailable)
        if cls.code is not None
    }
)


def refusal(reason: Reason) -> AccessError:
    """The refusal for ``reason``, of the class its status in :data:`STATUS_BY_REASON` calls for.

    ``raise refusal(Reason.NOT_IN_GROUP)`` raises an :class:`AccessForbidden`.
    """
    return _CLASS_BY_STATUS[STATUS_BY_REASON[reason]](reason)


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
