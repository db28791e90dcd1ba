"""Sphinx configuration for the flask-cf-access documentation."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the package and examples/, from a checkout

project = "flask-cf-access"
copyright = "flask-cf-access contributors"
try:
    release = importlib.metadata.version("flask-cf-access")
except importlib.metadata.PackageNotFoundError:
    release = "0+unknown"
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.graphviz",
    "cf_access_settings",
    "cf_access_reasons",
]

exclude_patterns = ["_build", "examples/**", "diagrams/**", "requirements.txt"]
default_role = "code"

# Every cross-reference must resolve. Names from other projects cannot be
# linked without fetching their inventories (no intersphinx), so they are
# listed here: third-party names only.
nitpicky = True
nitpick_ignore = [
    ("py:class", "flask.app.Flask"),
    ("py:class", "Flask"),
    ("py:class", "flask.testing.FlaskClient"),
    ("py:class", "werkzeug.test.TestResponse"),
    ("py:class", "TestResponse"),
    ("py:class", "werkzeug.exceptions.HTTPException"),
    ("py:class", "werkzeug.exceptions.Unauthorized"),
    ("py:class", "werkzeug.exceptions.Forbidden"),
    ("py:class", "werkzeug.exceptions.ServiceUnavailable"),
    ("py:class", "werkzeug.exceptions.BadRequest"),
    ("py:class", "werkzeug.local.LocalProxy"),
    ("py:class", "requests.Session"),
    ("py:class", "requests.sessions.Session"),
    ("py:class", "cachelib.base.BaseCache"),
    ("py:class", "BaseCache"),
    ("py:class", "responses.RequestsMock"),
    ("py:class", "RequestsMock"),
    ("py:class", "blinker.base.NamedSignal"),
    ("py:class", "cryptography.hazmat.primitives.asymmetric.rsa.RSAPrivateKey"),
    ("py:class", "SansIOResponse"),
    ("py:class", "WSGIApplication"),
    ("py:class", "WSGIEnvironment"),
    ("py:class", "StartResponse"),
]

# Type variables in the package's own annotations (the ParamSpec and TypeVar
# of the decorators' overloads): typing helpers, not API, so they have no
# entry to link to.
nitpick_ignore += [
    ("py:class", "P"),
    ("py:class", "flask_cf_access._flask.decorators.R"),
    ("py:class", "flask_cf_access._flask.request.D"),
    ("py:class", "D"),
]

# The standard library's names, unlinked for the same reason.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|typing|enum|types)\.\w+"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
# The public type aliases keep their names in signatures, linked to their entries.
autodoc_type_aliases = {
    name: f"flask_cf_access.{name}"
    for name in (
        "Background",
        "Clause",
        "Clock",
        "ContextRuleKind",
        "Match",
        "RouteStatus",
    )
}
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}

graphviz_output_format = "svg"

doctest_global_setup = f"""
import sys
import flask_cf_access
if {str(HERE / "examples")!r} not in sys.path:
    sys.path.insert(0, {str(HERE / "examples")!r})
"""

html_theme = "furo"
html_title = f"flask-cf-access {release}"
html_static_path: list[str] = []
html_theme_options = {
    "source_repository": "",
    "top_of_page_buttons": [],
}


# -- references to public names through the module that defines them ---------
#
# Docstrings and signatures name some public objects by where they are
# defined (``flask_cf_access._core.requirements.Requirement``, ``Requirement``
# written without its module in a signature). Their one entry is the public
# one (``flask_cf_access.Requirement``), so such a reference is sent there,
# whatever internal module the object moves to. Private names are not sent
# anywhere: a reference to one stays a build error.


def _public_names() -> dict[str, str]:
    """Short name to public full name, for the package and its testing kit."""
    import inspect

    import flask_cf_access
    import flask_cf_access.testing

    names = {
        name: f"flask_cf_access.{name}"
        for name, value in vars(flask_cf_access).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    names.update(
        {name: f"flask_cf_access.testing.{name}" for name in flask_cf_access.testing.__all__}
    )
    return names


def _resolve_public(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Resolve ``flask_cf_access.<module>.Name`` or a bare ``Name`` to its public entry."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if target != "flask_cf_access" and not target.startswith("flask_cf_access.") and "." in target:
        return None
    public = _public_names().get(target.rpartition(".")[2])
    if public is None or public == target:
        return None
    domain = env.get_domain("py")
    builder = app.builder
    found = domain.resolve_xref(
        env, node["refdoc"], builder, node["reftype"], public, node, contnode
    )
    if found is None:
        matches = domain.resolve_any_xref(env, node["refdoc"], builder, public, node, contnode)
        found = matches[0][1] if matches else None
    return found


def setup(app):  # type: ignore[no-untyped-def]
    """Connect the public-name resolver."""
    app.connect("missing-reference", _resolve_public)
