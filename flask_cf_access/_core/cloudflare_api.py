"""A small, read-only client of the Cloudflare API, for ``flask cf-access discover`` and ``doctor``.

It reads what the deployment checks need and nothing more: the account's
Access applications (``GET /accounts/{account_id}/access/apps``, page by
page), the team's auth domain (``access/organizations``), the identity
providers (``access/identity_providers``) and the signing keys' rotation
(``access/keys``). Every call is bounded as the key fetches are
(:mod:`._fetch`): one deadline for the whole run, no redirect followed, at
most :data:`~._fetch.MAX_RESPONSE_BYTES` per answer, strict JSON.

The API token and the account id come from the environment. Neither is ever
put in a message, an exception or a ``repr``: requests are named by their
path with ``{account_id}`` in place of the id, and the token is kept in a
:class:`Secret`. The token is only ever sent to Cloudflare's API host, or to
a server on this machine (the tests' stand-in API).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError
from urllib3.util import Timeout

from .fetch import FetchError, read_by_deadline
from .json_input import parse_json
from .logsafe import loggable
from .settings import LOOPBACK_HOSTS

#: Where the API is, unless a test's stand-in is named instead.
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
#: The environment variables the credentials are read from.
TOKEN_VARIABLE = "CLOUDFLARE_API_TOKEN"
ACCOUNT_VARIABLE = "CLOUDFLARE_ACCOUNT_ID"
BASE_URL_VARIABLE = "CLOUDFLARE_API_BASE_URL"
#: Applications asked for per page, and the most pages read (5000 applications).
PER_PAGE = 100
MAX_PAGES = 50
#: An exported applications file larger than this is refused.
MAX_EXPORT_BYTES = 16 * 1024 * 1024

_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,512}")

#: The permission each read needs, for the message when the token lacks it.
_PERMISSIONS = {
    "apps": "Access: Apps and Policies Read",
    "organizations": "Access: Organizations, Identity Providers, and Groups Read",
    "identity_providers": "Access: Organizations, Identity Providers, and Groups Read",
    "keys": "Access: Keys Read",
}
_WHAT = {
    "apps": "the Access applications",
    "organizations": "the Access organization (the team's auth domain)",
    "identity_providers": "the identity providers",
    "keys": "the Access keys' rotation settings",
}


class ApiError(Exception):
    """A call to the Cloudflare API failed; the message is one line, with no credentials."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status, if the API answered one.
        self.status = status


