"""What ``init_app`` keeps in ``app.extensions``, and the look-up of an app's checker.

Below everything Flask-facing: the request primitive, the decorators, the
route audit, the user loader and the logout view find the app's state here,
and only :class:`~flask_cf_access.CloudflareAccess` puts it there.
"""

from __future__ import annotations

from flask import Flask, current_app

from ._checker import AccessChecker

#: The app's :class:`~flask_cf_access._checker.AccessChecker` (settings, keys, caches).
EXTENSION_KEY = "cf_access"
#: The extension object's user loader (:class:`~flask_cf_access._users.UserLoading`).
USERS_KEY = "cf_access_users"
#: ``CF_ACCESS_PROTECT_ALL`` and ``CF_ACCESS_PUBLIC_ENDPOINTS``
#: (:class:`~flask_cf_access._routes.RoutePolicy`).
ROUTES_KEY = "cf_access.routes"

#: What every look-up says when ``init_app`` was not called.
NOT_SET_UP = "Cloudflare Access is not set up on this app: call CloudflareAccess.init_app(app)."


def get_checker(app: Flask | None = None) -> AccessChecker:
    """The checker of ``app``, by default the current app.

    :raises RuntimeError: ``CloudflareAccess.init_app`` was not called on it.
    """
    checker = (app or current_app).extensions.get(EXTENSION_KEY)
    if not isinstance(checker, AccessChecker):
        raise RuntimeError(NOT_SET_UP)
    return checker
