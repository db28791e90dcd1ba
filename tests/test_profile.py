"""The user's profile from get-identity: parsed strictly, cached with the groups, judged fresh."""

from __future__ import annotations

import copy
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import (
    AccessProfile,
    AccessSettings,
    ConfigurationError,
    IdentityProvider,
    MutualTLS,
    Reason,
    current_identity,
    require,
    require_context,
    require_group,
    verify_token,
)
from flask_cf_access._core.identity_endpoint import IdentityEndpoint
from flask_cf_access._core.profile import MalformedProfile, context_rules, parse_profile
from flask_cf_access._flask.app_state import access_state
from flask_cf_access._flask.routes import audit_routes
from flask_cf_access.testing import AccessCapture, AccessIssuer, identity_profile, run_inline

from .conftest import AppFactory
from .support import FrozenClock, count_calls, outcome
from .test_flight import (
    THREADS,
    Followers,
    followers,  # noqa: F401 (a fixture)
)

ADA = "ada@example.com"
DISK = "f6f9391e-6776-4878-9c60-0cc807dc7dc8"
FIREWALL = "a3b1c2d4-0000-4000-8000-000000000001"

#: Cloudflare's reference architecture answer (Azure AD user on WARP), abridged.
REFERENCE: dict[str, Any] = {
    "id": "P51Tuu01",
    "name": "John Doe",
    "email": "john.doe@example.com",
    "amr": ["pwd"],
    "oidc_fields": {"principalName": "john.doe@example.com"},
    "groups": [{"id": "fdaedb59", "name": "Security Team"}],
    "idp": {"id": "b9f4d68e", "type": "azureAD"},
    "geo": {"country": "FR"},
    "user_uuid": "ce40d564",
    "account_id": "121287a0",
    "iat": 1724056537,
    "devicePosture": {
        DISK: {
            "id": DISK,
            "schedule": "5m",
            "timestamp": "2024-08-19T08:31:59.274Z",
            "type": "disk_encryption",
            "check": {"drives": {"C": {"encrypted": True}}},
            "success": False,
            "rule_name": "Disk Encryption - Windows",
            "input": {"requireAll": True},
        }
    },
}

#: The other published fields: WARP device, sessions, Gateway, attributes, mTLS.
WARP_USER: dict[str, Any] = {
    "email": "ada@example.com",
    "amr": ["pwd", "hwk"],
    "device_id": "dev-1",
    "device_sessions": {"dev-1": {"last_authenticated": 1724056000}},
    "gateway_account_id": "gw-1",
    "is_warp": True,
    "is_gateway": True,
    "service_token_status": False,
    "custom": {"department": "R&D", "clearance": ["secret"]},
    "ip": "203.0.113.7",
    "mtls_auth": {
        "cert_presented": True,
        "cert_serial": "01AB",
        "cert_issuer_dn": "CN=Acme CA",
        "cert_issuer_ski": "A1B2",
        "auth_status": "OK",
    },
    "version": 2,
    "devicePosture": {"warp-rule": {"rule_name": "Warp", "success": True, "type": "warp"}},
    "warp_as_idp": False,
}


def test_reference_answer_every_field() -> None:
    """Each field of Cloudflare's reference answer lands in its named field."""
    profile = parse_profile(REFERENCE, fetched_at=5.0)
    result = profile.posture[DISK]
    assert (result.rule_id, result.success, result.type) == (DISK, False, "disk_encryption")
    assert result.rule_name == "Disk Encryption - Windows"
    assert result.timestamp == "2024-08-19T08:31:59.274Z"
    assert result.check == {"drives": {"C": {"encrypted": True}}}
    assert result.input == {"requireAll": True}
    assert profile.login_at == 1724056537.0
    assert profile.amr == ("pwd",)
    assert profile.mfa is False
    assert profile.idp == IdentityProvider(id="b9f4d68e", type="azureAD")
    assert profile.country == "FR"
    assert profile.oidc_fields == {"principalName": "john.doe@example.com"}
    assert profile.fetched_at == 5.0
    assert profile.raw["account_id"] == "121287a0"
    assert profile.warp is None
    assert profile.mtls is None
    assert profile.device_id is None


