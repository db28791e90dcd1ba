"""An audit log of every access decision, from the extension's signals."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_cf_access import (
    AccessError,
    AccessIdentity,
    Reason,
    access_denied,
    access_granted,
)

audit_log = logging.getLogger("audit")


def record_access(app: Flask) -> None:
    @access_granted.connect_via(app)
    def granted(
        sender: Flask,
        identity: AccessIdentity,
        method: str,
        path: str,
        **extra: Any,
    ) -> None:
        audit_log.info("granted %s %s to %s", method, path, identity.name)

    @access_denied.connect_via(app)
    def denied(
        sender: Flask,
        error: AccessError,
        reason: Reason,
        method: str,
        path: str,
        identity: AccessIdentity | None,
        **extra: Any,
    ) -> None:
        who = identity.name if identity is not None else "unknown"
        audit_log.warning(
            "refused %s %s to %s: %d %s", method, path, who, error.code, reason
        )
