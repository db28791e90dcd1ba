"""A whole blueprint for one group, guarded by the verification primitive."""

from __future__ import annotations

from flask import Blueprint, g
from flask_cf_access import current_identity, require, verify_access_in_request

admin = Blueprint("admin", __name__, url_prefix="/admin")


@admin.before_request
def only_admins() -> None:
    people_in_admins = require(groups=["Admins"], allow_service_tokens=False)
    verify_access_in_request(people_in_admins)


@admin.get("/")
def dashboard() -> dict[str, object]:
    return {
        "email": current_identity.email,
        "groups": [group.name for group in current_identity.groups],
        "expires": g.cf_access_claims["exp"],
    }