def test_warp_answer_every_field() -> None:
    """The WARP, Gateway, device, attribute and mTLS fields, and a minimal posture entry."""
    profile = parse_profile(WARP_USER)
    assert profile.posture["warp-rule"].success is True
    assert profile.posture["warp-rule"].timestamp is None
    assert (profile.warp, profile.gateway, profile.device_id) == (True, True, "dev-1")
    assert profile.device_sessions["dev-1"].last_authenticated == 1724056000.0
    assert profile.custom == {"department": "R&D", "clearance": ("secret",)}
    assert profile.ip == "203.0.113.7"
    assert profile.mtls == MutualTLS(True, "01AB", "CN=Acme CA", "A1B2", "OK")
    assert profile.mfa is True
    assert profile.raw["version"] == 2
    assert profile.raw["warp_as_idp"] is False


def test_empty_answer_is_an_empty_profile() -> None:
    """Every field is optional."""
    assert parse_profile({}) == AccessProfile()


def test_profile_is_read_only() -> None:
    """Nothing in the profile can be changed by a view."""
    profile = parse_profile(copy.deepcopy(WARP_USER))
    with pytest.raises(TypeError):
        profile.custom["department"] = "Sales"  # type: ignore[index]
    with pytest.raises(TypeError):
        profile.raw["email"] = "eve@example.com"  # type: ignore[index]
    with pytest.raises(TypeError):
        profile.posture["x"] = profile.posture["warp-rule"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("amr", "mfa"),
    [
        ((), False),
        (("pwd",), False),
        (("hwk",), False),
        (("otp", "sms"), False),
        (("mfa",), True),
        (("pwd", "otp"), True),
        (("hwk", "fpt"), True),
        (("pwd", "unknown"), False),
    ],
)
def test_mfa_is_two_kinds_of_factor(amr: tuple[str, ...], mfa: bool) -> None:
    """``mfa`` in amr, or two kinds of factor among known, held and inherent."""
    assert AccessProfile(amr=amr).mfa is mfa


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("posture list", {"devicePosture": [{"id": DISK, "success": True}]}),
    ("posture entry not an object", {"devicePosture": {DISK: True}}),
    ("success as text", {"devicePosture": {DISK: {"success": "true"}}}),
    ("success as number", {"devicePosture": {DISK: {"success": 1}}}),
    ("entry filed under another id", {"devicePosture": {DISK: {"id": "x", "success": True}}}),
    ("timestamp a number", {"devicePosture": {DISK: {"timestamp": 5}}}),
    ("rule name a list", {"devicePosture": {DISK: {"rule_name": ["a"]}}}),
    ("country a number", {"geo": {"country": 33}}),
    ("geo a string", {"geo": "FR"}),
    ("amr a string", {"amr": "pwd"}),
    ("amr of numbers", {"amr": [1]}),
    ("idp a string", {"idp": "azureAD"}),
    ("idp type a number", {"idp": {"type": 5}}),
    ("iat as text", {"iat": "1724056537"}),
    ("iat a bool", {"iat": True}),
    ("is_warp as text", {"is_warp": "true"}),
    ("is_gateway a number", {"is_gateway": 1}),
    ("device id a number", {"device_id": 7}),
    ("sessions a list", {"device_sessions": ["dev-1"]}),
    ("session not an object", {"device_sessions": {"dev-1": 5}}),
    ("last authenticated as text", {"device_sessions": {"d": {"last_authenticated": "x"}}}),
    ("oidc fields a list", {"oidc_fields": ["a"]}),
    ("custom a string", {"custom": "R&D"}),
    ("mtls a list", {"mtls_auth": [True]}),
    ("cert presented as text", {"mtls_auth": {"cert_presented": "true"}}),
    ("auth status a bool", {"mtls_auth": {"auth_status": True}}),
    ("ip a number", {"ip": 3}),
]


