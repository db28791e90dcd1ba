"""``flask cf-access``: check an app's Access set-up, explain a token, mint local ones.

Registered through the ``flask.commands`` entry point, so every app that
calls :meth:`~flask_cf_access.CloudflareAccess.init_app` has it::

    flask --app myapp cf-access check            # fetch the team's keys, show the settings
    flask --app myapp cf-access verify TOKEN     # will this app accept this token? why not?
    flask --app myapp cf-access mint --email ada@example.com --group Admins

``check`` and ``verify`` work against the real team or the local stand-in.
``mint`` only ever works against the local stand-in: it asks the stand-in
server for a token at the secret URL in the ``CF_ACCESS_STAND_IN`` setting
(set by ``python -m examples.protected_app``, or by
``StandInServer.settings()`` of a server started with ``minting=True``), and
refuses when the app takes its keys from anywhere else.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Callable, Mapping
from functools import update_wrapper
from typing import Any, NoReturn, TypeGuard
from urllib.parse import urlsplit

import click
import requests
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from ._core.checker import AccessChecker
from ._core.claims import MAX_NUMERIC_DATE
from ._core.errors import AccessError, ConfigurationError, Reason
from ._core.fetch import FetchError, get_json
from ._core.identity import AccessIdentity
from ._core.json_input import parse_json
from ._core.keys import CertsError, keys_fetched_on_demand, parse_certs
from ._core.profile import ContextRule
from ._core.requirements import ANY_TOKEN, Requirement, require
from ._core.verifier import Explanation
from ._doctor import discover_command, doctor_command
from ._flask.app_state import access_state, state_of, verify_token
from ._flask.guards import endpoint_guard
from ._flask.routes import audit_routes, route_policy, ungranted_roles, unknown_public_endpoints
from ._flask.users import load_user

__all__ = ["cli"]

_AUD_TAG = re.compile(r"[0-9a-f]{64}")


def _with_app_context(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flask's ``with_appcontext``, saying in one line why the app could not load.

    The app is loaded without fetching the team's keys
    (``CF_ACCESS_LOAD_KEYS_ON_INIT`` is left for serving): a command fetches
    them when it needs them, so ``routes`` never waits for them and ``check``
    fetches once and reports a failure once.

    An app whose ``init_app`` refuses its ``CF_ACCESS_*`` settings cannot be
    loaded; that is what these commands are for, so the reason is printed as
    an error (exit status 1) instead of a traceback.
    """

    @click.pass_context
    def run(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        if not current_app:
            try:
                # No command needs the keys as the app loads: routes needs none,
                # and check and verify fetch them themselves.
                with keys_fetched_on_demand():
                    app = ctx.ensure_object(ScriptInfo).load_app()
            except Exception as exc:
                problem = _configuration_error(exc)
                if problem is None:
                    raise
                raise click.ClickException(f"the app cannot load: {problem}") from exc
            ctx.with_resource(app.app_context())
        return ctx.invoke(command, *args, **kwargs)

    return update_wrapper(run, command)


def _configuration_error(error: BaseException) -> ConfigurationError | None:
    """The :class:`ConfigurationError` that ``error`` is, or was raised from, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigurationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _AccessCommands(AppGroup):
    """An ``AppGroup`` whose commands say in one line why the app could not load."""

    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Command]:
        """As ``AppGroup.command``, with :func:`_with_app_context` for ``with_appcontext``."""
        in_app_context = kwargs.pop("with_appcontext", True)

        def decorator(callback: Callable[..., Any]) -> click.Command:
            if in_app_context:
                callback = _with_app_context(callback)
            command: click.Command = click.Group.command(self, *args, **kwargs)(callback)
            return command

        return decorator


cli = _AccessCommands(
    "cf-access",
    help="Check this app's Cloudflare Access set-up, explain a token, mint local ones.",
)
cli.command("discover", with_appcontext=False)(discover_command)
cli.command("doctor")(doctor_command)


def _checker_of() -> AccessChecker:
    try:
        return access_state().checker
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


def _explain(reason: Reason | None) -> str:
    return "" if reason is None else reason.description


# -- check -------------------------------------------------------------------


@cli.command("check")
def check_command() -> None:
    """Fetch the team's keys and show what tokens this app accepts.

    Exits non-zero when the keys cannot be had: unreachable, a redirect, an
    HTTP error, an answer that is not JSON, or no usable RS256 key in it.
    """
    checker = _checker_of()
    settings = checker.settings
    click.echo(f"Team:       {settings.team_domain}")
    click.echo(f"Issuer:     {settings.issuer}  (a token's iss must be exactly this)")
    for audience in settings.audience:
        note = "" if _AUD_TAG.fullmatch(audience) else "  (not 64 hex characters like an AUD tag)"
        click.echo(f"Audience:   {audience}{note}")
    default_certs_url = f"https://{settings.team_domain}/cdn-cgi/access/certs"
    origin = "" if settings.certs_url == default_certs_url else "  (CF_ACCESS_CERTS_URL)"
    click.echo(f"Keys from:  {settings.certs_url}{origin}")
    try:
        document = get_json(checker.session, settings.certs_url, timeout=settings.http_timeout)
    except FetchError as exc:
        raise click.ClickException(f"the team's keys could not be fetched: {_hint(exc)}") from exc
    try:
        keys = parse_certs(document)
    except CertsError as exc:
        raise click.ClickException(
            f"{settings.certs_url} publishes no key this app can use: {exc}."
            " Is it a Cloudflare Access certs URL?"
        ) from exc
    click.echo(f"Keys:       {len(keys)} RS256 key(s) published")
    for kid in sorted(keys):
        click.echo(f"  kid {kid}")
    click.echo("OK: the keys can be had; tokens of this team for this audience can be verified.")


def _hint(error: FetchError) -> str:
    message = str(error)
    if re.search(r"answered HTTP 3\d\d\b", message):
        return (
            f"{message}. Keys are never fetched through a redirect: set CF_ACCESS_TEAM_DOMAIN"
            " to the team's own host, e.g. acme.cloudflareaccess.com."
        )
    if "could not be reached" in message:
        return f"{message}. Is CF_ACCESS_TEAM_DOMAIN (or CF_ACCESS_CERTS_URL) right?"
    if "did not answer JSON" in message:
        return f"{message}. Is it a Cloudflare Access team's certs URL?"
    return message


# -- verify ------------------------------------------------------------------


@cli.command("verify")
@click.argument("token")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Also require one of these groups, as @require_group does. Repeatable.",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="NAME",
    help="Also require one of these roles, as @require_role does. Repeatable.",
)
@click.option(
    "--path",
    metavar="PATH",
    help="Also apply what the app's route for PATH requires (its decorators, guards,"
    " deny by default), as `routes` lists it.",
)
@click.option("--method", default="GET", show_default=True, help="The request method, with --path.")
@click.option("--profile", "show_profile", is_flag=True, help="Show the user's profile.")
@click.option("--mfa", is_flag=True, help="Also require MFA, as require(mfa=True) does.")
@click.option("--amr", multiple=True, metavar="METHOD", help="Also require one of these methods.")
@click.option("--idp", multiple=True, metavar="TYPE_OR_ID", help="Also require this provider.")
@click.option("--posture", multiple=True, metavar="RULE_ID", help="Also require this posture.")
@click.option("--warp", is_flag=True, help="Also require WARP.")
@click.option("--gateway", is_flag=True, help="Also require Gateway.")
@click.option("--country", multiple=True, metavar="CC", help="Also require one of these.")
@click.option("--max-login-age", type=click.IntRange(min=1), help="Also require a recent login.")
@click.option("--client-certificate", is_flag=True, help="Also require an mTLS certificate.")
def verify_command(
    token: str,
    groups: tuple[str, ...],
    roles: tuple[str, ...],
    path: str | None,
    method: str,
    show_profile: bool = False,
    **context: Any,
) -> None:
    """Say whether TOKEN passes for this app and, if not, why.

    TOKEN is an application token (a Cf-Access-Jwt-Assertion header or
    CF_Authorization cookie value), or - to read it from standard input.
    The app-wide rules (allowed e-mails, known service tokens) apply too,
    and the app's user loader, if it has one, is asked for the account (a
    loader that creates accounts creates it, as on a first visit). Each step
    and claims check is the app's own verifier's, in its order
    (TokenVerifier.explain); the token itself is never printed. Exits 0 when
    the token passes, 1 when it does not.
    """
    checker = _checker_of()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        requirement = require(groups=groups, roles=roles, **context)
    except TypeError as exc:
        raise click.UsageError(str(exc)) from exc
    needs_account = True
    if path is not None:
        route, needs_account = _route_requirement(app, path, method.upper())
        if route is None:
            click.echo(f"Route:      {method.upper()} {path} checks no token.")
            click.echo("Result: ACCEPTED. This app lets every request through there.")
            return
        requirement = requirement & route
    if token == "-":
        token = sys.stdin.read()
    token = token.strip()
    now = checker.clock()
    click.echo(f"Token:      {len(token)} characters (not shown)")
    explanation = checker.verifier.explain(token)
    failed = explanation.failed
    if failed is not None and explanation.header is None:  # not even a header to show
        _refuse(failed.reason)
    header = explanation.header or {}
    click.echo(f"1. Header (not verified): alg {header.get('alg')!r}, kid {header.get('kid')!r}")
    key = explanation.step("key")
    if key is not None:
        click.echo(
            "   the kid is one of the team's published keys"
            if key.passed
            else f"   {_explain(key.reason)}"
        )
    if explanation.signature_verified:
        click.echo("2. Signature: verified with the team's key")
        title = "3. Claims (verified):"
    else:
        reason = None if failed is None else failed.reason
        click.echo(f"2. Signature: NOT verified ({reason}: {_explain(reason)})")
        title = "3. Claims (NOT verified, shown only to explain):"
    click.echo(title)
    for line in _claim_lines(explanation, checker, now):
        click.echo(f"   {line}")
    if failed is not None:
        _refuse(failed.reason)

    try:
        identity = checker.authenticate(token, None)
        if path is not None and (checker.applications is not None or requirement.applications):
            application = (
                checker.applications.application_for(None, path)
                if checker.applications is not None
                else None
            )
            checker.check_application(identity, application, requirement)
            click.echo(f"   Application: {getattr(application, 'name', None)}: the token is for it")
        rules = (*checker.settings.context_rules, *requirement.context)
        if (show_profile or rules) and not identity.is_service_token:
            _show_profile(identity, rules)
        checker.authorize(identity, requirement=requirement)
        if groups:
            names = ", ".join(group.name or group.id or "?" for group in identity.groups)
            click.echo(f"4. Groups: {names or '(none)'}; one of {', '.join(groups)} needed: yes")
        if roles:
            held = ", ".join(sorted(identity.roles))
            click.echo(f"   Roles: {held or '(none)'}; one of {', '.join(roles)} needed: yes")
        if path is not None:
            click.echo(f"   Route: {method.upper()} {path} needs {requirement.describe()}: yes")
    except AccessError as error:
        _refuse(error.reason)
    if needs_account:
        _ask_user_loader(app, identity, path or "/", method.upper())
    kind = "the service token" if identity.is_service_token else "the user"
    click.echo(f"Result: ACCEPTED. This app lets {kind} {identity.name} through.")


def _route_requirement(app: Flask, path: str, method: str) -> tuple[Requirement | None, bool]:
    """What the app's route for ``method`` ``path`` requires (``None`` when it checks
    nothing), and whether it needs the identity to have an account (its guards are
    neither optional nor ``account=False``).

    :raises click.ClickException: no route of the app answers it.
    """
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, method)
    except (HTTPException, RoutingException) as exc:
        raise click.ClickException(f"no route of this app answers {method} {path}") from exc
    audit = next(audit for audit in audit_routes(app) if audit.endpoint == endpoint)
    guard = endpoint_guard(app, endpoint)
    needs_account = guard is None or (not guard.optional and guard.account is not False)
    if audit.requirement is not None:
        return audit.requirement, needs_account
    if audit.status == "protected" or (
        audit.status == "not applied" and route_policy(app).protect_all
    ):
        return ANY_TOKEN, needs_account  # deny by default
    return None, False


def _ask_user_loader(app: Flask, identity: AccessIdentity, path: str, method: str) -> None:
    """Ask the app's user loader, if it has one, for the account of ``identity``.

    Exits 1 when it has none: every route that asks for the user answers 403 there.
    """
    loader = access_state(app).users.loader
    if loader is None:
        return
    with app.test_request_context(path, method=method):
        user = load_user(app, loader, identity)
    if user is None:
        _refuse(Reason.NO_ACCOUNT)
    click.echo("5. Account: the app's user loader has one for this identity")


def _show_profile(identity: AccessIdentity, rules: tuple[ContextRule, ...]) -> None:
    """The user's profile from get-identity, and whether each rule on it holds.

    :raises AccessError: the profile could not be had.
    """
    fresh = any(rule.needs_fresh_profile for rule in rules)
    profile = identity.fresh_profile if fresh else identity.profile
    if profile is None:
        return
    click.echo("Profile (from get-identity):")
    login_age = identity.login_age
    if profile.login_at is not None and login_age is not None:
        when = datetime.datetime.fromtimestamp(profile.login_at, tz=datetime.timezone.utc)
        click.echo(f"   signed in {when.isoformat()} ({login_age:.0f} s ago)")
    methods = ", ".join(profile.amr) or "(not said)"
    click.echo(f"   amr: {methods}; MFA: {'yes' if profile.mfa else 'no'}")
    if profile.idp is not None:
        click.echo(f"   identity provider: {profile.idp.type} ({profile.idp.id})")
    for label, value in (
        ("country", profile.country),
        ("WARP", profile.warp),
        ("Gateway", profile.gateway),
        ("device", profile.device_id),
    ):
        if value is not None:
            shown = value if isinstance(value, str) else "yes" if value else "no"
            click.echo(f"   {label}: {shown}")
    for rule_id, result in profile.posture.items():
        verdict = {True: "passed", False: "FAILED", None: "no result"}[result.success]
        click.echo(f"   posture {rule_id} ({result.rule_name or result.type}): {verdict}")
    for rule in rules:
        met = "met" if rule.holds(profile, login_age) else f"NOT met ({rule.reason})"
        click.echo(f"   rule {rule.describe()}: {met}")


def _refuse(reason: Reason | None) -> NoReturn:
    status = None if reason is None else reason.status
    click.echo(f"Result: REFUSED ({reason}): {_explain(reason)}. The app answers {status}.")
    raise click.exceptions.Exit(1)


def _shown(value: object) -> str:
    """``repr`` of a claim value, verified claims' tuples and read-only mappings shown as JSON's."""
    return repr(_thawed(value))


def _thawed(value: object) -> object:
    if isinstance(value, Mapping):
        return {name: _thawed(item) for name, item in value.items()}
    if isinstance(value, tuple):
        return [_thawed(item) for item in value]
    return value


#: How a failed time check is marked beside the time.
_TIME_MARKS: Mapping[Reason, str] = {
    Reason.EXPIRED: "EXPIRED",
    Reason.NOT_YET_VALID: "NOT YET VALID",
    Reason.ISSUED_IN_FUTURE: "in the future",
}
#: The claims checks whose failure :func:`_claim_lines` shows below the claims
#: (those of ``iss``, ``aud`` and the times are shown beside them).
_SHOWN_BELOW = frozenset({"claim types", "required claims", "type", "max age"})


def _claim_lines(explanation: Explanation, checker: AccessChecker, now: float) -> list[str]:
    """The claims, each marked with the verdict of its check when they verified."""
    claims: Mapping[str, Any] = explanation.claims or {}
    settings = checker.settings
    lines: list[str] = []

    def mark(name: str, ok: str, failed: str) -> str:
        step = explanation.step(name)
        if step is None:  # not checked: the claims did not verify
            return ""
        return f"  ({ok})" if step.passed else f"  ({failed})"

    issuer = claims.get("iss")
    lines.append(f"iss  {_shown(issuer)}{mark('iss', 'ok', f'expected {settings.issuer}')}")
    holds = "ok: holds this app's AUD tag"
    expected = f"expected to hold {' or '.join(settings.audience)}"
    lines.append(f"aud  {_shown(claims.get('aud'))}{mark('aud', holds, expected)}")
    for name in ("iat", "nbf", "exp"):
        if name not in claims:
            continue
        step = explanation.step(name)
        verdict = ""
        if step is not None and _is_time(claims[name]):
            verdict = "  (ok)" if step.reason is None else f"  ({_TIME_MARKS.get(step.reason)})"
        lines.append(f"{name}  {_when(claims[name], now)}{verdict}")
    lines.append(f"     now is {_when(now, now).split(' (')[0]}; the leeway is {settings.leeway} s")
    if claims.get("common_name") and not claims.get("sub"):
        lines.append(f"who  service token {_shown(claims['common_name'])}")
    else:
        lines.append(f"who  user {_shown(claims.get('email'))}, sub {_shown(claims.get('sub'))}")
    if claims.get("type", "app") != "app":
        lines.append(f"type {_shown(claims.get('type'))}")
    if "groups" in claims:
        lines.append(f"groups {_shown(claims['groups'])}")
    custom = claims.get("custom")
    if isinstance(custom, Mapping) and custom:
        lines.append(f"custom attributes: {', '.join(sorted(map(str, custom)))}")
    for step in explanation.steps:
        if step.name in _SHOWN_BELOW and step.reason is not None:
            lines.append(f"{step.name}: FAILED ({step.reason}: {_explain(step.reason)})")
    return lines


def _is_time(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a NumericDate the claims checks take as a time (1970 to 9999)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value < MAX_NUMERIC_DATE
    )


def _when(value: object, now: float) -> str:
    """A NumericDate as a UTC time and how far from now it is."""
    if not _is_time(value):
        return f"{_shown(value)} (not a time)"
    moment = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    delta = value - now
    if abs(delta) < 1:
        relative = "now"
    elif delta > 0:
        relative = f"in {_span(delta)}"
    else:
        relative = f"{_span(-delta)} ago"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({relative})"


def _span(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{amount} {unit}" for amount, unit in parts if amount][:2]
    return " ".join(shown) or "0 s"


# -- mint --------------------------------------------------------------------


@cli.command("mint")
@click.option("--email", help="Mint a user's token for this e-mail.")
@click.option("--group", "groups", multiple=True, metavar="NAME", help="The user's groups.")
@click.option("--service-token", metavar="CLIENT_ID", help="Mint a service token's token.")
@click.option("--lifetime", type=click.IntRange(min=1), help="Seconds the token is valid for.")
@click.option("--expired", is_flag=True, help="A token that expired an hour ago.")
@click.option("--not-yet-valid", is_flag=True, help="A token valid only from an hour from now.")
@click.option("--audience", metavar="AUD", help="Another application's AUD tag.")
@click.option("--amr", multiple=True, metavar="METHOD", help="How the user signed in (pwd, hwk…).")
@click.option("--mfa", is_flag=True, help="The user signed in with MFA (amr: pwd, otp).")
@click.option("--idp", metavar="TYPE", help="The identity provider's type, e.g. okta.")
@click.option("--posture", multiple=True, metavar="RULE_ID", help="A posture rule that passed.")
@click.option(
    "--failing-posture", multiple=True, metavar="RULE_ID", help="A posture rule that failed."
)
@click.option("--login-age", type=click.IntRange(min=0), help="Seconds since the user signed in.")
@click.option("--country", metavar="CC", help="The country the user authenticated from.")
@click.option("--warp", is_flag=True, help="The user came through WARP.")
@click.option("--device-id", metavar="ID", help="The WARP device's id.")
@click.option(
    "--attribute", "attributes", multiple=True, metavar="NAME=VALUE", help="A SAML/OIDC attribute."
)
def mint_command(
    email: str | None,
    groups: tuple[str, ...],
    service_token: str | None,
    lifetime: int | None,
    expired: bool,
    not_yet_valid: bool,
    audience: str | None,
    amr: tuple[str, ...],
    mfa: bool,
    idp: str | None,
    posture: tuple[str, ...],
    failing_posture: tuple[str, ...],
    login_age: int | None,
    country: str | None,
    warp: bool,
    device_id: str | None,
    attributes: tuple[str, ...],
) -> None:
    """Print a token minted by the local Access stand-in (never by a real team).

    Works only when the app takes its keys from the stand-in started by
    ``python -m examples.protected_app``, whose minting URL is in
    CF_ACCESS_STAND_IN; refuses otherwise. The token alone goes to standard
    output, e.g. TOKEN=$(flask cf-access mint --email ada@example.com).
    """
    if (email is None) == (service_token is None):
        raise click.UsageError("give either --email or --service-token")
    if groups and email is None:
        raise click.UsageError("--group is for a user (--email)")
    profile = _profile_request(
        amr=[*amr, *(("pwd", "otp") if mfa else ())],
        idp=idp,
        posture={
            **dict.fromkeys(posture, True),
            **dict.fromkeys(failing_posture, False),
        },
        login_age=login_age,
        country=country,
        warp=warp or None,
        device_id=device_id,
        custom=dict(_attribute(text) for text in attributes),
    )
    if profile and email is None:
        raise click.UsageError("a profile (--amr, --posture, --idp…) is for a user (--email)")
    checker = _checker_of()
    mint_url = _stand_in_mint_url(checker)
    request: dict[str, Any] = {
        "email": email,
        "groups": list(groups),
        "service_token": service_token,
        "lifetime": lifetime,
        "expired": expired,
        "not_yet_valid": not_yet_valid,
        "audience": audience,
        "profile": profile or None,
    }
    token = _ask_stand_in(mint_url, request, checker.settings.http_timeout)
    if not (expired or not_yet_valid or audience):
        try:
            verify_token(token)
        except AccessError as error:
            click.echo(f"Warning: this app would refuse the token ({error.reason}).", err=True)
    click.echo(token)


def _profile_request(**fields: Any) -> dict[str, Any]:
    """The ``profile`` of a minting request: the fields given, none of the empty ones."""
    return {name: value for name, value in fields.items() if value not in (None, [], {})}


def _attribute(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise click.UsageError(f"--attribute takes NAME=VALUE, not {text!r}")
    return name, value


def _stand_in_mint_url(checker: AccessChecker) -> str:
    """The stand-in's minting URL, if this app trusts that stand-in and nothing else."""
    settings = checker.settings
    mint_url = settings.stand_in  # an http:// URL on this machine, if set
    if mint_url is None:
        raise click.ClickException(
            f"mint only makes tokens from the local Access stand-in, and this app trusts"
            f" the team {settings.team_domain} (CF_ACCESS_STAND_IN is not set)."
            " Start the stand-in with `python -m examples.protected_app` and use the"
            " settings it prints, or mint in tests with flask_cf_access.testing.AccessIssuer."
        )
    stand_in = urlsplit(mint_url)
    certs = urlsplit(settings.certs_url)
    if (certs.scheme, certs.netloc) != (stand_in.scheme, stand_in.netloc):
        raise click.ClickException(
            f"this app takes its keys from {settings.certs_url}, not from the stand-in at"
            f" {stand_in.scheme}://{stand_in.netloc}: it trusts a real Access team, so mint"
            " refuses."
        )
    return str(mint_url)


