"""App-wide e-mail rules: parsed, then matched by parts; malformed addresses fail them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.test import Client

from flask_cf_access import (
    CloudflareAccess,
    CloudflareAccessMiddleware,
    Reason,
    require_access,
    require_role,
)
from flask_cf_access.testing import AccessCapture, AccessIssuer, run_inline

from .support import FrozenClock, bearer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

DOMAINS = ["acme.com", ".corp.example", "kelvin.example", "b\u00fccher.example"]
EMAILS = ["contractor@gmail.com"]

ADMITTED = [
    "ada@acme.com",
    "ADA@ACME.COM",
    "ada@Acme.Com",
    "x@eu.corp.example",
    "x@a.b.corp.example",
    "Contractor@Gmail.com",
    "x@KELVIN.example",
    "x@b\u00fccher.example",  # an internationalised domain, as written
    "x@xn--bcher-kva.example",  # the same, in its A-label form
    "x@XN--BCHER-KVA.example",
]

#: Well-formed addresses the rules do not admit: 403 email_not_allowed.
NOT_ALLOWED = [
    "ada@evil-acme.com",  # a different domain ending the same
    "ada@acme.com.evil.com",  # the allowed domain as a prefix
    "acme.com@evil.com",  # the allowed domain as the local part
    "ada@sub.acme.com",  # a subdomain, not written as .acme.com
    "ada@corp.example",  # .corp.example is for subdomains only
    "ada@xcorp.example",  # ends with corp.example, not .corp.example
    "ada@acme.c\u043em",  # Cyrillic o: a well-formed, other domain
    "ada@\u0430cme.com",  # Cyrillic a
    "contractor@gmail.com.evil.com",
    "other@gmail.com",  # an address rule does not open its domain
]

#: Addresses that are not well formed: 403 malformed_email, whatever the rules.
MALFORMED = [
    "ada@acme.com@evil.com",  # two @
    '"ada@x"@acme.com',  # a quoted local part
    "ada@acme.com.",  # trailing dot
    "ada@acme.com ",  # trailing space
    " contractor@gmail.com",  # leading space
    "ada@\uff41cme.com",  # fullwidth a, which IDNA's mapping would turn into ASCII
    "ada@acme\u3002com",  # ideographic full stop, which IDNA's mapping turns into "."
    "ada@acme.com\u200b",  # zero-width space
    "x@\u212aelvin.example",  # Kelvin sign, which Unicode lowers to "k"
    "x@B\u00dcCHER.example",  # non-ASCII upper case: never folded
    "x@[10.0.0.1]",  # an address literal
    "x@10.0.0.1",  # an IP address
    "x@acme.com:443",
    "a..b@acme.com",  # an empty atom
    "\u00e9l\u00e8ve@acme.com",  # a non-ASCII local part (RFC 6531)
    "\u212a@acme.com",  # a Kelvin sign in the local part
    "@acme.com",  # no local part
    "ada",  # no domain
    "ada@",  # an empty domain
    "x" * 65 + "@acme.com",  # a local part over 64 bytes
    "x@" + "a" * 64 + ".acme.com",  # a label over 63 characters
]

#: The reported addresses that passed ``.corp.example`` by suffix: all malformed.
HOSTILE = [
    "x@evil.com/.corp.example",
    "x@evil.com?.corp.example",
    "x@evil.com#.corp.example",
    "x@evil.com\\.corp.example",
    "x@..corp.example",
    "x@-.corp.example",
    "x@a-.corp.example",
    " x@a.corp.example",
    "x@a.corp.example\x00",
    "x\x00@a.corp.example",
    "x@a\x00.corp.example",
    "x@a.corp.example\n",
    "x y@a.corp.example",
    "x@evil.com .corp.example",
    "x@evil.com@a.corp.example",
    "x@_.corp.example",
    "x@\u202ea.corp.example",  # a bidirectional override
]


@pytest.fixture
def app(issuer: AccessIssuer, clock: FrozenClock) -> Flask:
    """An app with e-mail rules, a plain view and a role view."""
    app = Flask("emails")
    app.config.update(
        issuer.settings(
            CF_ACCESS_ALLOWED_EMAIL_DOMAINS=DOMAINS,
            CF_ACCESS_ALLOWED_EMAILS=EMAILS,
            CF_ACCESS_ROLES={"admin": ["Admins"]},
        )
    )
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.get("/")
    @require_access
    def home() -> str:
        return "ok"

    @app.get("/admin")
    @require_role("admin")
    def admin() -> str:
        return "ok"

    return app


@pytest.mark.parametrize("email", ADMITTED)
def test_admitted(app: Flask, issuer: AccessIssuer, email: str) -> None:
    """Addresses in the allowed domains or list pass, in any ASCII case."""
    response = app.test_client().get("/", headers=bearer(issuer.user_token(email)))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("email", "reason"),
    [(email, Reason.EMAIL_NOT_ALLOWED) for email in NOT_ALLOWED]
    + [(email, Reason.MALFORMED_EMAIL) for email in MALFORMED + HOSTILE],
)
def test_refused(
    app: Flask, issuer: AccessIssuer, email: str, reason: Reason, captured: AccessCapture
) -> None:
    """Lookalike, suffixed and prefixed addresses get 403 email_not_allowed; one that is
    not well formed fails every rule with 403 malformed_email. The body says neither."""
    token = issuer.mint({"email": email, "sub": "user-id"})
    response = app.test_client().get("/", headers=bearer(token))
    assert response.status_code == 403
    assert captured.reasons == [reason]
    body = response.get_data(as_text=True)
    assert "email" not in body.lower()
    assert "acme" not in body


@pytest.mark.parametrize("email", [5, ["ada@acme.com"], {"address": "ada@acme.com"}, True])
def test_an_email_claim_that_is_no_string_is_malformed(
    app: Flask, issuer: AccessIssuer, email: object, captured: AccessCapture
) -> None:
    """An e-mail claim of another JSON type never reaches the rules: 401 malformed_claims."""
    token = issuer.mint({"email": email, "sub": "user-id"})
    assert app.test_client().get("/", headers=bearer(token)).status_code == 401
    assert captured.reasons == [Reason.MALFORMED_CLAIMS]


def test_malformed_is_logged_without_the_address(
    app: Flask, issuer: AccessIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line names the reason, never the address (nor a NUL or newline from it)."""
    token = issuer.mint({"email": "x@a.corp.example\n\x00forged", "sub": "user-id"})
    app.test_client().get("/", headers=bearer(token))
    assert "403 malformed_email" in caplog.text
    assert "forged" not in caplog.text
    assert "\x00" not in caplog.text


