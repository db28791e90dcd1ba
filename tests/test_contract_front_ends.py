"""One contract, every front end: decorators, blueprint guards, WSGI middleware.

Each case of :data:`CASES` is run on every front end of the registry
(:data:`tests.front_ends.FRONT_ENDS`), and asserts both the status and the reason, as
:func:`~flask_cf_access.testing.capture_access` reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import requests
from werkzeug.test import Client

from flask_cf_access import (
    Reason,
    Requirement,
    require,
)
from flask_cf_access.testing import (
    CERTS_PATH,
    IDENTITY_PATH,
    AccessIssuer,
    SigningKey,
    capture_access,
    identity_profile,
)
from flask_cf_access.testing._server import _StandInAdapter

from .front_ends import BODY, FRONT_ENDS
from .support import START, FrozenClock, Outcome

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The one protected path of every front end.
PATH = "/app"


class _TeamWithOutages(_StandInAdapter):
    """Answers as ``issuer`` does, except 503 for the paths in ``down``."""

    def __init__(self, issuer: AccessIssuer, down: Iterable[str]) -> None:
        super().__init__(issuer)
        self.down = frozenset(down)

    def answer(self, path: str, cookie: str | None) -> tuple[int, Any]:
        return (503, {"err": "down"}) if path in self.down else super().answer(path, cookie)


def team_session(issuer: AccessIssuer, down: Iterable[str] = ()) -> requests.Session:
    """A session answered in-process by ``issuer``, with the ``down`` paths failing."""
    session = requests.Session()
    session.mount(issuer.issuer + "/", _TeamWithOutages(issuer, down))
    return session


@dataclass(frozen=True)
class Setup:
    """What a front end is built with: the rule on :data:`PATH`, and the team's session."""

    issuer: AccessIssuer
    clock: FrozenClock
    session: requests.Session
    groups: tuple[str, ...] = ()
    allow_service_tokens: bool = True
    #: More the path requires (roles, rules on the profile), and settings it needs.
    requirement: Requirement | None = None
    config: tuple[tuple[str, Any], ...] = ()

    @property
    def rule(self) -> Requirement:
        """All that :data:`PATH` requires."""
        groups = require(groups=self.groups, allow_service_tokens=self.allow_service_tokens)
        return groups & (self.requirement or require())


@pytest.fixture(params=sorted(FRONT_ENDS))
def front_end(request: pytest.FixtureRequest) -> Callable[[Setup], WSGIApplication]:
    """Each front end of the registry in turn, protecting :data:`PATH` by the setup's rule."""
    build = FRONT_ENDS[request.param]

    def front_end_for(setup: Setup) -> WSGIApplication:
        config = setup.issuer.settings(**dict(setup.config))
        return build(config, {PATH: setup.rule}, setup.session, setup.clock)

    return front_end_for


@dataclass(frozen=True)
class Case:
    """A request and what every front end must answer to it."""

    token: Callable[[AccessIssuer], str | None]
    expected: Outcome
    cookie: Callable[[AccessIssuer], str | None] = lambda issuer: None
    groups: tuple[str, ...] = ()
    allow_service_tokens: bool = True
    down: tuple[str, ...] = ()
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    requirement: Requirement | None = None
    config: tuple[tuple[str, Any], ...] = ()

    @property
    def rule(self) -> Requirement:
        """All that :data:`PATH` requires."""
        groups = require(groups=self.groups, allow_service_tokens=self.allow_service_tokens)
        return groups & (self.requirement or require())


def ada(issuer: AccessIssuer) -> str:
    return issuer.user_token("ada@example.com")


def stranger_signed(issuer: AccessIssuer) -> str:
    """Good claims and the team's kid, signed by a key outside the team."""
    header = {"alg": "RS256", "kid": issuer.signing_key.kid}
    return issuer.mint(key=SigningKey.generate(), header=header)


