"""An app with its own user accounts, created on first visit from the Access identity.

- ``/health``: public.
- ``/welcome``: anyone; greets a signed-in user by name (``optional=True``).
- ``/``: a person with an account (created on the first visit); service tokens get 403.
- ``/admin/``: users holding the ``admin`` role, which the ``Admins`` group grants.
- ``/api/me``: the caller's account as JSON, for people and for the machines
  that :data:`~examples.provisioning_app.accounts.MACHINE_ROLES` lets in.

Accounts live in SQLite through Flask-SQLAlchemy (``SQLALCHEMY_DATABASE_URI``,
by default ``provisioning.db`` in the instance folder). The loader is in
``accounts.py``; ``with_flask_login.py`` serves the same accounts through
Flask-Login. Settings come from ``CF_ACCESS_*`` environment variables, then
from the ``config`` argument::

    gunicorn -w 4 'examples.provisioning_app:create_app()'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, abort, jsonify
from flask.typing import ResponseReturnValue

from examples.protected_app import settings_from_environ
from flask_cf_access import AccessIdentity, current_user, get_identity, require_access, user_loaded

from .accounts import cf_access
from .models import User, db

logger = logging.getLogger(__name__)


def create_base_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app with its database and Cloudflare Access set up, and no routes."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///provisioning.db"
    app.config.update(settings_from_environ(os.environ))
    if config:
        app.config.update(config)
    db.init_app(app)
    cf_access.init_app(app)
    with app.app_context():
        db.create_all()
    user_loaded.connect(audit_new_account, app)
    return app


def audit_new_account(app: Flask, user: User, identity: AccessIdentity, created: bool) -> None:
    """Log each account the loader creates: the place to welcome or notify."""
    if created:
        logger.info("New account %d for %s", user.id, identity.name)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application, configured from the environment and then from ``config``."""
    app = create_base_app(config)
    app.register_blueprint(pages)
    app.register_blueprint(api, url_prefix="/api")
    return app


pages = Blueprint("pages", __name__)


@pages.get("/health")
def health() -> ResponseReturnValue:
    """For load balancers: no token needed."""
    return {"status": "ok"}


@pages.get("/welcome")
@require_access(optional=True)
def welcome() -> ResponseReturnValue:
    """A page Access lets everyone see, which greets a signed-in user."""
    if current_user:
        return f"Welcome back, {current_user.name}."
    if get_identity(default=None):
        return "Welcome! You are signed in, but have no account here."
    return "Welcome, stranger."


@pages.get("/")
@require_access(allow_service_tokens=False)
def home() -> ResponseReturnValue:
    """A page for people with an account."""
    roles = ", ".join(sorted(current_user.role_names)) or "none"
    return f"Hello, {current_user.name}. Your roles: {roles}."


@pages.get("/admin/")
@require_access
def admin() -> ResponseReturnValue:
    """For users holding the admin role."""
    if "admin" not in current_user.role_names:
        abort(403)
    return f"Admin area: {current_user.name}"


api = Blueprint("api", __name__)


@api.get("/me")
@require_access
def me() -> ResponseReturnValue:
    """The caller's account, person or machine."""
    user: User = current_user
    return jsonify(
        id=user.id,
        sub=user.sub,
        service_token=user.service_token,
        email=user.email,
        name=user.name,
        department=user.department,
        roles=sorted(user.role_names),
    )
