"""Sphinx configuration for the flask-cf-access documentation."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the package and examples/, from a checkout

project = "flask-cf-access"
copyright = "flask-cf-access contributors"
try:
    release = version("flask-cf-access")
except PackageNotFoundError:
    release = "0+unknown"
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.graphviz",
    "cf_access_settings",
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

# Type variables and aliases in the package's own annotations (the ParamSpec
# and TypeVar of the decorators' overloads, the clock's Callable[[], float]):
# typing helpers, not API, so they have no entry to link to.
nitpick_ignore += [
    ("py:class", "P"),
    ("py:class", "flask_cf_access.decorators.R"),
    ("py:class", "Clock"),
]

# The standard library's names, unlinked for the same reason.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|typing|enum|types)\.\w+"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_type_aliases = {"Clock": "Callable[[], float]"}
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}

graphviz_output_format = "svg"

doctest_global_setup = """
import flask_cf_access
"""

html_theme = "furo"
html_title = f"flask-cf-access {release}"
html_static_path: list[str] = []
html_theme_options = {
    "source_repository": "",
    "top_of_page_buttons": [],
}