GRANTED = Outcome(200, None)
#: A role for the cases combining rules on the profile with roles.
STAFF_ROLE: tuple[tuple[str, Any], ...] = (("CF_ACCESS_ROLES", {"staff": ["Staff"]}),)
#: Each rule on the profile, with the role ``staff``: a profile meeting it, one not, the reason.
CONTEXT_RULES: list[tuple[str, Requirement, dict[str, Any], dict[str, Any], Reason]] = [
    (
        "mfa",
        require(roles=["staff"], mfa=True),
        {"amr": ["pwd", "otp"]},
        {"amr": ["pwd"]},
        Reason.MFA_REQUIRED,
    ),
    (
        "amr",
        require(roles=["staff"], amr=["hwk"]),
        {"amr": ["hwk"]},
        {"amr": ["otp"]},
        Reason.AMR_NOT_ALLOWED,
    ),
    (
        "idp",
        require(roles=["staff"], idp=["okta"]),
        {"idp": ("o-1", "okta")},
        {},
        Reason.IDP_NOT_ALLOWED,
    ),
    (
        "posture",
        require(roles=["staff"], posture=["disk"]),
        {"posture": {"disk": True}},
        {"posture": {"disk": False}},
        Reason.POSTURE_FAILED,
    ),
    ("warp", require(roles=["staff"], warp=True), {"warp": True}, {}, Reason.WARP_REQUIRED),
    (
        "gateway",
        require(roles=["staff"], gateway=True),
        {"gateway": True},
        {"gateway": False},
        Reason.GATEWAY_REQUIRED,
    ),
    (
        "country",
        require(roles=["staff"], country=["FR"]),
        {"country": "FR"},
        {"country": "US"},
        Reason.COUNTRY_NOT_ALLOWED,
    ),
    (
        "login age",
        require(roles=["staff"], max_login_age=600),
        {"login_at": START - 60},
        {"login_at": START - 601},
        Reason.LOGIN_TOO_OLD,
    ),
    (
        "client certificate",
        require(roles=["staff"], client_certificate=True),
        {"client_certificate": True},
        {},
        Reason.CLIENT_CERTIFICATE_REQUIRED,
    ),
]