class Secret:
    """A credential that never shows in a ``repr``, a ``str`` or a format."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself, for the one header it goes in."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('<hidden>')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


@dataclass(frozen=True)
class Credentials:
    """The API token and the account id (both hidden from ``repr``)."""

    token: Secret
    account_id: Secret

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Credentials:
        """:data:`TOKEN_VARIABLE` and :data:`ACCOUNT_VARIABLE`, checked.

        :raises ApiError: one missing or malformed (the value is not shown).
        """
        token = environ.get(TOKEN_VARIABLE, "").strip()
        account_id = environ.get(ACCOUNT_VARIABLE, "").strip().lower()
        if not token or not account_id:
            missing = [
                name
                for name, value in ((TOKEN_VARIABLE, token), (ACCOUNT_VARIABLE, account_id))
                if not value
            ]
            raise ApiError(
                f"{' and '.join(missing)} not set: give a read-only API token and the account"
                " id in the environment, or an exported applications file with --from-file"
            )
        if not _TOKEN.fullmatch(token):
            raise ApiError(f"{TOKEN_VARIABLE} is not an API token (its value is not shown)")
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise ApiError(
                f"{ACCOUNT_VARIABLE} is not an account id, 32 hexadecimal characters"
                " (its value is not shown)"
            )
        return cls(Secret(token), Secret(account_id))


def api_base_url(url: str) -> str:
    """``url`` if the token may be sent there: Cloudflare's API over HTTPS, or this machine.

    :raises ApiError: anywhere else.
    """
    parts = urlsplit(url)
    official = urlsplit(DEFAULT_BASE_URL)
    allowed = (parts.scheme, parts.hostname) == (official.scheme, official.hostname) or (
        parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS
    )
    if allowed and not parts.query and not parts.fragment and not parts.username:
        return url.rstrip("/")
    raise ApiError(
        f"the API token is only sent to {DEFAULT_BASE_URL} or a server on this machine,"
        f" not to {loggable(url)[:200]}"
    )


@dataclass(frozen=True)
class AccessApplication:
    """What the checks need of one Access application, as the API describes it."""

    name: str
    #: The application's AUD tag, which its tokens carry in ``aud``.
    aud: str
    type: str
    #: ``host/path`` patterns it covers: ``domain``, ``self_hosted_domains`` and
    #: the public ``destinations``, in that order, without repeats.
    domains: tuple[str, ...]
    #: Access' session length, as the API writes it (``"24h"``), if given.
    session_duration: str | None = None
    #: Identity provider ids users may sign in with; empty means all of the account's.
    allowed_idps: tuple[str, ...] = ()
    #: ``same_site_cookie_attribute``: ``"none"``, ``"lax"``, ``"strict"``, or ``None`` if unset.
    same_site: str | None = None
    #: ``options_preflight_bypass``: CORS preflights pass the edge without a sign-in.
    preflight_bypass: bool = False


@dataclass(frozen=True)
class IdentityProvider:
    """An identity provider of the account."""

    id: str
    name: str
    type: str


@dataclass(frozen=True)
class Deployment:
    """What the API (or an export) says about the account; ``None`` where it said nothing."""

    applications: tuple[AccessApplication, ...]
    #: The team's auth domain, e.g. ``acme.cloudflareaccess.com``.
    auth_domain: str | None = None
    identity_providers: Mapping[str, IdentityProvider] | None = None
    key_rotation_days: float | None = None
    #: Why a part is missing (not readable with this token, or not in an export).
    gaps: Mapping[str, str] | None = None


def applications_from_document(document: object, source: str) -> tuple[AccessApplication, ...]:
    """The applications in an API answer: the envelope, or the bare ``result`` list.

    :raises ApiError: not a list of applications.
    """
    result = document.get("result") if isinstance(document, dict) else document
    if isinstance(document, dict) and document.get("success") is False:
        raise ApiError(f"{source} is an error answer: {_errors_of(document)}")
    if not isinstance(result, list):
        raise ApiError(
            f"{source} is not a list of Access applications (the API's answer, or its"
            " 'result' list)"
        )
    applications = []
    for entry in result:
        application = _application(entry)
        if application is not None:
            applications.append(application)
    return tuple(applications)


def read_export(path: str) -> tuple[AccessApplication, ...]:
    """The applications in the exported file ``path``.

    :raises ApiError: unreadable, too large, not JSON, or not applications.
    """
    name = loggable(path)
    try:
        with open(path, "rb") as export:
            data = export.read(MAX_EXPORT_BYTES + 1)
    except OSError as exc:
        raise ApiError(f"{name} cannot be read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_EXPORT_BYTES:
        raise ApiError(f"{name} is larger than {MAX_EXPORT_BYTES} bytes")
    try:
        document = parse_json(data)
    except ValueError as exc:
        raise ApiError(f"{name} is not JSON ({exc})") from None
    return applications_from_document(document, name)


def write_export(path: str, applications: Sequence[AccessApplication]) -> None:
    """Write ``applications`` to ``path`` as :func:`read_export` reads them: the API's
    envelope, holding only the fields the checks read (no policies, no e-mail addresses).

    :raises ApiError: the file cannot be written.
    """
    result = [
        {
            "name": application.name,
            "aud": application.aud,
            "type": application.type,
            "domain": application.domains[0] if application.domains else None,
            "self_hosted_domains": list(application.domains),
            "session_duration": application.session_duration,
            "allowed_idps": list(application.allowed_idps),
            "same_site_cookie_attribute": application.same_site,
            "options_preflight_bypass": application.preflight_bypass,
        }
        for application in applications
    ]
    document = {"success": True, "errors": [], "messages": [], "result": result}
    try:
        with open(path, "w", encoding="utf-8") as export:
            export.write(json.dumps(document, indent=2) + "\n")
    except OSError as exc:
        raise ApiError(
            f"{loggable(path)} cannot be written: {exc.strerror or type(exc).__name__}"
        ) from None


def _text(value: object) -> str | None:
    """A non-empty string of the API's, escaped (:func:`loggable`) and cut to 300 characters:
    names and domains are printed, and none of them may end or fake a line."""
    if not isinstance(value, str) or not value.strip():
        return None
    return loggable(value.strip())[:300]


def _application(entry: object) -> AccessApplication | None:
    """One application of the list; ``None`` for one with no AUD tag (nothing to check)."""
    if not isinstance(entry, dict):
        return None
    aud = _text(entry.get("aud"))
    if aud is None:
        return None
    domains: list[str] = []
    candidates: list[object] = [entry.get("domain")]
    hosted = entry.get("self_hosted_domains")
    if isinstance(hosted, list):
        candidates.extend(hosted)
    destinations = entry.get("destinations")
    if isinstance(destinations, list):
        candidates.extend(
            item.get("uri")
            for item in destinations
            if isinstance(item, dict) and item.get("type", "public") == "public"
        )
    for candidate in candidates:
        domain = _text(candidate)
        if domain is not None and domain.lower() not in domains:
            domains.append(domain.lower())
    idps = entry.get("allowed_idps")
    same_site = _text(entry.get("same_site_cookie_attribute"))
    return AccessApplication(
        name=_text(entry.get("name")) or "(unnamed)",
        aud=aud,
        type=_text(entry.get("type")) or "self_hosted",
        domains=tuple(domains),
        session_duration=_text(entry.get("session_duration")),
        allowed_idps=tuple(idp for idp in idps if isinstance(idp, str))
        if isinstance(idps, list)
        else (),
        same_site=same_site.lower() if same_site else None,
        preflight_bypass=entry.get("options_preflight_bypass") is True,
    )


def _errors_of(document: object) -> str:
    """Cloudflare's ``errors`` of an answer, as ``code message; …`` (escaped, cut short)."""
    errors = document.get("errors") if isinstance(document, dict) else None
    shown = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            code_text = str(code) if isinstance(code, int) and not isinstance(code, bool) else ""
            message_text = loggable(message)[:160] if isinstance(message, str) else ""
            if code_text or message_text:
                shown.append(" ".join(part for part in (code_text, message_text) if part))
        if len(shown) == 3:
            break
    return "; ".join(shown) or "no error given"


