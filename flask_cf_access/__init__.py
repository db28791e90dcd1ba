"""Trust Cloudflare Access at the origin of a Flask (or any WSGI) application."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._browser import logout_blueprint as logout_blueprint
from ._checker import AccessGate as AccessGate
from ._csrf import csrf_exempt as csrf_exempt
from ._decorators import require_access as require_access
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
from ._errors import NoAccessContext as NoAccessContext
from ._errors import Reason as Reason
from ._extension import CloudflareAccess as CloudflareAccess
from ._groups import Group as Group
from ._identity import AccessIdentity as AccessIdentity
from ._middleware import CloudflareAccessMiddleware as CloudflareAccessMiddleware
from ._request import current_identity as current_identity
from ._request import get_claims as get_claims
from ._request import get_identity as get_identity
from ._request import verify_access_in_request as verify_access_in_request
from ._requirements import Requirement as Requirement
from ._requirements import require as require
from ._routes import access_guard as access_guard
from ._settings import AccessSettings as AccessSettings
from ._signals import access_denied as access_denied
from ._signals import access_granted as access_granted
from ._signals import user_loaded as user_loaded
from ._users import NewUser as NewUser
from ._users import current_user as current_user
from ._users import get_user as get_user

try:
    __version__ = version("flask-cf-access")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
