"""Trust Cloudflare Access at the origin of a Flask (or any WSGI) application."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._core.applications import ApplicationSettings as ApplicationSettings
from ._core.clock import Clock as Clock
from ._core.errors import AccessBadRequest as AccessBadRequest
from ._core.errors import AccessError as AccessError
from ._core.errors import AccessForbidden as AccessForbidden
from ._core.errors import AccessUnauthorized as AccessUnauthorized
from ._core.errors import AccessUnavailable as AccessUnavailable
from ._core.errors import ConfigurationError as ConfigurationError
from ._core.errors import NoAccessContextError as NoAccessContextError
from ._core.errors import Reason as Reason
from ._core.errors import UnknownSettingWarning as UnknownSettingWarning
from ._core.groups import Group as Group
from ._core.identity import AccessIdentity as AccessIdentity
from ._core.profile import AccessProfile as AccessProfile
from ._core.profile import ContextRule as ContextRule
from ._core.profile import ContextRuleKind as ContextRuleKind
from ._core.profile import DeviceSession as DeviceSession
from ._core.profile import IdentityProvider as IdentityProvider
from ._core.profile import MutualTLS as MutualTLS
from ._core.profile import PostureResult as PostureResult
from ._core.profile import ServiceTokenProfile as ServiceTokenProfile
from ._core.requirements import Clause as Clause
from ._core.requirements import IdentityCheck as IdentityCheck
from ._core.requirements import Match as Match
from ._core.requirements import Requirement as Requirement
from ._core.requirements import require as require
from ._core.settings import AccessSettings as AccessSettings
from ._core.signals import access_denied as access_denied
from ._core.signals import access_granted as access_granted
from ._core.signals import onward_call as onward_call
from ._core.signals import user_loaded as user_loaded
from ._core.single_flight import Background as Background
from ._core.tokens import TOKEN_COOKIE as TOKEN_COOKIE
from ._core.tokens import TOKEN_HEADER as TOKEN_HEADER
from ._flask.app_state import verify_token as verify_token
from ._flask.decorators import require_access as require_access
from ._flask.decorators import require_check as require_check
from ._flask.decorators import require_context as require_context
from ._flask.decorators import require_group as require_group
from ._flask.decorators import require_identity as require_identity
from ._flask.decorators import require_role as require_role
from ._flask.decorators import require_service_token as require_service_token
from ._flask.extension import CloudflareAccess as CloudflareAccess
from ._flask.guards import csrf_exempt as csrf_exempt
from ._flask.logout import logout_blueprint as logout_blueprint
from ._flask.request import current_identity as current_identity
from ._flask.request import current_user as current_user
from ._flask.request import get_claims as get_claims
from ._flask.request import get_identity as get_identity
from ._flask.request import get_user as get_user
from ._flask.request import verify_access_in_request as verify_access_in_request
from ._flask.routes import RouteAudit as RouteAudit
from ._flask.routes import RouteStatus as RouteStatus
from ._flask.routes import access_guard as access_guard
from ._flask.session import session_blueprint as session_blueprint
from ._flask.users import NewUser as NewUser
from ._wsgi.middleware import CLAIMS_ENVIRON_KEY as CLAIMS_ENVIRON_KEY
from ._wsgi.middleware import IDENTITY_ENVIRON_KEY as IDENTITY_ENVIRON_KEY
from ._wsgi.middleware import CloudflareAccessMiddleware as CloudflareAccessMiddleware

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
    "Background",
    "Clause",
    "Clock",
    "CloudflareAccess",
    "CloudflareAccessMiddleware",
    "ConfigurationError",
    "ContextRule",
    "ContextRuleKind",
    "DeviceSession",
    "Group",
    "IdentityCheck",
    "IdentityProvider",
    "Match",
    "MutualTLS",
    "NewUser",
    "NoAccessContextError",
    "PostureResult",
    "Reason",
    "Requirement",
    "RouteAudit",
    "RouteStatus",
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