CASES: dict[str, Case] = {
    "no token": Case(lambda issuer: None, Outcome(401, Reason.MISSING_TOKEN)),
    "garbage": Case(lambda issuer: "not-a-token", Outcome(401, Reason.MALFORMED_TOKEN)),
    "valid": Case(ada, GRANTED),
    "expired": Case(
        lambda issuer: issuer.user_token("ada@example.com", expired=True),
        Outcome(401, Reason.EXPIRED),
    ),
    "not yet valid": Case(
        lambda issuer: issuer.user_token("ada@example.com", not_yet_valid=True),
        Outcome(401, Reason.NOT_YET_VALID),
    ),
    "wrong audience": Case(
        lambda issuer: issuer.user_token("ada@example.com", audience="another-app"),
        Outcome(401, Reason.INVALID_AUDIENCE),
    ),
    "wrong issuer": Case(
        lambda issuer: issuer.mint({"iss": "https://other.cloudflareaccess.com"}),
        Outcome(401, Reason.INVALID_ISSUER),
    ),
    "unknown kid": Case(
        lambda issuer: issuer.mint(key=SigningKey.generate()), Outcome(401, Reason.UNKNOWN_KID)
    ),
    "bad signature": Case(stranger_signed, Outcome(401, Reason.BAD_SIGNATURE)),
    "org token": Case(
        lambda issuer: issuer.mint({"type": "org"}), Outcome(401, Reason.NOT_AN_APP_TOKEN)
    ),
    "service token allowed": Case(lambda issuer: issuer.service_token(), GRANTED),
    "service token refused": Case(
        lambda issuer: issuer.service_token(),
        Outcome(403, Reason.SERVICE_TOKEN_REFUSED),
        allow_service_tokens=False,
    ),
    "user token where service tokens are refused": Case(ada, GRANTED, allow_service_tokens=False),
    "in group, from the token": Case(
        lambda issuer: issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True),
        GRANTED,
        groups=("Admins",),
    ),
    "not in group, from the token": Case(
        lambda issuer: issuer.user_token("bob@example.com", ["Staff"], groups_in_token=True),
        Outcome(403, Reason.NOT_IN_GROUP),
        groups=("Admins",),
    ),
    "in group, from get-identity": Case(
        lambda issuer: issuer.user_token("ada@example.com", ["Admins"]),
        GRANTED,
        groups=("Admins",),
    ),
    "not in group, from get-identity": Case(
        lambda issuer: issuer.user_token("bob@example.com", ["Staff"]),
        Outcome(403, Reason.NOT_IN_GROUP),
        groups=("Admins",),
    ),
    "service token on a group rule": Case(
        lambda issuer: issuer.service_token(),
        Outcome(403, Reason.NOT_IN_GROUP),
        groups=("Admins",),
    ),
    "identity endpoint down": Case(
        lambda issuer: issuer.user_token("ada@example.com", ["Admins"]),
        Outcome(503, Reason.IDENTITY_UNAVAILABLE),
        groups=("Admins",),
        down=(IDENTITY_PATH,),
    ),
    "identity endpoint down, groups in the token": Case(
        lambda issuer: issuer.user_token("ada@example.com", ["Admins"], groups_in_token=True),
        GRANTED,
        groups=("Admins",),
        down=(IDENTITY_PATH,),
    ),
    "keys unavailable": Case(ada, Outcome(503, Reason.KEYS_UNAVAILABLE), down=(CERTS_PATH,)),
    "good cookie, no header": Case(lambda issuer: None, GRANTED, cookie=ada),
    "bad cookie, no header": Case(
        lambda issuer: None,
        Outcome(401, Reason.MALFORMED_TOKEN),
        cookie=lambda issuer: "not-a-token",
    ),
    "bad header wins over a good cookie": Case(
        lambda issuer: "not-a-token", Outcome(401, Reason.MALFORMED_TOKEN), cookie=ada
    ),
    "good header, bad cookie ignored": Case(ada, GRANTED, cookie=lambda issuer: "not-a-token"),
    "cookie POST from another site": Case(
        lambda issuer: None,
        Outcome(403, Reason.CROSS_SITE_REQUEST),
        cookie=ada,
        method="POST",
        headers=(("Sec-Fetch-Site", "cross-site"),),
    ),
    "cookie POST from the same origin": Case(
        lambda issuer: None,
        GRANTED,
        cookie=ada,
        method="POST",
        headers=(("Sec-Fetch-Site", "same-origin"),),
    ),
    "header POST from another site": Case(
        ada, GRANTED, method="POST", headers=(("Sec-Fetch-Site", "cross-site"),)
    ),
    **{
        f"{name}, {verdict}": Case(
            lambda issuer, fields=fields: issuer.user_token(  # type: ignore[misc]
                "ada@example.com", ["Staff"], profile=identity_profile(**fields)
            ),
            expected,
            requirement=rule,
            config=STAFF_ROLE,
        )
        for name, rule, meets, fails, reason in CONTEXT_RULES
        for verdict, fields, expected in (
            ("met", meets, GRANTED),
            ("not met", fails, Outcome(403, reason)),
        )
    },
    "profile rule, service token": Case(
        lambda issuer: issuer.service_token(),
        Outcome(403, Reason.MFA_REQUIRED),
        requirement=require(mfa=True),
    ),
    "profile rule with a group and a role, not in the group": Case(
        lambda issuer: issuer.user_token(
            "bob@example.com", ["Staff"], profile=identity_profile(amr=["mfa"])
        ),
        Outcome(403, Reason.NOT_IN_GROUP),
        groups=("Admins",),
        requirement=require(roles=["staff"], mfa=True),
        config=STAFF_ROLE,
    ),
    "profile rule with a role, without the role": Case(
        lambda issuer: issuer.user_token(
            "bob@example.com", ["Sales"], profile=identity_profile(amr=["mfa"])
        ),
        Outcome(403, Reason.NO_ROLE),
        requirement=require(roles=["staff"], mfa=True),
        config=STAFF_ROLE,
    ),
    "profile rule, identity endpoint down": Case(
        lambda issuer: issuer.user_token("ada@example.com", profile=identity_profile(amr=["mfa"])),
        Outcome(503, Reason.IDENTITY_UNAVAILABLE),
        requirement=require(mfa=True),
        down=(IDENTITY_PATH,),
    ),
    "profile rule, malformed answer": Case(
        lambda issuer: issuer.user_token("ada@example.com", profile={"amr": "mfa"}),
        Outcome(503, Reason.MALFORMED_PROFILE),
        requirement=require(mfa=True),
    ),
    "app-wide MFA, user without": Case(
        ada, Outcome(403, Reason.MFA_REQUIRED), config=(("CF_ACCESS_REQUIRE_MFA", True),)
    ),
    "app-wide MFA, service token": Case(
        lambda issuer: issuer.service_token(),
        GRANTED,
        config=(("CF_ACCESS_REQUIRE_MFA", True),),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_contract(
    front_end: Callable[[Setup], WSGIApplication],
    issuer: AccessIssuer,
    clock: FrozenClock,
    name: str,
) -> None:
    """Every front end answers each case with the same status, for the same reason."""
    case = CASES[name]
    setup = Setup(
        issuer,
        clock,
        team_session(issuer, case.down),
        groups=case.groups,
        allow_service_tokens=case.allow_service_tokens,
        requirement=case.requirement,
        config=case.config,
    )
    application = front_end(setup)
    client = Client(application)
    token, cookie = case.token(issuer), case.cookie(issuer)
    if cookie is not None:
        client.set_cookie("CF_Authorization", cookie)
    headers = dict(case.headers)
    if token is not None:
        headers["Cf-Access-Jwt-Assertion"] = token
    with capture_access() as captured:
        response = client.open(PATH, method=case.method, headers=headers)
    reason = captured.last.reason
    assert Outcome(response.status_code, reason) == case.expected
    assert len(captured) == 1, "one decision per request"
    assert captured.last.granted is (case.expected.reason is None)
    assert captured.last.status == (None if captured.last.granted else response.status_code)
    assert captured.last.path == PATH
    assert captured.last.sender is application
    assert captured.last.method == case.method
    if response.status_code == 200:
        assert response.get_data(as_text=True) == BODY