class CloudflareApi:
    """Read-only calls for one account, all within one deadline of ``timeout`` seconds."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._base_url = api_base_url(base_url)
        self._timeout = timeout
        self._owns_session = session is None
        self._session = session or requests.Session()
        if self._owns_session and urlsplit(self._base_url).hostname in LOOPBACK_HOSTS:
            # A server on this machine is reached directly, never through a proxy
            # named in the environment, which would see the token.
            self._session.trust_env = False
        self._clock = clock
        self._deadline = clock() + timeout

    def __repr__(self) -> str:
        return f"CloudflareApi(base_url={self._base_url!r})"

    def __enter__(self) -> CloudflareApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections of the session this client made (not of one it was given)."""
        if self._owns_session:
            self._session.close()

    def applications(self) -> tuple[AccessApplication, ...]:
        """Every Access application of the account, page by page (at most :data:`MAX_PAGES`).

        :raises ApiError: any failure, in one line.
        """
        applications: list[AccessApplication] = []
        for page in self._pages():
            applications.extend(applications_from_document(page, "the API's answer"))
        return tuple(applications)

    def _pages(self) -> Iterator[object]:
        page = 1
        while True:
            document = self._get("apps", {"page": str(page), "per_page": str(PER_PAGE)})
            yield document
            info = document.get("result_info") if isinstance(document, dict) else None
            total = info.get("total_pages") if isinstance(info, dict) else None
            result = document.get("result") if isinstance(document, dict) else None
            if not isinstance(total, int) or isinstance(total, bool) or page >= total:
                return
            if not result:  # an empty page before the last: nothing more will come
                return
            if page >= MAX_PAGES:
                raise ApiError(
                    f"the account has more than {MAX_PAGES * PER_PAGE} Access applications"
                    f" ({total} pages of {PER_PAGE}); export those of this app and use"
                    " --from-file"
                )
            page += 1

    def deployment(self) -> Deployment:
        """The applications, with the auth domain, identity providers and key rotation.

        A part the token may not read (HTTP 403) is left out and named in ``gaps``;
        the applications themselves are required.

        :raises ApiError: any failure but a 403 on the parts besides the applications.
        """
        applications = self.applications()
        gaps: dict[str, str] = {}
        organization = self._optional("organizations", gaps)
        providers = self._optional("identity_providers", gaps)
        keys = self._optional("keys", gaps)
        auth_domain = (
            _text(organization.get("auth_domain")) if isinstance(organization, dict) else None
        )
        identity_providers = None
        if isinstance(providers, list):
            identity_providers = {
                str(_text(item.get("id"))): IdentityProvider(
                    str(_text(item.get("id"))),
                    _text(item.get("name")) or "?",
                    _text(item.get("type")) or "?",
                )
                for item in providers
                if isinstance(item, dict) and _text(item.get("id"))
            }
        rotation = keys.get("key_rotation_interval_days") if isinstance(keys, dict) else None
        return Deployment(
            applications=applications,
            auth_domain=auth_domain.lower() if auth_domain else None,
            identity_providers=identity_providers,
            key_rotation_days=(
                float(rotation)
                if isinstance(rotation, (int, float)) and not isinstance(rotation, bool)
                else None
            ),
            gaps=gaps,
        )

    def _optional(self, kind: str, gaps: dict[str, str]) -> object:
        try:
            document = self._get(kind)
        except ApiError as error:
            if error.status != 403:
                raise
            gaps[kind] = f"the token may not read {_WHAT[kind]} (needs '{_PERMISSIONS[kind]}')"
            return None
        return document.get("result") if isinstance(document, dict) else None

    def _get(self, kind: str, params: Mapping[str, str] | None = None) -> Mapping[str, Any]:
        """The envelope of ``GET {base}/accounts/{account_id}/access/{kind}``, if it succeeded."""
        name = f"GET /accounts/{{account_id}}/access/{kind}"
        url = f"{self._base_url}/accounts/{self._credentials.account_id.reveal()}/access/{kind}"
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise ApiError(f"the Cloudflare API did not answer {name} within {self._timeout:g} s")
        headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {self._credentials.token.reveal()}",
        }
        deadline = time.monotonic() + remaining
        connect_and_first_byte: Any = Timeout(total=remaining)
        try:
            with (
                _hidden_in_logs(self._credentials),
                self._session.get(
                    url,
                    params=params,
                    headers=headers,
                    timeout=connect_and_first_byte,
                    allow_redirects=False,
                    stream=True,
                ) as response,
            ):
                status = response.status_code
                retry_after = response.headers.get("Retry-After", "")
                body = read_by_deadline(response, deadline, self._timeout, name)
        except requests.RequestException as exc:
            # A read that times out while the body comes is a ConnectionError
            # wrapping urllib3's ReadTimeoutError, not a requests.Timeout.
            late = isinstance(exc, requests.Timeout) or time.monotonic() >= deadline
            if late or any(isinstance(arg, ReadTimeoutError) for arg in exc.args):
                raise ApiError(
                    f"the Cloudflare API did not answer {name} within {self._timeout:g} s"
                ) from None
            raise ApiError(
                f"the Cloudflare API could not be reached ({type(exc).__name__} on {name})"
            ) from None
        except FetchError as exc:
            if "took longer" in str(exc):
                raise ApiError(
                    f"the Cloudflare API did not answer {name} within {self._timeout:g} s"
                ) from None
            raise ApiError(f"the Cloudflare API: {exc}") from None
        try:
            document: object = parse_json(body)
        except ValueError:
            document = None
        return _judged(kind, name, status, retry_after, document)