@pytest.mark.parametrize(("name", "fields"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_malformed_field_fails(name: str, fields: dict[str, Any]) -> None:
    """A known field of the wrong shape is refused, naming the field, never its value."""
    with pytest.raises(MalformedProfile) as raised:
        parse_profile({**REFERENCE, **fields})
    assert "1724056537" not in str(raised.value)
    assert "R&D" not in str(raised.value)


def test_unknown_fields_are_kept() -> None:
    """A field Access adds later is kept in ``raw``, never an error."""
    profile = parse_profile({"new_field": {"nested": [1, 2]}, "amr": ["pwd"]})
    assert profile.raw["new_field"] == {"nested": (1, 2)}


#: Any JSON value.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
#: The fields of get-identity a profile is read from.
FIELDS = st.sampled_from(
    [
        "devicePosture",
        "amr",
        "idp",
        "geo",
        "iat",
        "is_warp",
        "is_gateway",
        "device_id",
        "device_sessions",
        "oidc_fields",
        "custom",
        "mtls_auth",
        "ip",
    ]
)


@pytest.mark.slow
@given(st.dictionaries(FIELDS, JSON))
def test_any_shape_parses_or_is_malformed(document: dict[str, Any]) -> None:
    """Whatever the answer holds, parsing gives a profile or MalformedProfile, nothing else."""
    try:
        profile = parse_profile(document)
    except MalformedProfile:
        return
    for rule in context_rules(
        mfa=True, amr=["hwk"], idp=["okta"], posture=[DISK], warp=True, gateway=True,
        country=["FR"], max_login_age=60, client_certificate=True,
    ):  # fmt: skip
        assert rule.holds(profile, 0.0) in (True, False)


# -- through an app ----------------------------------------------------------


def _app(make_app: AppFactory, **config: Any) -> Flask:
    app = make_app(**config)

    @app.get("/posture")
    @require_context(posture=[DISK])
    def posture() -> dict[str, Any]:
        profile = current_identity.profile
        assert profile is not None
        return {"country": profile.country}

    @app.get("/staff-posture")
    @require_group("Staff")
    @require_context(posture=[DISK])
    def staff_posture() -> str:
        return "ok"

    @app.get("/recent")
    @require_context(max_login_age=3600)
    def recent() -> str:
        return "ok"

    @app.get("/mfa")
    @require_context(mfa=True)
    def mfa() -> str:
        return "ok"

    @app.get("/profile")
    def show_profile() -> dict[str, Any]:
        return {}

    return app


@pytest.fixture
def profile_app(make_app: AppFactory) -> Flask:
    """The protected app with routes gated on the profile."""
    return _app(make_app, CF_ACCESS_ROLES={"staff": ["Staff"]})


def test_posture_passed_and_failed(profile_app: Flask, issuer: AccessIssuer) -> None:
    """A passed posture rule lets in; a failed or missing one is 403 posture_failed."""
    passed = issuer.user_token(ADA, profile=identity_profile(posture={DISK: True}))
    failed = issuer.user_token("bob@example.com", profile=identity_profile(posture={DISK: False}))
    missing = issuer.user_token("cy@example.com", profile=identity_profile(posture={"x": True}))
    assert outcome(profile_app, passed, "/posture") == (200, None)
    assert outcome(profile_app, failed, "/posture") == (403, Reason.POSTURE_FAILED)
    assert outcome(profile_app, missing, "/posture") == (403, Reason.POSTURE_FAILED)


def test_service_token_has_no_profile(profile_app: Flask, issuer: AccessIssuer) -> None:
    """A service token meets no profile rule, and its ``profile`` is ``None``."""
    token = issuer.service_token()
    assert outcome(profile_app, token, "/posture") == (403, Reason.POSTURE_FAILED)
    assert outcome(profile_app, token, "/mfa") == (403, Reason.MFA_REQUIRED)
    identity = verify_token(token, app=profile_app)
    assert identity.profile is None
    assert identity.fresh_profile is None
    assert identity.login_age is None


def test_one_fetch_serves_groups_and_profile(
    profile_app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A route needing groups and posture asks get-identity once; repeats ask nothing."""
    token = issuer.user_token(ADA, ["Staff"], profile=identity_profile(posture={DISK: True}))
    for _ in range(3):
        assert outcome(profile_app, token, "/staff-posture") == (200, None)
    assert outcome(profile_app, token, "/admin") == (403, Reason.NOT_IN_GROUP)
    assert count_calls(mocked_team, issuer.identity_url) == 1


def test_posture_is_judged_fresh(
    profile_app: Flask,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
) -> None:
    """Within CF_ACCESS_PROFILE_MAX_AGE the cached answer stands; after it, posture is asked
    again (and a failed check now refuses), while the groups keep their long cache."""
    token = issuer.user_token(ADA, ["Admins"], profile=identity_profile(posture={DISK: True}))
    assert outcome(profile_app, token, "/posture") == (200, None)
    issuer.set_profile(ADA, identity_profile(posture={DISK: False}))
    clock.advance(300)
    assert outcome(profile_app, token, "/posture") == (200, None)  # the trade-off
    assert count_calls(mocked_team, issuer.identity_url) == 1
    clock.advance(1)
    assert outcome(profile_app, token, "/posture") == (403, Reason.POSTURE_FAILED)
    assert count_calls(mocked_team, issuer.identity_url) == 2
    assert outcome(profile_app, token, "/posture") == (403, Reason.POSTURE_FAILED)
    clock.advance(3600)
    assert outcome(profile_app, token, "/admin") == (200, None)
    assert count_calls(mocked_team, issuer.identity_url) == 2


def test_profile_max_age_setting(
    make_app: AppFactory,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
) -> None:
    """A shorter CF_ACCESS_PROFILE_MAX_AGE asks sooner; a non-posture rule never asks again."""
    app = _app(make_app, CF_ACCESS_PROFILE_MAX_AGE=30)
    token = issuer.user_token(
        ADA, profile=identity_profile(posture={DISK: True}, amr=["pwd", "otp"])
    )
    assert outcome(app, token, "/posture") == (200, None)
    clock.advance(31)
    assert outcome(app, token, "/mfa") == (200, None)
    assert count_calls(mocked_team, issuer.identity_url) == 1
    assert outcome(app, token, "/posture") == (200, None)
    assert count_calls(mocked_team, issuer.identity_url) == 2


def test_login_age(profile_app: Flask, issuer: AccessIssuer, clock: FrozenClock) -> None:
    """A login older than max_login_age is 403 login_too_old; the token's own age is not it."""
    recent = issuer.user_token(ADA, profile=identity_profile(login_at=clock() - 3500))
    old = issuer.user_token("bob@example.com", profile=identity_profile(login_at=clock() - 3700))
    assert outcome(profile_app, recent, "/recent") == (200, None)
    assert outcome(profile_app, old, "/recent") == (403, Reason.LOGIN_TOO_OLD)
    clock.advance(101)
    assert outcome(profile_app, recent, "/recent") == (403, Reason.LOGIN_TOO_OLD)


def test_login_too_old_sends_a_browser_to_sign_in(
    make_app: AppFactory, issuer: AccessIssuer, clock: FrozenClock, captured: AccessCapture
) -> None:
    """In redirect mode, a browser whose sign-in is too old is sent to sign in again."""
    app = _app(make_app, CF_ACCESS_UNAUTHORIZED="redirect")
    token = issuer.user_token(ADA, profile=identity_profile(login_at=clock() - 7200))
    response = app.test_client().get(
        "/recent", headers={"Cf-Access-Jwt-Assertion": token, "Accept": "text/html"}
    )
    assert response.status_code == 302
    assert "/cdn-cgi/access/login/" in response.headers["Location"]
    api = app.test_client().get("/recent", headers={"Cf-Access-Jwt-Assertion": token})
    assert api.status_code == 403
    assert captured.last.reason is Reason.LOGIN_TOO_OLD


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (identity_profile(posture={DISK: {"id": DISK, "success": "true"}}), None),
        ({"geo": {"country": 33}}, None),
        ({"amr": "pwd"}, None),
    ],
)
def test_malformed_answer_is_503_on_profile_routes_only(
    profile_app: Flask, issuer: AccessIssuer, fields: dict[str, Any], reason: None
) -> None:
    """A malformed profile is 503 malformed_profile where the profile is read; group routes
    are unaffected."""
    token = issuer.user_token(ADA, ["Admins"], profile=fields)
    assert outcome(profile_app, token, "/posture") == (503, Reason.MALFORMED_PROFILE)
    assert outcome(profile_app, token, "/mfa") == (503, Reason.MALFORMED_PROFILE)
    assert outcome(profile_app, token, "/admin") == (200, None)


RULES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], Reason]] = [
    ({"mfa": True}, {"amr": ["pwd", "otp"]}, {"amr": ["pwd"]}, Reason.MFA_REQUIRED),
    ({"amr": ["hwk"]}, {"amr": ["pwd", "hwk"]}, {"amr": ["pwd", "otp"]}, Reason.AMR_NOT_ALLOWED),
    (
        {"idp": ["okta"]},
        {"idp": ("o-1", "okta")},
        {"idp": ("g-1", "google")},
        Reason.IDP_NOT_ALLOWED,
    ),
    ({"idp": ["o-1"]}, {"idp": ("o-1", "okta")}, {}, Reason.IDP_NOT_ALLOWED),
    (
        {"posture": [DISK, FIREWALL]},
        {"posture": {DISK: True, FIREWALL: True}},
        {"posture": {DISK: True, FIREWALL: False}},
        Reason.POSTURE_FAILED,
    ),
    ({"warp": True}, {"warp": True}, {"warp": False}, Reason.WARP_REQUIRED),
    ({"gateway": True}, {"gateway": True}, {}, Reason.GATEWAY_REQUIRED),
    ({"country": ["fr", "DE"]}, {"country": "FR"}, {"country": "US"}, Reason.COUNTRY_NOT_ALLOWED),
    ({"country": ["FR"]}, {"country": "fr"}, {}, Reason.COUNTRY_NOT_ALLOWED),
    (
        {"client_certificate": True},
        {"client_certificate": True},
        {"client_certificate": False},
        Reason.CLIENT_CERTIFICATE_REQUIRED,
    ),
]


