"""Cloudflare Access in front of any WSGI application, Flask or not.

:class:`CloudflareAccessMiddleware` checks every request with the same
checker (``_checker.AccessChecker``) the Flask decorators use,
answers refusals itself (401, 403, 503), and passes the admitted identity
downstream: ``REMOTE_USER``, ``environ["cf_access.identity"]``,
``environ["cf_access.claims"]`` and the request headers you map to it. The
admitted request's response is marked ``Cache-Control: private`` unless the
app set its own (``CF_ACCESS_PRIVATE_RESPONSES``).
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
from cachelib import BaseCache
from werkzeug.wrappers import Request

from .._core.assembly import checker_from_mapping
from .._core.caching import CHECKED_ENVIRON_KEY, PrivateWhenChecked
from .._core.checker import AccessChecker
from .._core.clock import Clock
from .._core.errors import (
    AccessBadRequest,
    AccessError,
    ConfigurationError,
    Reason,
    refusal,
    report_refusal,
    warn_renamed,
)
from .._core.groups import is_wanted_group
from .._core.identity import AccessIdentity
from .._core.paths import _configurable_path, _loose_segments, _PathReadings, _segments
from .._core.profile import (
    PROFILE_SOURCE,
    header_needs_fresh_profile,
    header_value,
    valid_header_source,
)
from .._core.requirements import ANY_TOKEN, Requirement
from .._core.settings import DEFAULTS, FLASK_ONLY, did_you_mean
from .._core.signals import PENDING_GRANT_ENVIRON_KEY, access_granted
from .._core.single_flight import Background
from .._core.tokens import TOKEN_ENVIRON_KEY, sent_token
from .._flask.app_state import state_of

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_cf_access")

#: The environ key of the admitted :class:`~flask_cf_access.AccessIdentity`.
IDENTITY_ENVIRON_KEY = "cf_access.identity"
#: The environ key of the admitted request's verified claims (read-only).
CLAIMS_ENVIRON_KEY = "cf_access.claims"

#: Removed from every request, whatever the configuration: no client sets these.
ALWAYS_STRIPPED = (
    "HTTP_CF_ACCESS_AUTHENTICATED_USER_EMAIL",
    "REMOTE_USER",
    IDENTITY_ENVIRON_KEY,
    CLAIMS_ENVIRON_KEY,
)

#: Keyword arguments that stand for ``CF_ACCESS_*`` settings, e.g. ``leeway``: each
#: key less the prefix, lower case, as the :class:`~flask_cf_access.AccessSettings`
#: attribute. ``cache`` is a keyword of its own; the Flask-only settings are none.
_SETTING_KEYWORDS = {
    key.removeprefix("CF_ACCESS_").lower(): key
    for key in DEFAULTS
    if key != "CF_ACCESS_CACHE" and key not in FLASK_ONLY
}
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED_HEADERS = {TOKEN_ENVIRON_KEY, "HTTP_COOKIE"}


class CloudflareAccessMiddleware:
    """Lets only requests with a verified Cloudflare Access token reach ``wsgi_app``.

    Configured with the ``CF_ACCESS_*`` settings as keyword arguments
    (``team_domain``, ``audience`` or ``applications``, ``leeway``, …;
    validated as the extension validates them), or from a mapping with
    :meth:`from_mapping`, or from a Flask app with :meth:`from_flask`::

        app = CloudflareAccessMiddleware(
            app,
            team_domain="acme.cloudflareaccess.com",
            audience="4714c1358e65…",
            public_paths=["/healthz"],
            rules={"/admin": ["Admins"]},
            headers={"X-Auth-Email": "email", "X-Auth-Groups": "groups"},
        )

    A request whose ``PATH_INFO`` the application behind may read as another
    path than the middleware would (a ``.`` or ``..`` segment, an encoded
    ``/`` or ``\\``, a backslash or a control character, raw or
    percent-encoded) is answered 400 (:class:`~flask_cf_access.AccessBadRequest`,
    reason ``ambiguous_path``), logged and sent as ``access_denied``, before
    any token is looked at.

    :param wsgi_app: the application to protect.
    :param public_paths: paths let through without a token, matched exactly
        against ``PATH_INFO`` as given.
    :param public_prefixes: paths let through with everything below them, by
        whole segments: ``/static`` opens ``/static`` and ``/static/app.css``,
        not ``/staticx``, nor a path some reading puts outside ``/static``.
        A rule at or below a public prefix (``/static/admin``) would never
        apply: it is refused with a :class:`~flask_cf_access.ConfigurationError`.
    :param rules: path prefix to what it needs: groups (names, or ids
        written ``"id:<group id>"``; any of them), or a
        :func:`~flask_cf_access.require` requirement (roles, all-of,
        predicates, service tokens), judged as the decorators judge
        it. The longest matching prefix wins, by whole non-empty segments; a
        path is judged by every rule any of its readings falls under (see
        :meth:`requirement_for`), so ``/admin`` also guards ``//admin``,
        ``/ADMIN``, ``/admin;x`` and ``/%61dmin``. ``()`` needs no group.
        Configured paths hold no ``.`` or ``..`` segment, ``%``, ``;``,
        backslash or control character.
    :param headers: request header name to what it carries: ``"email"``,
        ``"name"`` (the e-mail, or a service token's id), ``"groups"`` (names,
        comma-separated), ``"group_ids"``, any other claim, or
        ``"custom.<attribute>"`` for a SAML or OIDC attribute of the token, or
        ``"profile.<field>"`` for the user's profile from get-identity:
        ``profile.mfa``, ``profile.amr``, ``profile.idp`` (type),
        ``profile.idp_id``, ``profile.country``, ``profile.warp``,
        ``profile.gateway``, ``profile.device_id``, ``profile.login_at``,
        ``profile.posture`` (the rule ids that passed),
        ``profile.posture.<rule id>`` (``true`` or ``false``),
        ``profile.custom.<attribute>``, ``profile.oidc_fields.<name>``; posture
        and login time from a profile no older than ``CF_ACCESS_PROFILE_MAX_AGE``
        (:doc:`context-rules`). Incoming copies are always removed; a value
        that cannot be sent safely (control characters, a comma inside a list
        item, a nested object) leaves the header out and logs a warning.
        A requirement may name its Access application
        (``require(application="admin")``): ``CF_ACCESS_APPLICATIONS`` (the
        ``applications`` setting) must put every path of the rule under it.
    :param allow_service_tokens: ``False`` answers 403 to service tokens.
    :param allow_preflight: let CORS preflights (``OPTIONS`` with ``Origin``
        and ``Access-Control-Request-Method``, which browsers send without
        cookies) through without a token, for an Access policy that bypasses them.
    :param csrf_exempt_paths: paths (exactly, as ``public_paths``) whose unsafe
        requests are not checked for cross-site forgery (``CF_ACCESS_CSRF_PROTECT``).
    :param cache: where keys and identities are shared, as ``CF_ACCESS_CACHE`` takes it.
    :param session: the ``requests.Session`` used to reach Cloudflare (tests).
    :param clock: the time source (tests).
    :param background: how work that no request waits out is started (key
        fetches and refreshes, get-identity calls): a callable given a job
        taking no argument; by default each job runs in a daemon thread.
        Tests pass ``run_inline`` (:mod:`flask_cf_access.testing`) to have a
        refresh done by the request that starts it.
    :raises ConfigurationError: naming the first invalid setting or option.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        *,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        rules: Mapping[str, str | Iterable[str] | Requirement] | None = None,
        headers: Mapping[str, str] | None = None,
        allow_service_tokens: bool = True,
        allow_preflight: bool = False,
        csrf_exempt_paths: Iterable[str] = (),
        cache: BaseCache | str | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        background: Background | None = None,
        **settings: Any,
    ) -> None:
        # The extension's checker, shared by from_flask (keys, caches, clock);
        # a private keyword, out of the public signature.
        checker: AccessChecker | None = settings.pop("_checker", None)
        if "checker" in settings:
            warnings.warn(
                "CloudflareAccessMiddleware(checker=...) is deprecated: use"
                " CloudflareAccessMiddleware.from_flask(app) to share the extension's.",
                DeprecationWarning,
                stacklevel=2,
            )
            checker = settings.pop("checker")
        given = settings or any(value is not None for value in (cache, session, clock, background))
        if checker is not None and given:
            raise TypeError(
                "CloudflareAccessMiddleware takes either a checker or settings "
                "(with cache, session, clock and background), not both."
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
        public_prefixes = tuple(public_prefixes)
        self._public_prefixes = tuple(
            _public_path(path, "public_prefixes").rstrip("/") for path in public_prefixes
        )
        if "" in self._public_prefixes:
            raise ConfigurationError("public_prefixes must not hold '/': every path would be open.")
        #: What a path no rule covers needs.
        self._default = (
            ANY_TOKEN if allow_service_tokens else Requirement(allow_service_tokens=False)
        )
        self._rules = _rules(rules or {}, self._default)
        _refuse_dead_rules(self._rules, public_prefixes)
        self._headers = _headers(headers or {})
        self._stripped = (*ALWAYS_STRIPPED, *self._headers)
        #: The checker every request is checked by; shared with the extension by :meth:`from_flask`.
        self._checker: AccessChecker = (
            checker
            if checker is not None
            else checker_from_mapping(
                {**_settings_config(settings), "CF_ACCESS_CACHE": cache},
                session=session,
                clock=clock,
                background=background,
            )
        )
        _refuse_contradicted_rules(self._rules, self._checker)

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any],
        wsgi_app: WSGIApplication,
        *,
        cache: BaseCache | str | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        background: Background | None = None,
        **options: Any,
    ) -> CloudflareAccessMiddleware:
        """A middleware reading its settings from ``CF_ACCESS_*`` keys, e.g. ``os.environ``.

        ``options`` are the keyword arguments that are not settings
        (``public_paths``, ``rules``, ``headers``, …); ``cache``, if given,
        replaces ``CF_ACCESS_CACHE``; ``session``, ``clock`` and ``background``
        are those of the constructor.
        """
        if cache is not None:
            config = {**config, "CF_ACCESS_CACHE": cache}
        checker = checker_from_mapping(config, session=session, clock=clock, background=background)
        return cls(wsgi_app, _checker=checker, **options)

    @property
    def checker(self) -> AccessChecker:
        # Deprecated, undocumented: the checker is internal (from_flask shares the extension's).
        warnings.warn(
            "CloudflareAccessMiddleware.checker is deprecated: it is internal.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._checker

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], wsgi_app: WSGIApplication, **options: Any
    ) -> CloudflareAccessMiddleware:
        """Deprecated spelling of :meth:`from_mapping`, kept for one release."""
        warn_renamed(
            "CloudflareAccessMiddleware.from_config", "CloudflareAccessMiddleware.from_mapping"
        )
        return cls.from_mapping(config, wsgi_app, **options)

    @classmethod
    def from_flask(cls, app: Flask, **options: Any) -> CloudflareAccessMiddleware:
        """A middleware around ``app.wsgi_app``; assign it back to install it::

            app.wsgi_app = CloudflareAccessMiddleware.from_flask(app, public_paths=["/healthz"])

        It shares the checker (keys, caches) of the ``CloudflareAccess`` extension
        when :meth:`~flask_cf_access.CloudflareAccess.init_app` was called on
        ``app`` first; otherwise it reads ``app.config`` as ``init_app`` does.
        """
        state = state_of(app)
        if state is not None:
            return cls(app.wsgi_app, _checker=state.checker, **options)
        return cls.from_mapping(app.config, app.wsgi_app, **options)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        for key in self._stripped:
            environ.pop(key, None)
        path = environ.get("PATH_INFO") or "/"
        request = Request(environ, populate_request=False, shallow=True)
        try:
            readings = _PathReadings(path)
        except AccessBadRequest as error:
            self._report_bad_path(request, error)
            return error.get_response(environ)(environ, start_response)
        if self._is_public(readings) or (self.allow_preflight and _is_preflight(environ)):
            return self.wsgi_app(environ, start_response)
        header, cookie = sent_token(request)
        passed: dict[str, Any] = {}
        try:
            requirement = self._strictest_rule(readings)
            identity = self._checker.check_request(
                self,
                request,
                header,
                cookie,
                requirement,
                csrf_exempt=path in self._csrf_exempt_paths,
                # The last step of the check, so that what it cannot pass on
                # (groups or a profile a header needs) is refused and reported
                # like any rule, and the grant is reported only after it.
                admit=lambda identity: passed.update(self._passed_on(identity)),
                # Reported when the answer starts, unless a check inside the
                # application decides the request first (its signal is then the one).
                report_granted=False,
            )
        except AccessBadRequest as error:
            self._report_bad_path(request, error)
            return error.get_response(environ)(environ, start_response)
        except AccessError as error:
            return error.get_response(environ)(environ, start_response)
        environ.update(passed)
        if access_granted.receivers:
            environ[PENDING_GRANT_ENVIRON_KEY] = identity
            start_response = _granting_start_response(self, request, start_response)
        if self._checker.settings.private_responses:
            environ[CHECKED_ENVIRON_KEY] = True
            return PrivateWhenChecked(self.wsgi_app)(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def is_public(self, path: str) -> bool:
        """Whether ``path`` (a ``PATH_INFO``) is let through without a token.

        Only when every reading of it (see :meth:`requirement_for`) is one of
        ``public_paths`` or below one of ``public_prefixes``; never for a path
        the middleware refuses as ambiguous.
        """
        try:
            readings = _PathReadings(path)
        except AccessBadRequest:
            return False
        return self._is_public(readings)

    def requirement_for(self, path: str) -> Requirement:
        """What ``path`` (a ``PATH_INFO``) requires, ``allow_service_tokens`` included.

        The path is judged as every reader behind the middleware may read it:
        as given, percent-decoded again, NFKC-normalised, and with each
        segment's ``;`` parameters, letter case and trailing dots and spaces
        ignored; empty segments are skipped. Each reading falls under its
        longest matching rule, and the path must meet every one of those.

        :raises AccessBadRequest: the path is ambiguous (a ``.`` or ``..``
            segment, an encoded ``/`` or ``\\``, a backslash, a control
            character, raw or percent-encoded), or its readings fall under
            rules that together admit nobody.
        """
        return self._strictest_rule(_PathReadings(path))

    def groups_for(self, path: str) -> tuple[str, ...]:
        """The group names the requirement of ``path`` names; ``()`` for none."""
        return tuple(name for _, names in self.requirement_for(path).groups for name in names)

    def _is_public(self, readings: _PathReadings) -> bool:
        """Every reading is in the public tree, and no reading falls under another rule.

        A rule the path as given falls under does not close it (a public path
        is public whatever rule covers it, as ever), but one that only some
        other reading falls under does: ``/Static/x`` below a public
        ``/Static`` is not public when a rule covers ``/static``.
        """
        if not all(self._public_reading(reading) for reading in readings.texts):
            return False
        return len(self._matched_rules(readings)) == 1

    def _public_reading(self, path: str) -> bool:
        if path in self._public_paths:
            return True
        return any(
            path == prefix or path.startswith(prefix + "/") for prefix in self._public_prefixes
        )

    def _strictest_rule(self, readings: _PathReadings) -> Requirement:
        """What every rule the readings fall under requires, all of it.

        Usually every reading falls under the same rule. When they do not,
        the path must meet each of those rules, so no reading gets a weaker
        rule than the one it falls under.

        :raises AccessBadRequest: the rules together admit nobody.
        """
        found = {
            self._default if rule is None else rule.requirement
            for rule in self._matched_rules(readings)
        }
        if len(found) == 1:
            return found.pop()
        combined = ANY_TOKEN
        try:
            for requirement in found:
                combined = combined & requirement
        except ValueError as exc:
            raise refusal(Reason.AMBIGUOUS_PATH) from exc
        return combined

    def _matched_rules(self, readings: _PathReadings) -> set[_Rule | None]:
        """The rule each reading falls under (``None`` for none), as and loosely read."""
        return {
            *(self._rule_for(segments, loose=False) for segments in readings.segments),
            *(self._rule_for(segments, loose=True) for segments in readings.loose_segments),
        }

    def _rule_for(self, segments: tuple[str, ...], *, loose: bool) -> _Rule | None:
        """The longest rule whose prefix ``segments`` starts with, if any."""
        for rule in self._rules:
            prefix = rule.loose_prefix if loose else rule.prefix
            if segments[: len(prefix)] == prefix:
                return rule
        return None

    def _report_bad_path(self, request: Request, error: AccessBadRequest) -> None:
        """Reported as the checker reports its refusals."""
        report_refusal(self, error, method=request.method, path=request.path, identity=None)

    def _passed_on(self, identity: AccessIdentity) -> dict[str, Any]:
        """The environ entries an admitted request gets: identity, claims, user, headers.

        :raises AccessUnavailable: a header needs the groups and they could not be had.
        """
        passed: dict[str, Any] = {
            IDENTITY_ENVIRON_KEY: identity,
            CLAIMS_ENVIRON_KEY: identity.claims,
        }
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
                + did_you_mean(name, _SETTING_KEYWORDS)
            )
        config[_SETTING_KEYWORDS[name]] = value
    return config


