"""The quick start's app: a page for anyone Access lets in, one for admins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_cf_access import (
    CloudflareAccess,
    current_identity,
    require_access,
    require_group,
)

cf_access = CloudflareAccess()

#: Your team, and the AUD tag from the Access application's Overview page.
TEAM_DOMAIN = "acme.cloudflareaccess.com"
AUD_TAG = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        CF_ACCESS_TEAM_DOMAIN=TEAM_DOMAIN,
        CF_ACCESS_AUDIENCE=AUD_TAG,
    )
    if test_config is not None:
        app.config.update(test_config)
    cf_access.init_app(app)

    @app.get("/")
    @require_access
    def home() -> str:
        return f"Hello, {current_identity.name}"

    @app.get("/admin")
    @require_group("Admins")
    def admin() -> str:
        return "Welcome, admin"

    return app
