"""An app-factory Flask application behind Cloudflare Access.

Deny by default (``CF_ACCESS_PROTECT_ALL``): every endpoint needs a verified
token unless it is marked public, so a view someone forgets to decorate is
protected all the same (``flask cf-access routes --strict`` checks it).

- ``/health``: public, marked with ``@cf_access.public``.
- ``/``: any person signed in through Access (service tokens get 403).
- ``/admin/``: the ``admin`` role only (the ``Admins`` group, through
  ``CF_ACCESS_ROLES``), for every view of the blueprint, by its ``access_guard``;
  its form posts to ``/admin/announce`` (checked for cross-site forgery, as every
  unsafe request carrying the Access cookie is).
- ``/notes/``: a page that fetches its data (``/api/notes``) with the browser
  module (``cf-access.js``): when the Access session ends while it is open, a
  note being added is sent again once after signing in, in a popup.
- ``/auth/session``: when the session ends and whom it is for, as JSON; with
  ``/auth/session/cf-access.js``, the browser module (``session_blueprint``).
- ``/logout``: clears the Flask session and leaves through Access's logout.
- ``/api/whoami``: any verified caller, people and service tokens alike, as
  JSON; it has no decorator: deny by default protects it.
- ``/api/notes``: the notes, as JSON; ``POST`` adds one (``{"text": ...}``).
- a custom page for 403.

Settings come from ``CF_ACCESS_*`` environment variables (JSON values parsed,
like Flask's ``from_prefixed_env``), then from the ``config`` argument::

    export CF_ACCESS_TEAM_DOMAIN=acme.cloudflareaccess.com
    export CF_ACCESS_AUDIENCE=4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2
    gunicorn -w 4 'examples.protected_app:create_app()'

``python -m examples.protected_app`` runs it with no team at all, against a
local stand-in (see ``__main__.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from flask_cf_access import (
    CloudflareAccess,
    access_guard,
    current_identity,
    logout_blueprint,
    require,
    require_access,
    session_blueprint,
)

#: The group the admin area is for.
ADMIN_GROUP = "Admins"
#: The app's role for the admin area, granted to ADMIN_GROUP.
ADMIN_ROLE = "admin"

#: Where each app keeps its notes (in memory: an example, not a database).
NOTES_KEY = "example.notes"
#: The longest note kept, in characters.
MAX_NOTE = 200

#: The example's own defaults; the environment and ``config`` can override them.
DEFAULT_SETTINGS: Mapping[str, Any] = {
    "CF_ACCESS_PROTECT_ALL": True,
    "CF_ACCESS_ROLES": {ADMIN_ROLE: [ADMIN_GROUP]},
}

#: One extension object for every app the factory makes.
cf_access = CloudflareAccess()


def settings_from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``CF_ACCESS_*`` variables of ``environ``, as text: the extension reads
    numbers, flags, lists and JSON mappings written as strings."""
    return {key: value for key, value in environ.items() if key.startswith("CF_ACCESS_")}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The application, configured from the environment and then from ``config``.

    :raises ConfigurationError: a ``CF_ACCESS_*`` setting is missing or invalid.
    """
    app = Flask(__name__)
    app.config.update(DEFAULT_SETTINGS)
    app.config["SECRET_KEY"] = os.urandom(32)  # the flashed messages' session; set your own
    app.config.update(settings_from_environ(os.environ))
    if config:
        app.config.update(config)
    cf_access.init_app(app)
    app.extensions[NOTES_KEY] = []

    app.register_blueprint(public)
    app.register_blueprint(pages)
    app.register_blueprint(admin, url_prefix="/admin")
    app.register_blueprint(api, url_prefix="/api")
    app.register_blueprint(logout_blueprint())
    app.register_blueprint(session_blueprint())

    @app.errorhandler(403)
    def forbidden(error: HTTPException) -> ResponseReturnValue:
        # The body names no reason: error.reason is for the log line only.
        return render_template("forbidden.html", admin_group=ADMIN_GROUP), 403

    return app


public = Blueprint("public", __name__)


@public.get("/health")
@cf_access.public
def health() -> ResponseReturnValue:
    """For load balancers: no token needed."""
    return {"status": "ok"}


pages = Blueprint("pages", __name__)


@pages.get("/")
@require_access(allow_service_tokens=False)
def home() -> ResponseReturnValue:
    """A page for people: who Access says you are, and your groups."""
    groups = sorted(group.name or group.id or "" for group in current_identity.groups)
    return render_template("home.html", identity=current_identity, groups=groups)


@pages.get("/notes/")
@require_access(allow_service_tokens=False)
def notes_page() -> ResponseReturnValue:
    """A page that fetches its data through the browser module (see the template)."""
    return render_template("notes.html")


admin = Blueprint("admin", __name__)


#: Every view of this blueprint is for the admin role.
admin.before_request(access_guard(require(roles=[ADMIN_ROLE])))


@admin.get("/")
def dashboard() -> ResponseReturnValue:
    """The admin area."""
    return render_template("admin.html", identity=current_identity, admin_group=ADMIN_GROUP)


@admin.post("/announce")
def announce() -> ResponseReturnValue:
    """A change: reached only from the app's own pages (a cross-site form gets 403)."""
    flash(f"Announced: {request.form.get('message', '')}")
    return redirect(url_for("admin.dashboard"))


api = Blueprint("api", __name__)


@api.get("/whoami")
def whoami() -> ResponseReturnValue:
    """Who is calling, for scripts and for machines holding a service token.

    No decorator: under deny by default any verified caller may come in.
    """
    return jsonify(
        name=current_identity.name,
        email=current_identity.email,
        service_token=current_identity.is_service_token,
        common_name=current_identity.common_name,
    )


@api.get("/notes")
def notes() -> ResponseReturnValue:
    """The notes, oldest first. Under deny by default, like ``whoami``."""
    return jsonify(current_app.extensions[NOTES_KEY])


@api.post("/notes")
def add_note() -> ResponseReturnValue:
    """Add a note (``{"text": ...}``) and answer all of them; 400 for anything else."""
    body = request.get_json(silent=True)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE:
        return {"error": f"a text of 1 to {MAX_NOTE} characters is needed"}, 400
    stored: list[dict[str, str]] = current_app.extensions[NOTES_KEY]
    stored.append({"text": text.strip(), "by": current_identity.name})
    return jsonify(stored), 201