@pytest.mark.parametrize(("rule", "meets", "fails", "reason"), RULES)
def test_each_rule(
    make_app: AppFactory,
    issuer: AccessIssuer,
    rule: dict[str, Any],
    meets: dict[str, Any],
    fails: dict[str, Any],
    reason: Reason,
) -> None:
    """Each rule lets in a profile that meets it and refuses one that does not, with its reason."""
    app = make_app()
    app.get("/ruled")(require_context(**rule)(lambda: "ok"))
    good = issuer.user_token(ADA, profile=identity_profile(**meets))
    bad = issuer.user_token("bob@example.com", profile=identity_profile(**fails))
    assert outcome(app, good, "/ruled") == (200, None)
    assert outcome(app, bad, "/ruled") == (403, reason)
    assert outcome(app, issuer.service_token(), "/ruled") == (403, reason)


def test_client_certificate_needs_ok_status() -> None:
    """A presented certificate Access did not accept meets no client-certificate rule."""
    (rule,) = context_rules(client_certificate=True)
    failed = AccessProfile(mtls=MutualTLS(cert_presented=True, auth_status="FAILED"))
    assert rule.holds(failed, None) is False


def test_app_wide_mfa_and_posture(make_app: AppFactory, issuer: AccessIssuer) -> None:
    """CF_ACCESS_REQUIRE_MFA and CF_ACCESS_REQUIRE_POSTURE hold users on every view; service
    tokens are not held to them."""
    app = make_app(CF_ACCESS_REQUIRE_MFA=True, CF_ACCESS_REQUIRE_POSTURE=DISK)
    both = issuer.user_token(ADA, profile=identity_profile(amr=["mfa"], posture={DISK: True}))
    no_mfa = issuer.user_token("b@example.com", profile=identity_profile(posture={DISK: True}))
    no_disk = issuer.user_token("c@example.com", profile=identity_profile(amr=["mfa"]))
    assert outcome(app, both, "/") == (200, None)
    assert outcome(app, no_mfa, "/") == (403, Reason.MFA_REQUIRED)
    assert outcome(app, no_disk, "/") == (403, Reason.POSTURE_FAILED)
    assert outcome(app, issuer.service_token(), "/") == (200, None)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CF_ACCESS_PROFILE_MAX_AGE", 0),
        ("CF_ACCESS_PROFILE_MAX_AGE", "soon"),
        ("CF_ACCESS_PROFILE_MAX_AGE", 1.5),
        ("CF_ACCESS_REQUIRE_MFA", "yes"),
        ("CF_ACCESS_REQUIRE_POSTURE", [1]),
        ("CF_ACCESS_REQUIRE_POSTURE", {"a": 1}),
    ],
)
def test_bad_settings_name_the_key(issuer: AccessIssuer, key: str, value: object) -> None:
    """A bad profile setting fails at start-up, naming its key."""
    with pytest.raises(ConfigurationError, match=key):
        AccessSettings.from_mapping(issuer.settings(**{key: value}))


