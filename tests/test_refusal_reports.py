"""The log line and the ``access_denied`` signal say what the client was sent."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import Client

from flask_cf_access import CloudflareAccessMiddleware, Reason
from flask_cf_access.testing import AccessIssuer, capture_access, run_inline

from .conftest import AppFactory
from .support import FrozenClock, bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON_CLIENT = {"Accept": "application/json"}
XHR = {**BROWSER, "X-Requested-With": "XMLHttpRequest"}

#: Each form a refusal takes: the request (token and headers) and the mode, then what
#: the client gets, the reason, and the end of the log line.
FORMS = [
    ("no token", JSON_CLIENT, "status", 401, Reason.MISSING_TOKEN, "401 missing_token"),
    ("no token", BROWSER, "status", 401, Reason.MISSING_TOKEN, "401 missing_token"),
    (
        "no token",
        BROWSER,
        "redirect",
        302,
        Reason.MISSING_TOKEN,
        "302 missing_token (to the login page)",
    ),
    ("expired", BROWSER, "redirect", 302, Reason.EXPIRED, "302 expired (to the login page)"),
    ("no token", XHR, "redirect", 401, Reason.MISSING_TOKEN, "401 missing_token"),
    ("no token", JSON_CLIENT, "redirect", 401, Reason.MISSING_TOKEN, "401 missing_token"),
    ("not in group", BROWSER, "redirect", 403, Reason.NOT_IN_GROUP, "403 not_in_group"),
    ("no keys", BROWSER, "redirect", 503, Reason.KEYS_UNAVAILABLE, "503 keys_unavailable"),
    ("no keys", JSON_CLIENT, "status", 503, Reason.KEYS_UNAVAILABLE, "503 keys_unavailable"),
]
IDS = [
    f"{case}-{mode}-{status}-{headers['Accept'][:9]}" for case, headers, mode, status, *_ in FORMS
]


def token_headers(issuer: AccessIssuer, case: str) -> dict[str, str]:
    """The token the request of ``case`` sends."""
    if case == "expired":
        return bearer(issuer.user_token("a@example.com", expired=True))
    if case == "not in group":
        return bearer(issuer.user_token("bob@example.com", ["Staff"]))
    if case == "no keys":
        return bearer(issuer.user_token("a@example.com"))
    return {}


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "flask_cf_access" and "refused" in record.getMessage()
    ]


@pytest.mark.parametrize(("case", "headers", "mode", "status", "reason", "logged"), FORMS, ids=IDS)
def test_flask_log_and_signal_say_what_was_sent(
    make_app: AppFactory,
    issuer: AccessIssuer,
    caplog: pytest.LogCaptureFixture,
    case: str,
    headers: dict[str, str],
    mode: str,
    status: int,
    reason: Reason,
    logged: str,
) -> None:
    """401 JSON or HTML, the login redirect, 403, 503: the line and the signal match the answer."""
    config: dict[str, Any] = {"CF_ACCESS_UNAUTHORIZED": mode}
    if case == "no keys":
        config["CF_ACCESS_CERTS_URL"] = "https://unreachable.example/certs"
    app = make_app(**config)
    caplog.set_level(logging.WARNING, "flask_cf_access")
    with capture_access(app) as captured:
        response = app.test_client().get(
            "/admin?tab=1", headers={**token_headers(issuer, case), **headers}
        )
    assert response.status_code == status
    assert refusal_lines(caplog) == [f"Cloudflare Access refused GET /admin: {logged}"]
    record = captured.last
    assert (record.reason, record.status) == (reason, status)
    assert record.error is not None
    assert record.error.sent_status == status
    if status == 302:
        assert record.error.login_redirect == response.headers["Location"]
    else:
        assert record.error.login_redirect is None


def ok_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize(("case", "headers", "mode", "status", "reason", "logged"), FORMS, ids=IDS)
def test_middleware_log_and_signal_say_what_was_sent(
    issuer: AccessIssuer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    case: str,
    headers: dict[str, str],
    mode: str,
    status: int,
    reason: Reason,
    logged: str,
) -> None:
    """The middleware's refusals are logged and signalled as they are answered, too."""
    options: dict[str, Any] = {}
    if case == "no keys":  # the team answers 404 there
        options["certs_url"] = f"{issuer.issuer}/cdn-cgi/access/no-certs-here"
    middleware = CloudflareAccessMiddleware(
        ok_app,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        unauthorized=mode,
        rules={"/admin": ["Admins"]},
        **options,
        background=run_inline,
    )
    caplog.set_level(logging.WARNING, "flask_cf_access")
    with capture_access(middleware) as captured:
        response = Client(middleware).get(
            "/admin?tab=1", headers={**token_headers(issuer, case), **headers}
        )
    assert response.status_code == status
    assert refusal_lines(caplog) == [f"Cloudflare Access refused GET /admin: {logged}"]
    assert (captured.last.reason, captured.last.status) == (reason, status)
