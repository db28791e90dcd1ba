"""``flask cf-access discover`` and ``doctor``: the app against its Access applications.

``discover`` finds the account's Access applications that cover the app's
host names and prints the settings to paste. ``doctor`` compares the app
(its settings, its routes and the route audit) with those applications and
reports each disagreement with what to change on which side. Both read the
applications from the Cloudflare API (:mod:`._cloudflare_api`) or from an
exported file (``--from-file``), so CI needs no token and no network. Both
are read-only: nothing is ever changed in Cloudflare.

``cli.py`` only registers the two commands; everything else is here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo

from ._core.cloudflare_api import (
    BASE_URL_VARIABLE,
    DEFAULT_BASE_URL,
    AccessApplication,
    ApiError,
    CloudflareApi,
    Credentials,
    Deployment,
    read_export,
    write_export,
)
from ._core.logsafe import loggable
from ._core.settings import AccessSettings
from ._flask.app_state import NOT_SET_UP, state_of
from ._flask.routes import RouteAudit, audit_routes
from ._wsgi.middleware import CloudflareAccessMiddleware

Severity = Literal["error", "warning", "info", "ok"]

#: Cloudflare's session duration when an application names none.
DEFAULT_SESSION = "24h"


# -- what an application covers ---------------------------------------------------


@dataclass(frozen=True)
class Cover:
    """One ``host/path`` pattern of an application's domains."""

    application: AccessApplication
    #: The domain as the application lists it.
    domain: str
    host: re.Pattern[str]
    #: The path part as a pattern matching the path and everything below it.
    path: re.Pattern[str]
    #: How specific it is: an exact host beats a wildcard, a longer path a shorter one.
    rank: tuple[bool, int]

    def covers(self, host: str, path: str) -> bool:
        """Whether a request for ``host`` and ``path`` goes through this application."""
        return bool(self.host.fullmatch(host) and self.path.fullmatch(path))


def _glob(text: str) -> str:
    return ".*".join(re.escape(part) for part in text.split("*"))


def covers_of(application: AccessApplication) -> list[Cover]:
    """The patterns of ``application``'s domains (``app.example.com/api``, ``*.example.com``)."""
    found = []
    for domain in application.domains:
        text = domain.split("://", 1)[-1]
        host, slash, path = text.partition("/")
        host = _without_port(host)
        path = "/" + path if slash else ""
        path = path.rstrip("/") if path.rstrip("/*") else ""
        path_pattern = f"{_glob(path)}(?:/.*)?" if path else "/.*|"
        found.append(
            Cover(
                application=application,
                domain=domain,
                host=re.compile(_glob(host)),
                path=re.compile(path_pattern),
                rank=("*" not in host, len(path)),
            )
        )
    return found


def covering(
    applications: Iterable[AccessApplication], host: str, path: str
) -> AccessApplication | None:
    """The application a request for ``host`` and ``path`` goes through: the most specific."""
    matches = [
        cover
        for application in applications
        for cover in covers_of(application)
        if cover.covers(host, path)
    ]
    return max(matches, key=lambda cover: cover.rank).application if matches else None


def matching(
    applications: Iterable[AccessApplication], hosts: Sequence[str]
) -> list[tuple[AccessApplication, list[str]]]:
    """The applications covering any of ``hosts``, each with the domains that do, by name."""
    found = []
    for application in applications:
        domains = [
            cover.domain
            for cover in covers_of(application)
            if any(cover.host.fullmatch(host) for host in hosts)
        ]
        if domains:
            found.append((application, domains))
    return sorted(found, key=lambda item: (item[0].name, item[0].aud))


# -- where the applications come from ---------------------------------------------


def _hosts_of(hosts: Sequence[str], app: Flask | None) -> list[str]:
    """``--host`` values, else the app's ``SERVER_NAME``, as lower-case host names."""
    names = list(hosts)
    if not names and app is not None and app.config.get("SERVER_NAME"):
        names = [str(app.config["SERVER_NAME"])]
    if not names:
        raise click.UsageError("name the app's host with --host (or set SERVER_NAME)")
    return [_without_port(name.strip().lower()) for name in names]