def test_settings_from_the_environment(issuer: AccessIssuer) -> None:
    """Environment text: seconds, a flag, rule ids separated by commas."""
    settings = AccessSettings.from_mapping(
        issuer.settings(
            CF_ACCESS_PROFILE_MAX_AGE="60",
            CF_ACCESS_REQUIRE_MFA="true",
            CF_ACCESS_REQUIRE_POSTURE=f"{DISK},{FIREWALL}",
        )
    )
    assert settings.profile_max_age == 60
    assert [rule.kind for rule in settings.context_rules] == ["mfa", "posture"]
    assert settings.context_rules[1].values == (DISK, FIREWALL)


@pytest.mark.parametrize(
    "rules",
    [
        {"mfa": "yes"},
        {"amr": [""]},
        {"posture": [3]},
        {"country": ["FRA"]},
        {"max_login_age": 0},
        {"max_login_age": 1.5},
        {"max_login_age": True},
    ],
)
def test_bad_rules_are_type_errors(rules: dict[str, Any]) -> None:
    """A rule of the wrong type fails where it is written."""
    with pytest.raises(TypeError):
        require(**rules)


def test_rules_combine_and_describe() -> None:
    """Rules add up with ``&`` (each kept once) and read in the route audit."""
    combined = require(roles=["admin"], posture=[DISK]) & require(
        posture=[DISK], amr=["hwk"], max_login_age=3600
    )
    assert [rule.kind for rule in combined.context] == ["posture", "amr", "max_login_age"]
    assert combined.describe() == (
        f"token; roles: any of admin; posture: all of {DISK}; amr: any of hwk; login within 3600 s"
    )
    assert require(mfa=True).describe() == "token; mfa"
    assert not require(mfa=True).is_any_token