def _public_path(path: object, option: str) -> str:
    if not isinstance(path, str) or not _configurable_path(path):
        raise ConfigurationError(
            f"{option} must hold paths starting with '/', without '.' or '..' segments, "
            "'%', ';', backslashes or control characters."
        )
    return path


class _Rule(NamedTuple):
    #: As configured, for messages.
    path: str
    prefix: tuple[str, ...]
    loose_prefix: tuple[str, ...]
    #: What the rule asks for, ``allow_service_tokens=False`` of the middleware included.
    requirement: Requirement


def _rules(
    rules: Mapping[str, str | Iterable[str] | Requirement], default: Requirement
) -> tuple[_Rule, ...]:
    """The rules, each with ``default`` added to its requirement, longest prefix first."""
    parsed: dict[tuple[str, ...], _Rule] = {}
    for prefix, wanted in rules.items():
        if not isinstance(prefix, str) or not _configurable_path(prefix):
            raise ConfigurationError(
                "rules must map paths starting with '/' (without '.' or '..' segments, "
                "'%', ';', backslashes or control characters) to groups or a requirement."
            )
        if isinstance(wanted, Requirement):
            requirement = wanted
        else:
            groups = (wanted,) if isinstance(wanted, str) else tuple(wanted)
            if not all(isinstance(group, str) and is_wanted_group(group) for group in groups):
                raise ConfigurationError(
                    f"rules[{prefix!r}] must be a group name or 'id:<group id>', a list of them,"
                    " or a require(...) requirement."
                )
            requirement = Requirement(groups=(("any", groups),)) if groups else ANY_TOKEN
        try:
            requirement = requirement & default
        except ValueError as exc:
            raise ConfigurationError(
                f"rules[{prefix!r}]: needs service tokens, but allow_service_tokens is False."
            ) from exc
        segments = _segments(prefix)
        loose = _loose_segments(segments)
        if loose in parsed:
            raise ConfigurationError(
                f"rules has {prefix!r} twice (letter case and trailing dots do not count)."
            )
        parsed[loose] = _Rule(prefix, segments, loose, requirement)
    return tuple(sorted(parsed.values(), key=lambda rule: len(rule.prefix), reverse=True))


