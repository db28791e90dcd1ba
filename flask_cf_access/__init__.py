"""Trust Cloudflare Access at the origin of a Flask (or any WSGI) application."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._browser import logout_blueprint as logout_blueprint
from ._csrf import csrf_exempt as csrf_exempt
from ._requirements import Requirement as Requirement
from ._requirements import require as require
from ._routes import access_guard as access_guard
from ._users import NewUser as NewUser
from ._users import current_user as current_user
from ._users import get_user as get_user
from .decorators import require_access as require_access
from .decorators import require_group as require_group
from .decorators import require_identity as require_identity
from .decorators import require_role as require_role
from .decorators import require_service_token as require_service_token
from .errors import AccessBadRequest as AccessBadRequest
from .errors import AccessError as AccessError
from .errors import AccessForbidden as AccessForbidden
from .errors import AccessUnauthorized as AccessUnauthorized
from .errors import AccessUnavailable as AccessUnavailable
from .errors import ConfigurationError as ConfigurationError
from .errors import NoAccessContext as NoAccessContext
from .errors import Reason as Reason
from .extension import CloudflareAccess as CloudflareAccess
from .gate import AccessGate as AccessGate
from .groups import Group as Group
from .guard import current_identity as current_identity
from .guard import get_claims as get_claims
from .guard import get_identity as get_identity
from .guard import verify_access_in_request as verify_access_in_request
from .identity import AccessIdentity as AccessIdentity
from .settings import AccessSettings as AccessSettings
from .signals import access_denied as access_denied
from .signals import access_granted as access_granted
from .signals import user_loaded as user_loaded
from .wsgi import CloudflareAccessMiddleware as CloudflareAccessMiddleware

try:
    __version__ = version("flask-cf-access")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