def _without_port(host: str) -> str:
    """``host`` without a ``:port`` (an IPv6 address in brackets kept whole)."""
    return re.sub(r":\d*$", "", host) if not host.endswith("]") else host


def _deployment(from_file: str | None, api_url: str, timeout: float) -> tuple[Deployment, str]:
    """The applications (and the rest) from the export, or from the API; and where from."""
    try:
        if from_file is not None:
            gap = "not in an applications export"
            gaps = {kind: gap for kind in ("organizations", "identity_providers", "keys")}
            return Deployment(read_export(from_file), gaps=gaps), loggable(from_file)
        credentials = Credentials.from_environment(os.environ)
        with CloudflareApi(credentials, base_url=api_url, timeout=timeout) as api:
            return api.deployment(), "the Cloudflare API"
    except ApiError as error:
        raise click.ClickException(str(error)) from None


def _source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``discover`` and ``doctor`` share."""
    options = [
        click.option(
            "--host",
            "hosts",
            multiple=True,
            metavar="HOST",
            help="A host name the app is served at (default: SERVER_NAME). Repeatable.",
        ),
        click.option(
            "--from-file",
            type=click.Path(dir_okay=False),
            help="Read the applications from this export of GET /accounts/{id}/access/apps"
            " (the answer or its 'result' list) instead of the API: no token, no network.",
        ),
        click.option(
            "--api-url",
            metavar="URL",
            default=DEFAULT_BASE_URL,
            envvar=BASE_URL_VARIABLE,
            show_default=True,
            help="The Cloudflare API (only its own host, or a server on this machine).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True, max=600),
            default=30.0,
            show_default=True,
            help="Seconds all calls to the API may take together.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# -- discover ---------------------------------------------------------------------


@click.pass_context
@_source_options
@click.option(
    "--save",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Also write the applications read to PATH, for doctor --from-file in CI: only the"
    " fields the checks read, no policies.",
)
def discover_command(
    ctx: click.Context,
    hosts: tuple[str, ...],
    from_file: str | None,
    api_url: str,
    timeout: float,
    save: str | None,
) -> None:
    """List the Access applications covering this app's hosts, and the settings to paste.

    Reads the account's applications with the read-only token in
    CLOUDFLARE_API_TOKEN for the account CLOUDFLARE_ACCOUNT_ID (neither is
    ever printed), or from --from-file. The app need not be configured yet:
    with --host, it is not even loaded. Changes nothing in Cloudflare.
    """
    app = None if hosts else _loaded_app(ctx)
    names = _hosts_of(hosts, app)
    deployment, source = _deployment(from_file, api_url, timeout)
    if save is not None:
        try:
            write_export(save, deployment.applications)
        except ApiError as error:
            raise click.ClickException(str(error)) from None
        click.echo(
            f"Saved the {len(deployment.applications)} applications to {loggable(save)}.",
            err=True,
        )
    found = matching(deployment.applications, names)
    if not found:
        raise click.ClickException(
            f"none of the {len(deployment.applications)} Access applications in {source}"
            f" covers {', '.join(names)}: add a self-hosted application for it in Cloudflare"
            " Zero Trust, or name the app's host with --host"
        )
    click.echo(f"Access applications covering {', '.join(names)} (from {source}):")
    for application, domains in found:
        click.echo(f"\n  {application.name} ({application.type})")
        click.echo(f"    covers   {', '.join(domains)}")
        click.echo(f"    AUD      {application.aud}")
    click.echo("\nSettings to paste into the app's configuration:\n")
    click.echo(_team_domain_line(deployment, app))
    if len(found) == 1:
        click.echo(f"CF_ACCESS_AUDIENCE = {json.dumps(found[0][0].aud)}")
        return
    # Several applications: each route is bound to its own (see "Several Access
    # applications" in the docs), by the paths its domains name on these hosts.
    click.echo("CF_ACCESS_APPLICATIONS = {")
    for application, domains in found:
        entry: dict[str, object] = {
            "audience": application.aud,
            "paths": _paths_of(domains),
        }
        if len(names) > 1:
            entry["hosts"] = sorted({_host_of(domain) for domain in domains})
        click.echo(
            f"    {json.dumps(application.name)}: {json.dumps(entry)},  # {', '.join(domains)}"
        )
    click.echo("}")


def _host_of(domain: str) -> str:
    return _without_port(domain.split("://", 1)[-1].partition("/")[0])


def _paths_of(domains: Sequence[str]) -> list[str]:
    """The path prefixes ``domains`` name (``app.example.com/api`` names ``/api``), ``/``
    for a whole host, in the form ``CF_ACCESS_APPLICATIONS`` takes."""
    paths = set()
    for domain in domains:
        path = domain.split("://", 1)[-1].partition("/")[2].rstrip("/*")
        paths.add("/" + path if path else "/")
    return sorted(paths)


def _loaded_app(ctx: click.Context) -> Flask:
    """The app of the command line, which need not have its ``CF_ACCESS_*`` settings yet."""
    if current_app:
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    try:
        return ctx.ensure_object(ScriptInfo).load_app()
    except Exception as exc:  # any failure to load: one line
        raise click.ClickException(
            f"the app cannot load ({type(exc).__name__}: {loggable(str(exc))[:300]}):"
            " name its host with --host"
        ) from None


def _team_domain_line(deployment: Deployment, app: Flask | None) -> str:
    if deployment.auth_domain:
        return f"CF_ACCESS_TEAM_DOMAIN = {json.dumps(deployment.auth_domain)}"
    state = state_of(app) if app is not None else None
    if state is not None:
        return (
            f"CF_ACCESS_TEAM_DOMAIN = {json.dumps(state.checker.settings.team_domain)}"
            "  # the app's own; not checked here"
        )
    return (
        'CF_ACCESS_TEAM_DOMAIN = "<team>.cloudflareaccess.com"'
        "  # your team's domain (Zero Trust > Settings > Custom Pages)"
    )


# -- doctor -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing ``doctor`` checked: how bad, what, and how to fix it."""

    severity: Severity
    check: str
    line: str
    fix: str = ""