def test_stale_profile_is_not_used_when_the_endpoint_is_down(
    profile_app: Flask,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
) -> None:
    """Past the freshness window with get-identity failing: 503, never the stale posture;
    the back-off refuses other refreshes at once; group routes keep their cached answer."""
    fields = identity_profile(posture={DISK: True})
    tokens = [
        issuer.user_token(f"u{index}@example.com", ["Admins"], profile=fields) for index in range(3)
    ]
    for token in tokens:
        assert outcome(profile_app, token, "/posture") == (200, None)
    clock.advance(301)
    mocked_team.replace(responses.GET, issuer.identity_url, body=requests.Timeout("slow"))
    assert outcome(profile_app, tokens[0], "/posture") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert count_calls(mocked_team, issuer.identity_url) == 4
    assert outcome(profile_app, tokens[1], "/posture") == (503, Reason.IDENTITY_UNAVAILABLE)
    assert count_calls(mocked_team, issuer.identity_url) == 4
    assert outcome(profile_app, tokens[2], "/admin") == (200, None)
    assert outcome(profile_app, tokens[2], "/mfa") == (403, Reason.MFA_REQUIRED)


def test_threads_refreshing_a_profile_share_one_fetch(
    followers: Followers,  # noqa: F811 (the fixture)
    make_app: AppFactory,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
) -> None:
    """Requests finding the same profile stale at once make one get-identity call (a
    budget long enough that a loaded machine starting threads late changes nothing)."""
    profile_app = _app(make_app, CF_ACCESS_UPSTREAM_WAIT=60.0, CF_ACCESS_HTTP_TIMEOUT=60.0)
    token = issuer.user_token(ADA, profile=identity_profile(posture={DISK: True}))
    assert outcome(profile_app, token, "/posture") == (200, None)
    clock.advance(301)
    answer = issuer.identity_for(token)

    def answer_once_all_wait() -> str:
        return json.dumps(answer)

    respond = followers.fetch_once_all_wait(answer_once_all_wait)
    mocked_team.remove(responses.GET, issuer.identity_url)
    mocked_team.add_callback(
        responses.GET,
        issuer.identity_url,
        callback=lambda _request: (200, {"Content-Type": "application/json"}, respond()),
    )
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: outcome(profile_app, token, "/posture"), range(THREADS)))
    assert results == [(200, None)] * THREADS
    assert count_calls(mocked_team, issuer.identity_url) == 2