def _refuse_dead_rules(rules: tuple[_Rule, ...], public_prefixes: tuple[str, ...]) -> None:
    """Refuse a rule at or below a public prefix: the prefix would open its paths.

    Compared by whole segments, letter case and trailing dots ignored (as
    :class:`_PathReadings` reads paths loosely), so no spelling of the rule's
    paths falls in the public tree unguarded.

    :raises ConfigurationError: naming the rule and the prefix.
    """
    for public in public_prefixes:
        opened = _loose_segments(_segments(public))
        for rule in rules:
            if rule.loose_prefix[: len(opened)] == opened:
                raise ConfigurationError(
                    f"rules[{rule.path!r}] is under public_prefixes {public!r}: every path"
                    " there passes without a token, so the rule would never apply. Move"
                    " the rule, or make the public prefix narrower."
                )


def _refuse_contradicted_rules(rules: tuple[_Rule, ...], checker: AccessChecker) -> None:
    """Refuse a rule naming an application (``require(application=...)``) that
    ``CF_ACCESS_APPLICATIONS`` does not put every path of the rule under.

    :raises ConfigurationError: naming the rule, its application and the map's.
    """
    for rule in rules:
        named = rule.requirement.applications
        if not named:
            continue
        applications = checker.applications
        found = (
            {application.name for application in applications.applications_under(None, rule.path)}
            if applications is not None
            else set()
        )
        if found != set(named):
            raise ConfigurationError(
                f"rules[{rule.path!r}] names the application {', '.join(sorted(named))}, but"
                " CF_ACCESS_APPLICATIONS puts its paths under"
                f" {', '.join(sorted(found)) or 'none'}."
            )


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
        if source.startswith(PROFILE_SOURCE) and not valid_header_source(source):
            raise ConfigurationError(
                f"headers[{name!r}]: {source!r} is nothing of the profile, e.g. 'profile.mfa',"
                " 'profile.posture.<rule id>', 'profile.custom.<attribute>'."
            )
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
    if source.startswith(PROFILE_SOURCE):
        fresh = header_needs_fresh_profile(source)
        profile = identity.fresh_profile if fresh else identity.profile
        return None if profile is None else header_value(profile, source)
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
    if isinstance(value, (list, tuple)):  # verified claims' arrays are tuples
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


def _granting_start_response(
    middleware: CloudflareAccessMiddleware, request: Request, start_response: StartResponse
) -> StartResponse:
    """``start_response`` reporting the middleware's grant of ``request`` as the
    answer starts, unless a check inside the application has decided the
    request by then (and taken :data:`PENDING_GRANT_ENVIRON_KEY` away)."""
    environ = request.environ

    def start_granted_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        identity = environ.get(PENDING_GRANT_ENVIRON_KEY)
        if identity is not None:
            AccessChecker.granted(middleware, request, identity)
        return start_response(status, headers, exc_info)

    return start_granted_response