@_source_options
def doctor_command(
    hosts: tuple[str, ...], from_file: str | None, api_url: str, timeout: float
) -> None:
    """Compare this app with its Access applications and say what disagrees.

    Checks the AUD tags and the team, which routes no application covers,
    the cookie's SameSite against the CSRF defence, preflights bypassed at
    the edge, the session length against CF_ACCESS_MAX_TOKEN_AGE, key
    rotation against CF_ACCESS_KEYS_MAX_AGE, and lists the identity
    providers each application allows. Each finding is an error, a warning,
    information or ok, with the fix and the side to make it on. Exits 1 on
    any error, for CI (run it there with --from-file).
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = state_of(app)
    if state is None:
        raise click.ClickException(NOT_SET_UP)
    checker = state.checker
    names = _hosts_of(hosts, app)
    deployment, source = _deployment(from_file, api_url, timeout)
    found = [application for application, _ in matching(deployment.applications, names)]
    click.echo(
        f"Checking {', '.join(names)} against {len(found)} of the"
        f" {len(deployment.applications)} Access applications from {source}.\n"
    )
    findings = diagnose(app, checker.settings, deployment, found, names)
    for finding in findings:
        click.echo(f"{finding.severity:<8} {finding.check:<9} {finding.line}")
        if finding.fix:
            click.echo(f"{'':<18} fix: {finding.fix}")
    errors = sum(finding.severity == "error" for finding in findings)
    warnings = sum(finding.severity == "warning" for finding in findings)
    click.echo(f"\n{_count(errors, 'error')}, {_count(warnings, 'warning')}.")
    if errors:
        raise click.exceptions.Exit(1)


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def diagnose(
    app: Flask,
    settings: AccessSettings,
    deployment: Deployment,
    applications: Sequence[AccessApplication],
    hosts: Sequence[str],
) -> list[Finding]:
    """Every finding of ``doctor``, in a fixed order."""
    if not applications:
        return [
            Finding(
                "error",
                "apps",
                f"no Access application covers {', '.join(hosts)}: requests reach the app"
                " without a token and are refused",
                "in Cloudflare: add a self-hosted application for the host; or name the"
                " right host with --host",
            )
        ]
    findings = _team(settings, deployment)
    findings += _audiences(settings, deployment, applications)
    findings += _routes(app, applications, hosts)
    for application in applications:
        findings += _cookie(settings, application)
    for application in applications:
        findings += _preflight(app, application)
    for application in applications:
        findings += _session(settings, application)
    findings += _keys(settings, deployment)
    findings += _identity_providers(deployment, applications)
    return findings


def _gap(deployment: Deployment, kind: str) -> str:
    return (deployment.gaps or {}).get(kind, "not known")


def _team(settings: AccessSettings, deployment: Deployment) -> list[Finding]:
    if deployment.auth_domain is None:
        return [Finding("info", "team", f"not checked: {_gap(deployment, 'organizations')}")]
    if deployment.auth_domain == settings.team_domain:
        return [
            Finding("ok", "team", f"CF_ACCESS_TEAM_DOMAIN is the team's {settings.team_domain}")
        ]
    return [
        Finding(
            "error",
            "team",
            f"the team's tokens are issued by https://{deployment.auth_domain}, and the app"
            f" expects https://{settings.team_domain}: every token is refused (invalid_issuer)",
            f'in the app: CF_ACCESS_TEAM_DOMAIN = "{deployment.auth_domain}"',
        )
    ]


def _audiences(
    settings: AccessSettings, deployment: Deployment, applications: Sequence[AccessApplication]
) -> list[Finding]:
    findings = []
    # The setting that holds the app's AUD tags: one list, or the applications map.
    key = "CF_ACCESS_APPLICATIONS" if settings.applications else "CF_ACCESS_AUDIENCE"
    for application in applications:
        if application.aud in settings.audience:
            findings.append(Finding("ok", "aud", f"{application.name}: its AUD tag is in {key}"))
        else:
            findings.append(
                Finding(
                    "error",
                    "aud",
                    f"{application.name}: its tokens carry {application.aud}, which"
                    f" {key} lacks: the app refuses them (invalid_audience)",
                    f'in the app: add "{application.aud}" to {key}'
                    " (flask cf-access discover prints what to paste)",
                )
            )
    ours = {application.aud for application in applications}
    elsewhere = {application.aud: application for application in deployment.applications}
    for audience in settings.audience:
        if audience in ours:
            continue
        other = elsewhere.get(audience)
        where = (
            f"the AUD tag of {other.name}, which covers {', '.join(other.domains)}"
            if other is not None
            else "the AUD tag of no application of the account (a deleted one?)"
        )
        findings.append(
            Finding(
                "warning",
                "aud",
                f"{key} holds {audience}, {where}, not of this app's hosts",
                f"in the app: remove it from {key}, unless that application should reach this app",
            )
        )
    return findings


def _static_path(rule: str) -> str:
    """The part of a URL rule before its first variable, which every URL of it starts with."""
    return rule.split("<", 1)[0]


def _routes(
    app: Flask, applications: Sequence[AccessApplication], hosts: Sequence[str]
) -> list[Finding]:
    findings = []
    covered = 0
    audits = audit_routes(app)
    for audit in audits:
        path = _static_path(audit.rule)
        missing = [host for host in hosts if covering(applications, host, path) is None]
        if not missing:
            covered += 1
            continue
        findings.append(_uncovered(audit, missing))
    if covered:
        findings.insert(
            0,
            Finding(
                "ok",
                "routes",
                f"{covered} of the app's {len(audits)} routes are behind an Access application",
            ),
        )
    return findings


def _uncovered(audit: RouteAudit, hosts: Sequence[str]) -> Finding:
    where = f"{audit.rule} ({audit.endpoint}) on {', '.join(hosts)}"
    if audit.status == "public":
        return Finding(
            "info", "routes", f"{where}: public in the app, and no Access application covers it"
        )
    if audit.status == "unprotected":
        return Finding(
            "warning",
            "routes",
            f"{where}: neither an Access application nor the app protects it",
            "in Cloudflare: add the path to an application; or in the app: protect it, or mark"
            " it public (@cf_access.public) if it is meant to be",
        )
    return Finding(
        "error",
        "routes",
        f"{where}: the app requires a token, and no Access application covers the path,"
        " so no request to it carries one (401 missing_token)",
        "in Cloudflare: add the path to an application's domains; or in the app: mark it"
        " public if it is meant to be",
    )


def _cookie(settings: AccessSettings, application: AccessApplication) -> list[Finding]:
    same_site = application.same_site or "none"
    shown = f"SameSite={same_site.capitalize()}" + (
        "" if application.same_site else " (not set: Access's default)"
    )
    if settings.csrf_protect != "off":
        return [
            Finding(
                "ok",
                "cookie",
                f"{application.name}: cookie {shown}; the app checks where unsafe requests"
                f" come from (CF_ACCESS_CSRF_PROTECT={settings.csrf_protect})",
            )
        ]
    if same_site == "none":
        return [
            Finding(
                "error",
                "cookie",
                f"{application.name}: cookie {shown}, and CF_ACCESS_CSRF_PROTECT is off: any"
                " site can make a signed-in browser post to the app",
                'in the app: CF_ACCESS_CSRF_PROTECT = "cookie"; or in Cloudflare: set the'
                " application's SameSite attribute to Lax or Strict",
            )
        ]
    return [
        Finding(
            "warning",
            "cookie",
            f"{application.name}: cookie {shown} stops most cross-site posts, but"
            " CF_ACCESS_CSRF_PROTECT is off",
            'in the app: CF_ACCESS_CSRF_PROTECT = "cookie"',
        )
    ]


def _middleware_of(app: Flask) -> CloudflareAccessMiddleware | None:
    """The middleware around the app's WSGI callable, if any (a few wrappers deep)."""
    wsgi: object = app.wsgi_app
    for _ in range(8):
        if isinstance(wsgi, CloudflareAccessMiddleware):
            return wsgi
        wsgi = getattr(wsgi, "wsgi_app", None) or getattr(wsgi, "app", None)
        if wsgi is None:
            break
    return None


