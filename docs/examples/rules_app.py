"""Roles, all-of, checks, e-mail rules, known tokens, deny by default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask
from flask_cf_access import (
    AccessIdentity,
    CloudflareAccess,
    access_guard,
    current_identity,
    require,
    require_check,
    require_group,
    require_role,
    require_service_token,
)

cf_access = CloudflareAccess()

RULES = {
    # Every endpoint needs a token unless marked public.
    "CF_ACCESS_PROTECT_ALL": True,
    "CF_ACCESS_PUBLIC_ENDPOINTS": ["static"],
    # The app's roles, by the groups that grant them (names, or "id:<id>").
    "CF_ACCESS_ROLES": {
        "admin": ["Admins"],
        "support": ["Helpdesk", "Admins"],
        "ops": ["Ops"],
    },
    # Users from elsewhere get 403 everywhere, whatever Access let in.
    "CF_ACCESS_ALLOWED_EMAIL_DOMAINS": ["example.com", ".example.com"],
    "CF_ACCESS_ALLOWED_EMAILS": ["contractor@gmail.com"],
    # Only these service tokens; any other gets 403.
    "CF_ACCESS_SERVICE_TOKENS": {
        "ci.access": {"name": "ci-deployer", "roles": ["ops"]},
        "backup.access": {"name": "backup"},
    },
}  # init_app validates them, naming any key that is wrong


def in_europe(identity: AccessIdentity) -> bool:
    """Anything a rule needs: here, the country Access saw."""
    return identity.claims.get("country") in {"DE", "FR", "NL"}


ops = Blueprint("ops", __name__, url_prefix="/ops")
ops.before_request(access_guard(require(roles=["ops"])))


@ops.get("/")
def ops_home() -> str:
    return f"ops: {current_identity.name}"


def create_app(config: Mapping[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(RULES)
    app.config.update(config)
    cf_access.init_app(app)
    app.register_blueprint(ops)

    @app.get("/health")
    @cf_access.public
    def health() -> str:
        return "ok"

    @app.get("/")
    def home() -> str:  # no decorator: still needs a token
        return f"Hello, {current_identity.name}"

    @app.get("/tickets")
    @require_role("support")
    def tickets() -> str:
        return "tickets"

    @app.get("/billing")
    @require_group("Admins", "Finance", match="all")
    def billing() -> str:
        return "billing"

    @app.get("/eu-data")
    @require_role("support")
    @require_check(in_europe)
    def eu_data() -> str:
        return "eu data"

    @app.post("/deploy")
    @require_service_token("ci.access")
    def deploy() -> str:
        return f"deployed by {current_identity.name}"

    return app
