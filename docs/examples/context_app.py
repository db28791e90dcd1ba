"""Posture, MFA, sign-in age: an admin area for managed, encrypted devices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask
from flask_cf_access import (
    CloudflareAccess,
    access_guard,
    current_identity,
    require,
)

cf_access = CloudflareAccess()

#: Posture rule ids (Zero Trust > Settings > WARP Client > Device posture).
DISK_ENCRYPTION = "f6f9391e-6776-4878-9c60-0cc807dc7dc8"
MANAGED_DEVICE = "0d3c5b1a-2e44-4a8f-9d2b-6f1e0c7a9b34"

CONTEXT = {
    "CF_ACCESS_ROLES": {"admin": ["Admins"]},
    # Every user, on every view: signed in with more than one factor.
    "CF_ACCESS_REQUIRE_MFA": True,
    # Posture and sign-in age are judged on an answer at most 2 minutes old.
    "CF_ACCESS_PROFILE_MAX_AGE": 120,
}

admin = Blueprint("admin", __name__, url_prefix="/admin")
admin.before_request(
    access_guard(
        require(
            roles=["admin"],
            posture=[DISK_ENCRYPTION, MANAGED_DEVICE],  # both must have passed
            amr=["hwk"],  # a hardware security key
            max_login_age=3600,  # signed in within the last hour
        )
    )
)


@admin.get("/")
def admin_home() -> dict[str, Any]:
    profile = current_identity.profile
    assert profile is not None  # a user: service tokens have no profile
    return {
        "idp": profile.idp.type if profile.idp else None,
        "device": profile.device_id,
        "signed_in_at": profile.login_at,
    }


def create_app(config: Mapping[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(CONTEXT)
    app.config.update(config)
    cf_access.init_app(app)
    app.register_blueprint(admin)
    return app
