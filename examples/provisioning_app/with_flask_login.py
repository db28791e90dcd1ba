"""The same accounts behind Flask-Login: ``@login_required`` and ``current_user`` unchanged.

The user comes from the Access token on every request, through the loader in
``accounts.py``; no session cookie is written and none is read to find a user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, abort, render_template_string
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_required

from . import create_base_app
from .accounts import cf_access

login_manager = LoginManager()
cf_access.init_login_manager(login_manager)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The Flask-Login flavour of the application."""
    app = create_base_app(config)
    login_manager.init_app(app)
    app.register_blueprint(pages)
    return app


pages = Blueprint("login_pages", __name__)


@pages.get("/")
@login_required
def home() -> ResponseReturnValue:
    """Any signed-in account, person or machine; templates see ``current_user``."""
    return render_template_string("Hello, {{ current_user.name }}.")


@pages.get("/admin/")
@login_required
def admin() -> ResponseReturnValue:
    """For users holding the admin role."""
    if "admin" not in current_user.role_names:
        abort(403)
    return f"Admin area: {current_user.name}"
