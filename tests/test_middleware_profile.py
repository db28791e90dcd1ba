"""The middleware passes the verified profile on in mapped headers; client copies never pass."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from werkzeug.test import Client

from flask_cf_access import CloudflareAccessMiddleware, ConfigurationError, Reason, require
from flask_cf_access.testing import AccessCapture, AccessIssuer, identity_profile, run_inline

from .support import START, FrozenClock, bearer, decisions, outcome
from .test_wsgi_middleware import Downstream

#: Every profile header the middleware can send, by header name.
PROFILE_HEADERS = {
    "X-Auth-Mfa": "profile.mfa",
    "X-Auth-Amr": "profile.amr",
    "X-Auth-Idp": "profile.idp",
    "X-Auth-Idp-Id": "profile.idp_id",
    "X-Auth-Auth-Country": "profile.country",
    "X-Auth-Warp": "profile.warp",
    "X-Auth-Gateway": "profile.gateway",
    "X-Auth-Device": "profile.device_id",
    "X-Auth-Login-At": "profile.login_at",
    "X-Auth-Posture": "profile.posture",
    "X-Auth-Disk": "profile.posture.disk",
    "X-Auth-Firewall": "profile.posture.firewall",
    "X-Auth-Clearance": "profile.custom.clearance",
    "X-Auth-Principal": "profile.oidc_fields.principalName",
}
#: What a client may send to pass for someone better placed.
SPOOFED = {
    "X-Auth-Mfa": "true",
    "X-Auth-Disk": "true",
    "X_Auth_Firewall": "true",
    "X-Auth-Posture": "disk,firewall",
    "X-Auth-Clearance": "top-secret",
    "X-Auth-Idp": "okta",
}
PROFILE = identity_profile(
    amr=["pwd", "hwk"],
    idp=("okta-1", "okta"),
    posture={"disk": True, "firewall": False},
    login_at=START - 60,
    country="FR",
    warp=True,
    gateway=False,
    device_id="dev-1",
    custom={"clearance": ["secret", "internal"]},
    oidc_fields={"principalName": "ada@corp.example"},
)


def middleware(
    downstream: Downstream, issuer: AccessIssuer, clock: FrozenClock, **options: Any
) -> CloudflareAccessMiddleware:
    return CloudflareAccessMiddleware(
        downstream,
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=issuer.session(),
        clock=clock,
        headers=PROFILE_HEADERS,
        public_paths=["/healthz"],
        **options,
        background=run_inline,
    )


def test_profile_headers(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Each profile header carries its field, client copies replaced."""
    downstream = Downstream()
    app = middleware(downstream, issuer, clock)
    token = issuer.user_token("ada@example.com", profile=PROFILE)
    response = Client(app).get("/", headers={**bearer(token), **SPOOFED})
    assert response.status_code == 200
    seen = downstream.seen
    assert seen["HTTP_X_AUTH_MFA"] == "true"
    assert seen["HTTP_X_AUTH_AMR"] == "pwd,hwk"
    assert (seen["HTTP_X_AUTH_IDP"], seen["HTTP_X_AUTH_IDP_ID"]) == ("okta", "okta-1")
    assert seen["HTTP_X_AUTH_AUTH_COUNTRY"] == "FR"
    assert (seen["HTTP_X_AUTH_WARP"], seen["HTTP_X_AUTH_GATEWAY"]) == ("true", "false")
    assert seen["HTTP_X_AUTH_DEVICE"] == "dev-1"
    assert seen["HTTP_X_AUTH_LOGIN_AT"] == str(START - 60)
    assert seen["HTTP_X_AUTH_POSTURE"] == "disk"
    assert (seen["HTTP_X_AUTH_DISK"], seen["HTTP_X_AUTH_FIREWALL"]) == ("true", "false")
    assert seen["HTTP_X_AUTH_CLEARANCE"] == "secret,internal"
    assert seen["HTTP_X_AUTH_PRINCIPAL"] == "ada@corp.example"


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_spoofed_profile_headers_never_pass(
    issuer: AccessIssuer, clock: FrozenClock, path: str
) -> None:
    """A user without MFA or posture, or no user at all, cannot claim them by header."""
    downstream = Downstream()
    app = middleware(downstream, issuer, clock)
    token = issuer.user_token("bob@example.com", profile=identity_profile(amr=["pwd"]))
    assert Client(app).get(path, headers={**bearer(token), **SPOOFED}).status_code == 200
    seen = downstream.seen
    if path == "/healthz":
        assert not any(key.startswith("HTTP_X_AUTH") for key in seen)
    else:
        assert seen["HTTP_X_AUTH_MFA"] == "false"
        assert seen["HTTP_X_AUTH_DISK"] == "false"
        assert seen["HTTP_X_AUTH_FIREWALL"] == "false"
        assert seen["HTTP_X_AUTH_POSTURE"] == ""
        assert seen["HTTP_X_AUTH_IDP"] == "onetimepin"
        assert "HTTP_X_AUTH_CLEARANCE" not in seen


