"""Cloudflare Access in front of any WSGI application, Flask or not.

:class:`CloudflareAccessMiddleware` checks every request with an
:class:`~flask_cf_access.AccessGate`, the same code the Flask decorators use,
answers refusals itself (401, 403, 503), and passes the admitted identity
downstream: ``REMOTE_USER``, ``environ["cf_access.identity"]``,
``environ["cf_access.claims"]`` and the request headers you map to it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from cachelib import BaseCache
from werkzeug.wrappers import Request

from .errors import AccessError, ConfigurationError
from .extension import EXTENSION_KEY
from .gate import AccessGate, Clock
from .identity import AccessIdentity
from .settings import DEFAULTS
from .tokens import TOKEN_COOKIE, TOKEN_ENVIRON_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_cf_access")

#: The environ key of the admitted :class:`~flask_cf_access.AccessIdentity`.
IDENTITY_KEY = "cf_access.identity"
#: The environ key of the admitted request's verified claims (read-only).
CLAIMS_KEY = "cf_access.claims"

#: Removed from every request, whatever the configuration: no client sets these.
ALWAYS_STRIPPED = (
    "HTTP_CF_ACCESS_AUTHENTICATED_USER_EMAIL",
    "REMOTE_USER",
    IDENTITY_KEY,
    CLAIMS_KEY,
)

#: Keyword arguments that stand for ``CF_ACCESS_*`` settings, e.g. ``leeway``.
_SETTING_KEYWORDS = {
    key.removeprefix("CF_ACCESS_").lower(): key for key in DEFAULTS if key != "CF_ACCESS_CACHE"
}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = {TOKEN_ENVIRON_KEY, "HTTP_COOKIE"}


class CloudflareAccessMiddleware:
    """Lets only requests with a verified Cloudflare Access token reach ``wsgi_app``.

    Configured with the ``CF_ACCESS_*`` settings as keyword arguments
    (``team_domain``, ``audience``, ``leeway``, …; validated as the extension
    validates them), or from a mapping with :meth:`from_config`, or from a
    Flask app with :meth:`from_flask`::

        app = CloudflareAccessMiddleware(
            app,
            team_domain="acme.cloudflareaccess.com",
            audience="4714c1358e65…",
            public_paths=["/healthz"],
            rules={"/admin": ["Admins"]},
            headers={"X-Auth-Email": "email", "X-Auth-Groups": "groups"},
        )

    :param wsgi_app: the application to protect.
    :param public_paths: paths let through without a token, matched exactly
        against ``PATH_INFO`` as given.
    :param public_prefixes: paths let through with everything below them, by
        whole segments: ``/static`` opens ``/static`` and ``/static/app.css``,
        not ``/staticx``, and no path with a ``.`` or ``..`` segment.
    :param rules: path prefix to the groups (names or ids, any of them) it
        needs. The longest matching prefix wins, by whole segments, on the path
        with empty, ``.`` and ``..`` segments resolved; ``()`` needs no group.
    :param headers: request header name to what it carries: ``"email"``,
        ``"name"`` (the e-mail, or a service token's id), ``"groups"`` (names,
        comma-separated), ``"group_ids"``, any other claim, or
        ``"custom.<attribute>"`` for a SAML or OIDC attribute. Incoming copies
        are always removed; a value that cannot be sent safely (control
        characters, a comma inside a list item, a nested object) leaves the
        header out and logs a warning.
    :param allow_service_tokens: ``False`` answers 403 to service tokens.
    :param allow_preflight: let CORS preflights (``OPTIONS`` with ``Origin``
        and ``Access-Control-Request-Method``, which browsers send without
        cookies) through without a token, for an Access policy that bypasses them.
    :param csrf_exempt_paths: paths (exactly, as ``public_paths``) whose unsafe
        requests are not checked for cross-site forgery (``CF_ACCESS_CSRF_PROTECT``).
    :param gate: an :class:`~flask_cf_access.AccessGate` to share, instead
        of settings; then ``cache``, ``session`` and ``clock`` are its own.
    :param cache: where keys and identities are shared, as ``CF_ACCESS_CACHE`` takes it.
    :param session: the ``requests.Session`` used to reach Cloudflare (tests).
    :param clock: the time source (tests).
    :raises ConfigurationError: naming the first invalid setting or option.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        *,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        rules: Mapping[str, str | Iterable[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        allow_service_tokens: bool = True,
        allow_preflight: bool = False,
        csrf_exempt_paths: Iterable[str] = (),
        gate: AccessGate | None = None,
        cache: BaseCache | str | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> None:
        given = settings or any(value is not None for value in (cache, session, clock))
        if gate is not None and given:
            raise TypeError(
                "CloudflareAccessMiddleware takes either a gate or settings "
                "(with cache, session and clock), not both."
            )
        self.wsgi_app = wsgi_app
        self.allow_service_tokens = allow_service_tokens
        #: Whether CORS preflights (``OPTIONS`` with ``Origin`` and
        #: ``Access-Control-Request-Method``) reach the app without a token.
        self.allow_preflight = allow_preflight
        self._csrf_exempt_paths = frozenset(
            _public_path(path, "csrf_exempt_paths") for path in csrf_exempt_paths
        )
        self._public_paths = frozenset(_public_path(path, "public_paths") for path in public_paths)
        self._public_prefixes = tuple(
            _public_path(path, "public_prefixes").rstrip("/") for path in public_prefixes
        )
        if "" in self._public_prefixes:
            raise ConfigurationError("public_prefixes must not hold '/': every path would be open.")
        self._rules = _rules(rules or {})
        self._headers = _headers(headers or {})
        self._stripped = (*ALWAYS_STRIPPED, *self._headers)
        #: The gate every request is checked by; shared with the extension by :meth:`from_flask`.
        self.gate = (
            gate
            if gate is not None
            else AccessGate.from_config(
                {**_settings_config(settings), "CF_ACCESS_CACHE": cache},
                session=session,
                clock=clock,
            )
        )

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        wsgi_app: WSGIApplication,
        *,
        cache: BaseCache | str | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        **options: Any,
    ) -> CloudflareAccessMiddleware:
        """A middleware reading its settings from ``CF_ACCESS_*`` keys, e.g. ``os.environ``.

        ``options`` are the keyword arguments that are not settings
        (``public_paths``, ``rules``, ``headers``, …); ``cache``, if given,
        replaces ``CF_ACCESS_CACHE``.
        """
        if cache is not None:
            config = {**config, "CF_ACCESS_CACHE": cache}
        gate = AccessGate.from_config(config, session=session, clock=clock)
        return cls(wsgi_app, gate=gate, **options)

    @classmethod
    def from_flask(cls, app: Flask, **options: Any) -> CloudflareAccessMiddleware:
        """A middleware around ``app.wsgi_app``; assign it back to install it::

            app.wsgi_app = CloudflareAccessMiddleware.from_flask(app, public_paths=["/healthz"])

        It shares the gate (keys, caches) of the ``CloudflareAccess`` extension
        when :meth:`~flask_cf_access.CloudflareAccess.init_app` was called on
        ``app`` first; otherwise it reads ``app.config`` as ``init_app`` does.
        """
        gate = app.extensions.get(EXTENSION_KEY)
        if isinstance(gate, AccessGate):
            return cls(app.wsgi_app, gate=gate, **options)
        return cls.from_config(app.config, app.wsgi_app, **options)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        for key in self._stripped:
            environ.pop(key, None)
        path = environ.get("PATH_INFO") or "/"
        if self.is_public(path) or (self.allow_preflight and _is_preflight(environ)):
            return self.wsgi_app(environ, start_response)
        request = Request(environ, populate_request=False, shallow=True)
        header = environ.get(TOKEN_ENVIRON_KEY)
        try:
            identity = self.gate.check_request(
                self,
                request.method,
                request.path,
                header,
                request.cookies.get(TOKEN_COOKIE) if header is None else None,
                groups=self.groups_for(path),
                allow_service_tokens=self.allow_service_tokens,
                request=request,
                csrf_exempt=path in self._csrf_exempt_paths,
            )
            passed = self._passed_on(identity)
        except AccessError as error:
            return error.get_response(environ)(environ, start_response)
        environ.update(passed)
        return self.wsgi_app(environ, start_response)

    def is_public(self, path: str) -> bool:
        """Whether ``path`` (a ``PATH_INFO``) is let through without a token."""
        if path in self._public_paths:
            return True
        if not self._public_prefixes or _has_dot_segment(path):
            return False
        return any(
            path == prefix or path.startswith(prefix + "/") for prefix in self._public_prefixes
        )

    def groups_for(self, path: str) -> tuple[str, ...]:
        """The groups the longest rule matching ``path`` asks for; ``()`` for none."""
        segments = _resolved_segments(path)
        for prefix, groups in self._rules:
            if segments[: len(prefix)] == prefix:
                return groups
        return ()

    def _passed_on(self, identity: AccessIdentity) -> dict[str, Any]:
        """The environ entries an admitted request gets: identity, claims, user, headers.

        :raises AccessUnavailable: a header needs the groups and they could not be had.
        """
        passed: dict[str, Any] = {IDENTITY_KEY: identity, CLAIMS_KEY: identity.claims}
        for key, source in (("REMOTE_USER", "name"), *self._headers.items()):
            try:
                value = _wsgi_text(_source_value(identity, source))
            except ValueError:
                logger.warning(
                    "Cloudflare Access left out %s: its value cannot be sent safely", key
                )
                continue
            if value is not None:
                passed[key] = value
        return passed


def _is_preflight(environ: WSGIEnvironment) -> bool:
    """A CORS preflight: ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``."""
    return (
        environ.get("REQUEST_METHOD") == "OPTIONS"
        and "HTTP_ORIGIN" in environ
        and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
    )


def _settings_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``team_domain=…`` keyword arguments as the ``CF_ACCESS_TEAM_DOMAIN`` keys they stand for."""
    config: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in _SETTING_KEYWORDS:
            raise TypeError(
                f"CloudflareAccessMiddleware got an unexpected keyword argument {name!r}"
            )
        config[_SETTING_KEYWORDS[name]] = value
    return config


def _public_path(path: object, option: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or _has_dot_segment(path):
        raise ConfigurationError(
            f"{option} must hold paths starting with '/', without '.' or '..'."
        )
    return _wsgi_path(path)


def _rules(
    rules: Mapping[str, str | Iterable[str]],
) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The rules as (prefix segments, groups), longest prefix first."""
    parsed: dict[tuple[str, ...], tuple[str, ...]] = {}
    for prefix, wanted in rules.items():
        if not isinstance(prefix, str) or not prefix.startswith("/") or _has_dot_segment(prefix):
            raise ConfigurationError("rules must map paths starting with '/' to groups.")
        groups = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        if not all(isinstance(group, str) and group for group in groups):
            raise ConfigurationError(
                f"rules[{prefix!r}] must be a group name or id, or a list of them."
            )
        segments = _resolved_segments(_wsgi_path(prefix))
        if segments in parsed:
            raise ConfigurationError(f"rules has {prefix!r} twice.")
        parsed[segments] = groups
    return tuple(sorted(parsed.items(), key=lambda rule: len(rule[0]), reverse=True))


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The header mapping as environ keys (``X-Auth-Email`` → ``HTTP_X_AUTH_EMAIL``) to sources."""
    parsed: dict[str, str] = {}
    for name, source in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"headers: {name!r} is not a valid header name.")
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in _RESERVED_HEADERS:
            raise ConfigurationError(f"headers: {name!r} carries the token; it cannot be replaced.")
        if key in parsed:
            raise ConfigurationError(f"headers: {name!r} is given twice.")
        if not isinstance(source, str) or not source.removeprefix("custom."):
            raise ConfigurationError(f"headers[{name!r}] must name a claim, e.g. 'email'.")
        parsed[key] = source
    return parsed


def _source_value(identity: AccessIdentity, source: str) -> object:
    """What a header mapped to ``source`` carries for ``identity``, before encoding."""
    if source == "name":
        return identity.name
    if source == "groups":
        return [group.name or group.id for group in identity.groups]
    if source == "group_ids":
        return [group.id for group in identity.groups if group.id]
    if source.startswith("custom."):
        custom = identity.claims.get("custom")
        return custom.get(source.removeprefix("custom.")) if isinstance(custom, Mapping) else None
    return identity.claims.get(source)


def _wsgi_text(value: object) -> str | None:
    """``value`` as an environ string; ``None`` when there is none (absent or empty).

    Lists are joined by commas. Text reaches the app as UTF-8 bytes in a
    latin-1 string, as WSGI (PEP 3333) passes every header.

    :raises ValueError: the value cannot be sent safely.
    """
    if value is None or value == "":
        return None
    if isinstance(value, list):
        items = [_scalar_text(item) for item in value]
        if any("," in item for item in items):
            raise ValueError("a list item holds a comma")
        text = ",".join(items)
    else:
        text = _scalar_text(value)
    return text.encode("utf-8").decode("latin-1")


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("not a string, number or list of them")
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value):
        raise ValueError("a control character or line break")
    return value


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))


def _resolved_segments(path: str) -> tuple[str, ...]:
    """The segments of ``path`` as a server or router may resolve it.

    Empty and ``.`` segments are dropped and ``..`` removes the one before, so
    that ``//admin``, ``/admin/`` and ``/x/../admin`` all fall under an
    ``/admin`` rule.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return tuple(segments)


def _wsgi_path(path: str) -> str:
    """A configured path as it appears in ``PATH_INFO``: UTF-8 bytes in a latin-1 string."""
    return path.encode("utf-8").decode("latin-1")