def _own_options_routes(app: Flask) -> list[str]:
    """Protected rules whose view answers ``OPTIONS`` itself: Flask's automatic answer
    needs no token, theirs does."""
    protected = {audit.endpoint for audit in audit_routes(app) if audit.status == "protected"}
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint in protected
        and "OPTIONS" in (rule.methods or set())
        and not getattr(rule, "provide_automatic_options", False)
    )


def _preflight(app: Flask, application: AccessApplication) -> list[Finding]:
    middleware = _middleware_of(app)
    if not application.preflight_bypass:
        line = f"{application.name}: preflights are not bypassed at the edge"
        if middleware is not None and middleware.allow_preflight:
            line += " (the middleware's allow_preflight=True is then never used)"
        return [Finding("ok", "preflight", line)]
    findings = []
    if middleware is not None and not middleware.allow_preflight:
        findings.append(
            Finding(
                "error",
                "preflight",
                f"{application.name}: preflights are bypassed at the edge and reach the app"
                " without a token, and the middleware refuses them (allow_preflight is off)",
                "in the app: CloudflareAccessMiddleware(..., allow_preflight=True); or in"
                " Cloudflare: turn off the application's OPTIONS preflight bypass",
            )
        )
    own = _own_options_routes(app)
    if own:
        findings.append(
            Finding(
                "warning",
                "preflight",
                f"{application.name}: preflights are bypassed at the edge, and these views"
                f" answer OPTIONS themselves, protected like any method: {', '.join(own)}",
                "in the app: let Flask answer OPTIONS (provide_automatic_options), or make"
                " those views' OPTIONS public",
            )
        )
    if not findings:
        findings.append(
            Finding(
                "ok",
                "preflight",
                f"{application.name}: preflights are bypassed at the edge; the app answers"
                " them without a token",
            )
        )
    return findings


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> float | None:
    """A Go duration as Cloudflare writes it (``"24h"``, ``"1h30m"``), in seconds; ``None``
    if it is not one."""
    if text == "0":
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _session(settings: AccessSettings, application: AccessApplication) -> list[Finding]:
    given = application.session_duration or DEFAULT_SESSION
    seconds = duration_seconds(given)
    if seconds is None:
        return [
            Finding(
                "warning",
                "session",
                f"{application.name}: session duration {loggable(given)[:40]!r} is not a"
                " duration; not checked",
            )
        ]
    session = given if application.session_duration else f"{given} (the default)"
    max_age = (
        f"CF_ACCESS_MAX_TOKEN_AGE = {settings.max_token_age} ({_span(settings.max_token_age or 0)})"
    )
    if settings.max_token_age is None:
        return [
            Finding(
                "ok",
                "session",
                f"{application.name}: Access sessions last {session}; the app accepts tokens"
                " that long (CF_ACCESS_MAX_TOKEN_AGE is not set)",
            )
        ]
    if settings.max_token_age >= seconds:
        return [
            Finding(
                "ok",
                "session",
                f"{application.name}: Access sessions last {session}, within {max_age}",
            )
        ]
    return [
        Finding(
            "error",
            "session",
            f"{application.name}: Access sessions last {session}, and the app refuses tokens"
            f" older than {_span(settings.max_token_age)} (CF_ACCESS_MAX_TOKEN_AGE ="
            f" {settings.max_token_age}): signed-in users are refused (token_too_old) for the"
            " rest of their session",
            f"in Cloudflare: a session duration of at most {_go_duration(settings.max_token_age)};"
            f" or in the app: CF_ACCESS_MAX_TOKEN_AGE = {int(seconds)} (or unset)",
        )
    ]