def _ask_stand_in(mint_url: str, request: Mapping[str, Any], timeout: float) -> str:
    with requests.Session() as session:
        try:
            response = session.post(
                mint_url, json=dict(request), timeout=timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise click.ClickException(
                f"the stand-in could not be reached ({type(exc).__name__}):"
                " is `python -m examples.protected_app` still running?"
            ) from exc
    try:
        answer = parse_json(response.content)
    except ValueError as exc:
        raise click.ClickException("the stand-in did not answer JSON") from exc
    token = answer.get("token") if isinstance(answer, dict) else None
    if response.status_code != 200 or not isinstance(token, str):
        problem = answer.get("err") if isinstance(answer, dict) else None
        raise click.ClickException(
            f"the stand-in refused to mint (HTTP {response.status_code}: {problem or 'no reason'})"
        )
    return token


# -- routes ------------------------------------------------------------------


@cli.command("routes")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 if any endpoint is unprotected and not marked public, has a"
    " requirement that was declared but not applied, or requires a role nothing grants;"
    " with CF_ACCESS_APPLICATIONS, if a protected endpoint falls under no application,"
    " or under another than its decorator or guard names.",
)
def routes_command(strict: bool) -> None:
    """List every URL rule, its methods and what a request to it needs.

    Flags a view whose decorator sits above ``@app.route``: the requirement
    was declared on the function but the route registered it unwrapped; and
    a required role that nothing grants. Needs no keys and fetches none.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    audits = audit_routes(app)
    rows: list[tuple[str, ...]] = [("RULE", "METHODS", "ENDPOINT", "REQUIRES")]
    rows += [
        (audit.rule, ",".join(audit.methods), audit.endpoint, audit.requires) for audit in audits
    ]
    state = state_of(app)
    if state is not None and state.checker.applications is not None:
        # Several Access applications: which one each route falls under.
        rows = [
            (*row[:3], heading, row[3])
            for row, heading in zip(
                rows,
                ["APPLICATION"] + ["|".join(audit.applications) or "-" for audit in audits],
                strict=True,
            )
        ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        click.echo("  ".join([*cells, row[-1]]))
    problems = [audit for audit in audits if audit.is_problem]
    mode = "on" if route_policy(app).protect_all else "off"
    click.echo(f"\nDeny by default (CF_ACCESS_PROTECT_ALL): {mode}.")
    for name in unknown_public_endpoints(app):
        click.echo(f"Warning: CF_ACCESS_PUBLIC_ENDPOINTS names {name!r}, which is no endpoint.")
    ungranted = ungranted_roles(app, audits)
    for role in ungranted:
        click.echo(
            f"Warning: the role {role!r} is required but granted by nothing in"
            " CF_ACCESS_ROLES or CF_ACCESS_SERVICE_TOKENS: every request gets 403."
        )
    for audit in problems:
        if audit.status in ("unprotected", "not applied"):
            what = "UNPROTECTED" if audit.status == "unprotected" else "REQUIREMENT NOT APPLIED"
            unread = f" (unaudited: {', '.join(audit.unaudited)})" if audit.unaudited else ""
            click.echo(f"{what}: {audit.rule} ({audit.endpoint}){unread}")
        if audit.application_problem is not None:
            click.echo(
                f"WRONG APPLICATION: {audit.rule} ({audit.endpoint}): {audit.application_problem}"
            )
    if not problems:
        click.echo("Every endpoint is protected or explicitly public.")
    if strict and (problems or ungranted):
        sys.exit(1)
