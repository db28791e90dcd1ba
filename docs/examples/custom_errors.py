"""Your own pages for refusals, and the reason in your own log."""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_cf_access import AccessError, AccessForbidden, Reason


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(AccessForbidden)
    def forbidden(error: AccessForbidden) -> tuple[str, int]:
        if error.reason is Reason.SERVICE_TOKEN_REFUSED:
            return "This page is for people, not service tokens.", 403
        return "Ask the admins to add you to the group.", 403

    @app.errorhandler(AccessError)
    def refused(error: AccessError) -> tuple[dict[str, str], int]:
        # 401 and 503: a JSON body for scripts; the reason stays in the log.
        current_app.logger.info("refused %s: %s", request.path, error.reason)
        return {"error": error.description or "refused"}, error.code or 500