def test_route_audit_shows_profile_rules(profile_app: Flask) -> None:
    """``flask cf-access routes`` says what each profile-gated route needs."""
    audits = {audit.endpoint: audit for audit in audit_routes(profile_app)}
    assert audits["posture"].status == "protected"
    assert audits["posture"].requires == f"token; posture: all of {DISK}"
    assert (
        audits["staff_posture"].requires == f"token; groups: any of Staff; posture: all of {DISK}"
    )
    assert audits["recent"].requires == "token; login within 3600 s"
    assert audits["mfa"].requires == "token; mfa"


def test_freshness_trusts_no_other_hosts_clock(
    profile_app: Flask,
    issuer: AccessIssuer,
    clock: FrozenClock,
    mocked_team: responses.RequestsMock,
) -> None:
    """The shared entry holds the answer and no time; an entry this process did not fetch
    (another host's, whatever time it claims) serves the groups but is not fresh here:
    a fresh caller asks again, once, and is then served for CF_ACCESS_PROFILE_MAX_AGE."""
    token = issuer.user_token(ADA, profile=identity_profile(posture={DISK: True}))
    checker = access_state(profile_app).checker
    claims = verify_token(token, app=profile_app).claims
    endpoint = checker.identity_endpoint
    expires_at = float(claims["exp"])
    first = endpoint.answer(token, expires_at, claims)
    assert first.fetched_at == clock()
    key = "identity:" + hashlib.sha256(token.encode()).hexdigest()
    assert checker.cache.get(key) == {"document": first.document}
    # Another process: an endpoint of its own, which has fetched nothing.
    fresh_endpoint = IdentityEndpoint(
        url=endpoint.url,
        session=checker.session,
        timeout=5.0,
        cache=checker.cache,
        clock=clock,
        background=run_inline,
    )
    for written_at in (clock() + 10_000, clock(), clock() - 10_000):
        checker.cache.set(key, {"document": first.document, "fetched_at": written_at}, 3600)
        shared = fresh_endpoint.answer(token, expires_at, claims)
        assert shared.fetched_at is None  # served, for the groups, but its age unknown
    assert count_calls(mocked_team, issuer.identity_url) == 1
    again = fresh_endpoint.answer(token, expires_at, claims, max_age=300)
    assert again.fetched_at == clock()
    assert count_calls(mocked_team, issuer.identity_url) == 2
    clock.advance(300)
    assert fresh_endpoint.answer(token, expires_at, claims, max_age=300).fetched_at == clock() - 300
    assert count_calls(mocked_team, issuer.identity_url) == 2
    clock.advance(1)
    assert fresh_endpoint.answer(token, expires_at, claims, max_age=300).fetched_at == clock()
    assert count_calls(mocked_team, issuer.identity_url) == 3
