"""Trust Cloudflare Access at the origin of a Flask (or any WSGI) application."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._app_state import verify_token as verify_token
from ._applications import ApplicationSettings as ApplicationSettings
from ._decorators import require_access as require_access
from ._decorators import require_check as require_check
from ._decorators import require_context as require_context
from ._decorators import require_group as require_group
from ._decorators import require_identity as require_identity
from ._decorators import require_role as require_role
from ._decorators import require_service_token as require_service_token
from ._errors import AccessBadRequest as AccessBadRequest
from ._errors import AccessError as AccessError
from ._errors import AccessForbidden as AccessForbidden
from ._errors import AccessUnauthorized as AccessUnauthorized
from ._errors import AccessUnavailable as AccessUnavailable
from ._errors import ConfigurationError as ConfigurationError
from ._errors import NoAccessContextError as NoAccessContextError
from ._errors import Reason as Reason
from ._errors import UnknownSettingWarning as UnknownSettingWarning
from ._extension import CloudflareAccess as CloudflareAccess
from ._groups import Group as Group
from ._guards import csrf_exempt as csrf_exempt
from ._identity import AccessIdentity as AccessIdentity
from ._logout import logout_blueprint as logout_blueprint
from ._middleware import CLAIMS_ENVIRON_KEY as CLAIMS_ENVIRON_KEY
from ._middleware import IDENTITY_ENVIRON_KEY as IDENTITY_ENVIRON_KEY
from ._middleware import CloudflareAccessMiddleware as CloudflareAccessMiddleware
from ._profile import AccessProfile as AccessProfile
from ._profile import ContextRule as ContextRule
from ._profile import DeviceSession as DeviceSession
from ._profile import IdentityProvider as IdentityProvider
from ._profile import MutualTLS as MutualTLS
from ._profile import PostureResult as PostureResult
from ._profile import ServiceTokenProfile as ServiceTokenProfile
from ._request import current_identity as current_identity
from ._request import current_user as current_user
from ._request import get_claims as get_claims
from ._request import get_identity as get_identity
from ._request import get_user as get_user
from ._request import verify_access_in_request as verify_access_in_request
from ._requirements import Requirement as Requirement
from ._requirements import require as require
from ._routes import RouteAudit as RouteAudit
from ._routes import access_guard as access_guard
from ._session import session_blueprint as session_blueprint
from ._settings import AccessSettings as AccessSettings
from ._signals import access_denied as access_denied
from ._signals import access_granted as access_granted
from ._signals import onward_call as onward_call
from ._signals import user_loaded as user_loaded
from ._tokens import TOKEN_COOKIE as TOKEN_COOKIE
from ._tokens import TOKEN_HEADER as TOKEN_HEADER
from ._users import NewUser as NewUser

try:
    __version__ = version("flask-cf-access")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CLAIMS_ENVIRON_KEY",
    "IDENTITY_ENVIRON_KEY",
    "TOKEN_COOKIE",
    "TOKEN_HEADER",
    "AccessBadRequest",
    "AccessError",
    "AccessForbidden",
    "AccessIdentity",
    "AccessProfile",
    "AccessSettings",
    "AccessUnauthorized",
    "AccessUnavailable",
    "ApplicationSettings",
    "CloudflareAccess",
    "CloudflareAccessMiddleware",
    "ConfigurationError",
    "ContextRule",
    "DeviceSession",
    "Group",
    "IdentityProvider",
    "MutualTLS",
    "NewUser",
    "NoAccessContextError",
    "PostureResult",
    "Reason",
    "Requirement",
    "RouteAudit",
    "ServiceTokenProfile",
    "UnknownSettingWarning",
    "__version__",
    "access_denied",
    "access_granted",
    "access_guard",
    "csrf_exempt",
    "current_identity",
    "current_user",
    "get_claims",
    "get_identity",
    "get_user",
    "logout_blueprint",
    "onward_call",
    "require",
    "require_access",
    "require_check",
    "require_context",
    "require_group",
    "require_identity",
    "require_role",
    "require_service_token",
    "session_blueprint",
    "user_loaded",
    "verify_access_in_request",
    "verify_token",
]