def test_without_rules_a_malformed_email_is_not_judged(
    issuer: AccessIssuer, clock: FrozenClock
) -> None:
    """No e-mail rule set: the address is not parsed, and the token is let in as before."""
    app = Flask("no-rules")
    app.config.update(issuer.settings())
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.get("/")
    @require_access
    def home() -> str:
        return "ok"

    token = issuer.mint({"email": "x@evil.com/.corp.example", "sub": "user-id"})
    assert app.test_client().get("/", headers=bearer(token)).status_code == 200


def test_rule_applies_before_the_view_requirement(
    app: Flask, issuer: AccessIssuer, captured: AccessCapture
) -> None:
    """An admin outside the e-mail rules is refused on a role view, for the e-mail."""
    token = issuer.user_token("ada@evil-acme.com", ["Admins"])
    assert app.test_client().get("/admin", headers=bearer(token)).status_code == 403
    assert captured.reasons == [Reason.EMAIL_NOT_ALLOWED]


def test_no_email_claim_refused(app: Flask, issuer: AccessIssuer, captured: AccessCapture) -> None:
    """A user token without an e-mail is refused when rules are set."""
    token = issuer.mint({"email": None, "sub": "user-id"})
    assert app.test_client().get("/", headers=bearer(token)).status_code == 403
    assert captured.reasons == [Reason.EMAIL_NOT_ALLOWED]


def test_service_tokens_exempt(app: Flask, issuer: AccessIssuer) -> None:
    """Service tokens are not users: the e-mail rules do not apply to them."""
    response = app.test_client().get("/", headers=bearer(issuer.service_token("ci.access")))
    assert response.status_code == 200


def test_middleware_applies_the_rules(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """The middleware takes the same rules as keyword settings."""

    def downstream(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    middleware = CloudflareAccessMiddleware(
        downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        allowed_email_domains="acme.com",
        session=issuer.session(),
        clock=clock,
        background=run_inline,
    )
    client = Client(middleware)
    assert client.get("/", headers=bearer(issuer.user_token("ada@ACME.com"))).status_code == 200
    evil = issuer.user_token("ada@evil-acme.com")
    assert client.get("/", headers=bearer(evil)).status_code == 403
    assert captured.reasons == [Reason.EMAIL_NOT_ALLOWED]
