"""One origin behind two Access applications: all on /, a few on /admin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask
from flask_cf_access import (
    CloudflareAccess,
    access_guard,
    current_identity,
    require,
    require_access,
)

#: The two applications as the Access dashboard has them (their AUD tags from
#: each application's Overview page).
APPLICATIONS = {
    "portal": {"audience": "a1" * 32, "paths": ["/"]},
    "admin": {"audience": "b2" * 32, "paths": ["/admin"]},
}

cf_access = CloudflareAccess()
admin = Blueprint("admin", __name__, url_prefix="/admin")
# Every view of the blueprint belongs to the admin application: a token
# minted for the portal gets 403 (wrong_application) here.
admin.before_request(
    access_guard(require(groups=["Admins"]), application="admin")
)


@admin.get("/")
def dashboard() -> dict[str, Any]:
    return {"admin": current_identity.email}


def create_app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        CF_ACCESS_TEAM_DOMAIN="acme.cloudflareaccess.com",
        CF_ACCESS_APPLICATIONS=APPLICATIONS,
        CF_ACCESS_PROTECT_ALL=True,
        CF_ACCESS_PUBLIC_ENDPOINTS=["static"],
        **config,
    )

    @app.get("/")
    def home() -> dict[str, Any]:
        return {"hello": current_identity.email}

    @app.get("/reports/<int:year>")
    @require_access(allow_service_tokens=False)
    def report(year: int) -> dict[str, Any]:
        return {"year": year}

    app.register_blueprint(admin)
    cf_access.init_app(app)
    return app