def test_service_token_has_no_profile_headers(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A service token has no profile: its profile headers are left out, copies stripped."""
    downstream = Downstream()
    app = middleware(downstream, issuer, clock)
    headers = {**bearer(issuer.service_token()), **SPOOFED}
    assert Client(app).get("/", headers=headers).status_code == 200
    assert not any(key.startswith("HTTP_X_AUTH") for key in downstream.seen)


def test_posture_headers_are_fresh(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """Posture headers follow CF_ACCESS_PROFILE_MAX_AGE, as posture rules do."""
    downstream = Downstream()
    app = middleware(downstream, issuer, clock, profile_max_age=60)
    token = issuer.user_token("ada@example.com", profile=PROFILE)
    Client(app).get("/", headers=bearer(token))
    assert downstream.seen["HTTP_X_AUTH_DISK"] == "true"
    issuer.set_profile("ada@example.com", {**PROFILE, "devicePosture": {}})
    clock.advance(61)
    Client(app).get("/", headers=bearer(token))
    assert downstream.seen["HTTP_X_AUTH_DISK"] == "false"
    assert downstream.seen["HTTP_X_AUTH_MFA"] == "true"


def test_malformed_profile_is_503(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A profile header on a malformed answer: 503, the app never called."""
    downstream = Downstream()
    app = middleware(downstream, issuer, clock)
    token = issuer.user_token("ada@example.com", profile={"amr": "pwd"})
    assert Client(app).get("/", headers=bearer(token)).status_code == 503
    assert downstream.environ is None


def test_malformed_profile_refusal_is_reported(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """The 503 for a malformed profile is a refusal like any other: denied, with its reason."""
    app = middleware(Downstream(), issuer, clock)
    token = issuer.user_token("ada@example.com", profile={"amr": "pwd"})
    assert Client(app).get("/", headers=bearer(token)).status_code == 503
    assert decisions(captured) == [("denied", Reason.MALFORMED_PROFILE)]


def test_rules_on_the_profile(issuer: AccessIssuer, clock: FrozenClock) -> None:
    """The middleware's rules take requirements on the profile."""
    downstream = Downstream()
    app = middleware(downstream, issuer, clock, rules={"/admin": require(posture=["firewall"])})
    token = issuer.user_token("ada@example.com", profile=PROFILE)
    assert outcome(app, token, "/admin") == (403, Reason.POSTURE_FAILED)
    assert outcome(app, token, "/") == (200, None)


@pytest.mark.parametrize(
    "source", ["profile.", "profile.nothing", "profile.posture.", "profile.custom."]
)
def test_unknown_profile_source_is_refused(
    issuer: AccessIssuer, clock: FrozenClock, source: str
) -> None:
    """A profile header source that names nothing fails at start-up, naming the header."""
    with pytest.raises(ConfigurationError, match="X-Auth-Bad"):
        CloudflareAccessMiddleware(
            Downstream(),
            team_domain=issuer.team_domain,
            audience=issuer.audience,
            headers={"X-Auth-Bad": source},
            background=run_inline,
        )


def test_unavailable_groups_a_header_needs_are_a_reported_refusal(
    issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """A header that needs the groups, when get-identity cannot answer, is refused like
    the malformed profile: 503, denied with its reason, never granted first."""
    session = issuer.session()
    real_get = session.get

    def get(url: str | bytes, **kwargs: Any) -> Any:
        if str(url).endswith("/cdn-cgi/access/get-identity"):
            raise requests.ConnectionError("get-identity is down")
        return real_get(url, **kwargs)

    session.get = get  # type: ignore[method-assign]
    app = CloudflareAccessMiddleware(
        Downstream(),
        team_domain=issuer.team_domain,
        audience=issuer.audience,
        session=session,
        clock=clock,
        headers={"X-Auth-Groups": "groups"},
        background=run_inline,
    )
    token = issuer.user_token("ada@example.com")  # no groups claim: get-identity is asked
    assert Client(app).get("/", headers=bearer(token)).status_code == 503
    assert decisions(captured) == [("denied", Reason.IDENTITY_UNAVAILABLE)]