def _go_duration(seconds: int) -> str:
    """``seconds`` as Cloudflare writes a session duration (``"1h"``, ``"30m"``)."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _keys(settings: AccessSettings, deployment: Deployment) -> list[Finding]:
    days = deployment.key_rotation_days
    if days is None:
        return [Finding("info", "keys", f"key rotation not checked: {_gap(deployment, 'keys')}")]
    rotation = days * 86400
    every = f"{days:g} day{'' if days == 1 else 's'}"
    kept = f"CF_ACCESS_KEYS_MAX_AGE ({_span(settings.keys_max_age)})"
    if settings.keys_max_age >= rotation:
        return [
            Finding(
                "warning",
                "keys",
                f"the team's keys rotate every {every} and the app keeps a key set for"
                f" {kept}: after a rotation, only a token with an unknown kid refreshes them",
                f"in the app: CF_ACCESS_KEYS_MAX_AGE well below {int(rotation)} (900, the default)",
            )
        ]
    return [
        Finding(
            "ok",
            "keys",
            f"the team's keys rotate every {every}; the app fetches them again after {kept}",
        )
    ]


def _identity_providers(
    deployment: Deployment, applications: Sequence[AccessApplication]
) -> list[Finding]:
    known = deployment.identity_providers
    findings = []
    for application in applications:
        if not application.allowed_idps:
            allowed = "any identity provider of the account"
        else:
            names = []
            for idp in application.allowed_idps:
                provider = known.get(idp) if known is not None else None
                names.append(f"{provider.name} ({provider.type})" if provider else idp)
            allowed = ", ".join(names)
        findings.append(
            Finding(
                "info",
                "idps",
                f"{application.name}: users sign in with {allowed}; the app has no rule on"
                " the identity provider",
            )
        )
    return findings