#: urllib3 logs each request's path, which holds the account id, at DEBUG level.
_HTTP_LOGGER = logging.getLogger("urllib3.connectionpool")


class _HideCredentials(logging.Filter):
    """Writes ``{account_id}`` and ``{token}`` in a log record for the credentials."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._hidden = (
            (credentials.account_id.reveal(), "{account_id}"),
            (credentials.token.reveal(), "{token}"),
        )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret, _ in self._hidden):
            for secret, name in self._hidden:
                message = message.replace(secret, name)
            record.msg, record.args = message, None
        return True


@contextlib.contextmanager
def _hidden_in_logs(credentials: Credentials) -> Iterator[None]:
    """The HTTP library's log records name no credential while a call is made."""
    hide = _HideCredentials(credentials)
    _HTTP_LOGGER.addFilter(hide)
    try:
        yield
    finally:
        _HTTP_LOGGER.removeFilter(hide)


def _judged(
    kind: str, name: str, status: int, retry_after: str, document: object
) -> Mapping[str, Any]:
    """The envelope of a successful answer, or the :class:`ApiError` a failed one means."""
    errors = _errors_of(document)
    what = _WHAT[kind]
    if status == 401:
        raise ApiError(
            f"the Cloudflare API refused the token (HTTP 401: {errors}): is"
            f" {TOKEN_VARIABLE} a valid API token?",
            status,
        )
    if status == 403:
        raise ApiError(
            f"the Cloudflare API refused to show {what} (HTTP 403: {errors}): the token needs"
            f" '{_PERMISSIONS[kind]}' on the account {ACCOUNT_VARIABLE} names",
            status,
        )
    if status == 404:
        raise ApiError(
            f"the Cloudflare API knows no such account (HTTP 404 on {name}: {errors}): is"
            f" {ACCOUNT_VARIABLE} right?",
            status,
        )
    if status == 429:
        wait = retry_after.strip() if retry_after.strip().isdigit() else ""
        later = f"retry in {wait} s" if wait else "retry later"
        raise ApiError(
            f"the Cloudflare API is rate limiting this token (HTTP 429: {errors}): {later}", status
        )
    if 300 <= status < 400:
        raise ApiError(
            f"the Cloudflare API answered {name} with a redirect (HTTP {status}), never followed",
            status,
        )
    if status >= 500:
        raise ApiError(
            f"the Cloudflare API is failing (HTTP {status} on {name}: {errors}): try again later",
            status,
        )
    if not 200 <= status < 300:
        raise ApiError(f"the Cloudflare API answered HTTP {status} on {name}: {errors}", status)
    if not isinstance(document, dict):
        raise ApiError(f"the Cloudflare API's answer to {name} is not a JSON object", status)
    if document.get("success") is not True:
        raise ApiError(f"the Cloudflare API failed {name}: {errors}", status)
    return document
