"""Calling other Access apps over real HTTP: app A → local edge → app B, with every client.

One contract, run with ``requests``, ``httpx`` and ``httpx`` async: every
test of the suite takes the ``caller`` fixture.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import requests
from flask import Flask, redirect, request
from hypothesis import given
from hypothesis import strategies as st

from flask_cf_access import (
    TOKEN_HEADER,
    CloudflareAccess,
    ConfigurationError,
    access_denied,
    access_granted,
    current_identity,
    get_claims,
    onward_call,
    require_access,
)
from flask_cf_access.onward import (
    AccessBlockedError,
    AccessHttpxAuth,
    AccessLoginRequiredError,
    AccessRequestsAuth,
    OnwardError,
    OnwardPolicy,
    OnwardRefusedError,
    ServiceToken,
)
from flask_cf_access.testing import AccessIssuer, EdgeApplication, LocalEdge, run_inline

from .support import FrozenClock, served

#: Every test here stands up Access edges and apps on 127.0.0.1.
pytestmark = pytest.mark.slow

CALLER_ID, CALLER_SECRET = "reports-caller.access", "b3f1" * 16
A_ID, A_SECRET = "nightly-job.access", "9c2e" * 16
AUD_A, AUD_B, AUD_STRICT, AUD_ADMIN = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32


@dataclass
class Answer:
    """What a client got back: the status and the JSON body (or ``None``)."""

    status: int
    body: Any


Caller = Callable[..., Answer]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def call_with_requests(
    policy: OnwardPolicy, url: str, *, follow: bool = True, headers: dict[str, str] | None = None
) -> Answer:
    """GET ``url`` with ``requests`` and the policy's auth."""
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment: only 127.0.0.1 is reached
        answer = session.get(
            url,
            auth=AccessRequestsAuth(policy),
            allow_redirects=follow,
            headers=headers,
            timeout=10,
        )
    return Answer(answer.status_code, _json(answer.text))


def call_with_httpx(
    policy: OnwardPolicy, url: str, *, follow: bool = True, headers: dict[str, str] | None = None
) -> Answer:
    """GET ``url`` with an ``httpx.Client`` made by the policy's auth."""
    with AccessHttpxAuth(policy, follow_redirects=follow).client(
        timeout=10, trust_env=False
    ) as client:
        answer = client.get(url, headers=headers)
    return Answer(answer.status_code, _json(answer.text))


def call_with_async_httpx(
    policy: OnwardPolicy, url: str, *, follow: bool = True, headers: dict[str, str] | None = None
) -> Answer:
    """GET ``url`` with an ``httpx.AsyncClient`` made by the policy's auth."""

    async def call() -> Answer:
        async with AccessHttpxAuth(policy, follow_redirects=follow).async_client(
            timeout=10, trust_env=False
        ) as client:
            answer = await client.get(url, headers=headers)
        return Answer(answer.status_code, _json(answer.text))

    return asyncio.run(call())


def browse(url: str, **options: Any) -> requests.Response:
    """GET ``url`` as a browser or a script would, without the policy; no proxy."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, **options)


CALLERS: dict[str, Caller] = {
    "requests": call_with_requests,
    "httpx": call_with_httpx,
    "httpx-async": call_with_async_httpx,
}


@dataclass
class Deployment:
    """Apps A and B behind their local edges, and a server off every Access app."""

    clock: FrozenClock
    issuer: AccessIssuer
    caller: Caller
    edge_a: LocalEdge
    edge_b: LocalEdge
    elsewhere: str
    #: The headers of every request the server off Access received.
    seen_elsewhere: list[dict[str, str]]
    #: Every token the stand-in team signed.
    minted: list[str]
    #: Every onward error a test's calls raised.
    errors: list[BaseException] = field(default_factory=list)
    #: The clock A's onward policies read.
    policy_clock: list[Callable[[], float]] = field(default_factory=list)
    #: What A does before it calls B.
    in_a: list[Callable[[], None]] = field(default_factory=list)

    @property
    def a(self) -> str:
        return self.edge_a.url

    @property
    def b(self) -> str:
        return self.edge_b.url

    def call(self, policy: OnwardPolicy, url: str, **options: Any) -> Answer:
        """Call with the client under test; an onward error is kept, then raised."""
        try:
            return self.caller(policy, url, **options)
        except OnwardError as error:
            self.errors.append(error)
            raise

    def service_policy(self, **options: Any) -> OnwardPolicy:
        return OnwardPolicy(
            [self.b], service_token=ServiceToken(CALLER_ID, CALLER_SECRET), **options
        )

    def user_cookie(self, email: str = "ada@example.com", **options: Any) -> dict[str, str]:
        """A browser's cookie for app A."""
        return {"CF_Authorization": self.issuer.user_token(email, audience=AUD_A, **options)}


def app_b(issuer: AccessIssuer, clock: FrozenClock, elsewhere: str) -> Flask:
    """App B: who is calling, and two redirects."""
    app = Flask("b")
    app.config.update(issuer.settings(CF_ACCESS_AUDIENCE=[AUD_B, AUD_STRICT, AUD_ADMIN]))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.get("/whoami")
    @app.get("/strict/whoami")
    @app.get("/admin/whoami")
    @require_access
    def whoami() -> dict[str, Any]:
        return {
            "name": current_identity.name,
            "email": current_identity.email,
            "service": current_identity.is_service_token,
            "aud": list(get_claims()["aud"]),
        }

    @app.get("/elsewhere")
    @require_access
    def elsewhere_redirect() -> Any:
        return redirect(f"{elsewhere}/steal", 302)

    @app.get("/same")
    @require_access
    def same_origin_redirect() -> Any:
        return redirect("/whoami", 302)

    return app


def app_a(
    deployment_of: Callable[[], Deployment], issuer: AccessIssuer, clock: FrozenClock
) -> Flask:
    """App A: forwards its user to B and says what B answered."""
    app = Flask("a")
    app.config.update(issuer.settings(CF_ACCESS_AUDIENCE=AUD_A))
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)

    @app.get("/forward")
    @require_access
    def forward() -> Any:
        deployment = deployment_of()
        for step in deployment.in_a:
            step()
        policy = OnwardPolicy(
            [deployment.b],
            forward_user=True,
            forward_service_tokens="service" in request.args,
            clock=(deployment.policy_clock or [clock])[0],
        )
        try:
            answer = deployment.call(policy, deployment.b + request.args.get("path", "/whoami"))
        except OnwardError as error:
            return {"error": type(error).__name__, "application": error.application}, 502
        return {"status": answer.status, "body": answer.body}

    return app


def off_access(seen: list[dict[str, str]]) -> Flask:
    """A server off every Access app, that notes what reaches it."""
    app = Flask("elsewhere")

    @app.route("/<path:anything>")
    def note(anything: str) -> str:
        seen.append(dict(request.headers))
        return "stolen"

    return app


@pytest.fixture(params=sorted(CALLERS))
def caller(request: pytest.FixtureRequest) -> Caller:
    """Each HTTP client the onward policy serves."""
    return CALLERS[request.param]


@pytest.fixture
def deployment(caller: Caller, clock: FrozenClock) -> Iterator[Deployment]:
    """A and B, each behind a local edge, on one stand-in team and one frozen clock."""
    issuer = AccessIssuer(clock=clock)
    minted: list[str] = []
    mint = issuer.mint

    def recording_mint(*args: Any, **kwargs: Any) -> str:
        token = mint(*args, **kwargs)
        minted.append(token)
        return token

    issuer.mint = recording_mint  # type: ignore[method-assign]
    seen: list[dict[str, str]] = []
    holder: list[Deployment] = []
    with ExitStack() as stack:
        elsewhere = stack.enter_context(served(off_access(seen)))
        b_url = stack.enter_context(served(app_b(issuer, clock, elsewhere)))
        a_url = stack.enter_context(served(app_a(lambda: holder[0], issuer, clock)))
        edge_b = LocalEdge(
            issuer,
            b_url,
            [
                EdgeApplication(
                    "b",
                    AUD_B,
                    service_tokens={CALLER_ID: CALLER_SECRET},
                    linked_apps=frozenset({AUD_A}),
                ),
                EdgeApplication(
                    "b-strict", AUD_STRICT, paths=("/strict",), emails=frozenset({"ada@x.example"})
                ),
                EdgeApplication(
                    "b-admin", AUD_ADMIN, paths=("/admin",), emails=frozenset({"root@x.example"})
                ),
            ],
        )
        edge_a = LocalEdge(
            issuer,
            a_url,
            [
                EdgeApplication(
                    "a",
                    AUD_A,
                    emails=frozenset({"ada@example.com"}),
                    service_tokens={A_ID: A_SECRET},
                )
            ],
        )
        stack.enter_context(edge_b)
        stack.enter_context(edge_a)
        holder.append(Deployment(clock, issuer, caller, edge_a, edge_b, elsewhere, seen, minted))
        yield holder[0]


@pytest.fixture
def onward_calls() -> Iterator[list[dict[str, Any]]]:
    """Every ``onward_call`` signal sent while the test runs, with its sender."""
    sent: list[dict[str, Any]] = []

    def record(sender: Any, **kwargs: Any) -> None:
        sent.append({"sender": sender, **kwargs})

    with onward_call.connected_to(record):
        yield sent


# -- the contract ----------------------------------------------------------


def test_a_service_token_reaches_b(
    deployment: Deployment, onward_calls: list[dict[str, Any]]
) -> None:
    """B sees the service token, with a token for its own application; one signal says so."""
    policy = deployment.service_policy()
    answer = deployment.call(policy, deployment.b + "/whoami?q=1")
    assert answer.status == 200
    assert answer.body == {"name": CALLER_ID, "email": None, "service": True, "aud": [AUD_B]}
    assert deployment.edge_b.admissions["service token"] == 1
    assert onward_calls == [
        {
            "sender": policy,
            "method": "GET",
            "target": deployment.b + "/whoami",
            "status": 200,
            "identity": CALLER_ID,
            "error": None,
        }
    ]


def test_the_user_is_forwarded_and_b_sees_them(deployment: Deployment) -> None:
    """A's user reaches B as themselves, with a token Access made for B's application."""
    answer = browse(deployment.a + "/forward", cookies=deployment.user_cookie(), timeout=10)
    assert answer.json() == {
        "status": 200,
        "body": {
            "name": "ada@example.com",
            "email": "ada@example.com",
            "service": False,
            "aud": [AUD_B],
        },
    }
    assert deployment.edge_b.admissions["linked app token"] == 1


def test_a_service_token_calling_a_is_not_forwarded_unless_configured(
    deployment: Deployment,
) -> None:
    """A machine calling A is not passed on as itself, unless the policy says so."""
    credentials = {"CF-Access-Client-Id": A_ID, "CF-Access-Client-Secret": A_SECRET}
    refused = browse(deployment.a + "/forward", headers=credentials, timeout=10)
    assert refused.status_code == 502
    assert refused.json()["error"] == "OnwardRefusedError"
    assert deployment.edge_b.calls == {}
    allowed = browse(deployment.a + "/forward?service", headers=credentials, timeout=10)
    assert allowed.json()["body"]["name"] == A_ID
    assert allowed.json()["body"]["service"] is True


def test_missing_credentials_raise_login_required_without_following(
    deployment: Deployment,
) -> None:
    """Access's 302 to its login page (and its 401 to XHR) is an error naming the application."""
    policy = deployment.service_policy()
    with pytest.raises(AccessLoginRequiredError) as raised:
        deployment.call(policy, deployment.b + "/strict/whoami")
    assert raised.value.status == 302
    assert raised.value.application == AUD_STRICT
    assert raised.value.target == deployment.b + "/strict/whoami"
    assert AUD_STRICT in str(raised.value)
    assert "Service Auth policy" in str(raised.value)
    with pytest.raises(AccessLoginRequiredError) as raised:
        deployment.call(
            policy,
            deployment.b + "/strict/whoami",
            headers={"X-Requested-With": "XMLHttpRequest"},
        )
    assert raised.value.status == 401
    assert deployment.edge_b.admissions["challenged"] == 2


def test_an_expired_token_raises_login_required(deployment: Deployment) -> None:
    """A user's token Access finds expired is an error, not a login page handed back."""
    admitted_at = deployment.clock()
    deployment.policy_clock.append(lambda: admitted_at)  # a caller whose clock runs late
    deployment.in_a.append(lambda: deployment.clock.advance(65))  # A takes its time
    answer = browse(
        deployment.a + "/forward", cookies=deployment.user_cookie(lifetime=60), timeout=10
    )
    assert answer.json() == {"error": "AccessLoginRequiredError", "application": AUD_B}
    assert deployment.edge_b.admissions["challenged"] == 1


def test_a_token_close_to_its_expiry_is_not_forwarded(deployment: Deployment) -> None:
    """A token with seconds to live is refused before anything is sent."""
    answer = browse(
        deployment.a + "/forward", cookies=deployment.user_cookie(lifetime=5), timeout=10
    )
    assert answer.json() == {"error": "OnwardRefusedError", "application": None}
    assert deployment.edge_b.calls == {}


def test_access_block_page_raises_blocked(deployment: Deployment) -> None:
    """Access's 403 block page is an error naming the application that refused."""
    answer = browse(
        deployment.a + "/forward?path=/admin/whoami", cookies=deployment.user_cookie(), timeout=10
    )
    assert answer.json() == {"error": AccessBlockedError.__name__, "application": AUD_ADMIN}
    assert deployment.edge_b.admissions["blocked"] == 1


@pytest.mark.parametrize("follow", [True, False])
@pytest.mark.parametrize("also_allowed", [False, True])
def test_a_redirect_to_another_origin_is_refused_without_sending(
    deployment: Deployment, follow: bool, also_allowed: bool
) -> None:
    """B's redirect elsewhere is never followed with credentials, even to an allowed origin."""
    origins = [deployment.b] + ([deployment.elsewhere] if also_allowed else [])
    policy = OnwardPolicy(origins, service_token=ServiceToken(CALLER_ID, CALLER_SECRET))
    with pytest.raises(OnwardRefusedError) as raised:
        deployment.call(policy, deployment.b + "/elsewhere", follow=follow)
    assert deployment.seen_elsewhere == []
    assert raised.value.target == deployment.b + "/elsewhere"


def test_a_same_origin_redirect_is_followed(
    deployment: Deployment, onward_calls: list[dict[str, Any]]
) -> None:
    """A redirect on the same origin is followed, with the same credentials; one signal a hop."""
    answer = deployment.call(deployment.service_policy(), deployment.b + "/same")
    assert answer.status == 200
    assert answer.body["name"] == CALLER_ID
    assert [(call["target"], call["status"]) for call in onward_calls] == [
        (deployment.b + "/same", 302),
        (deployment.b + "/whoami", 200),
    ]


def test_a_target_off_the_allow_list_is_never_called(
    deployment: Deployment, onward_calls: list[dict[str, Any]]
) -> None:
    """Nothing is sent to an origin the policy does not list."""
    with pytest.raises(OnwardRefusedError):
        deployment.call(deployment.service_policy(), deployment.elsewhere + "/steal?token=x")
    assert deployment.seen_elsewhere == []
    assert [(call["target"], call["status"]) for call in onward_calls] == [
        (deployment.elsewhere + "/steal", None)
    ]


def test_the_cookie_access_returns_is_reused_until_refused(deployment: Deployment) -> None:
    """The secret is sent once; the cookie after that; a refused cookie falls back to the secret."""
    policy = deployment.service_policy(reuse_cookie=True)
    for _ in range(3):
        assert deployment.call(policy, deployment.b + "/whoami").status == 200
    admissions = deployment.edge_b.admissions
    assert (admissions["service token"], admissions["session"]) == (1, 2)
    cookie = policy._cookie_for(deployment.b)
    assert cookie is not None
    deployment.edge_b.end_session(cookie)  # Access ended that session
    assert deployment.call(policy, deployment.b + "/whoami").status == 200
    assert (admissions["challenged"], admissions["service token"]) == (1, 2)


def test_no_secret_or_token_in_logs_signals_or_errors(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    """Every log line, signal and exception text of a run of calls is free of secrets and tokens."""
    signals: list[str] = []

    def record(sender: Any, **kwargs: Any) -> None:
        signals.append(repr(sender) + repr(kwargs))

    policy = deployment.service_policy(reuse_cookie=True)
    caplog.set_level(logging.DEBUG)
    with (
        onward_call.connected_to(record),
        access_granted.connected_to(record),
        access_denied.connected_to(record),
    ):
        deployment.call(policy, deployment.b + "/whoami")
        deployment.call(policy, deployment.b + "/whoami")
        for path in ("/strict/whoami", "/elsewhere"):
            with pytest.raises(OnwardError):
                deployment.call(policy, deployment.b + path)
        with pytest.raises(OnwardError):
            deployment.call(policy, deployment.elsewhere + "/x")
        cookie = deployment.user_cookie()
        for path in ("/whoami", "/admin/whoami", "/strict/whoami"):
            browse(f"{deployment.a}/forward?path={path}", cookies=cookie, timeout=10)
        browse(deployment.a + "/forward", cookies=deployment.user_cookie(lifetime=5), timeout=10)
    # httpcore's own DEBUG trace shows answers' headers, Set-Cookie included
    # (the docs say to keep it below DEBUG); every other logger is checked.
    logged = [record for record in caplog.records if not record.name.startswith("httpcore")]
    assert {record.name.split(".")[0] for record in logged} >= {"flask_cf_access", "werkzeug"}
    texts = [record.getMessage() for record in logged] + signals
    texts += [text for error in deployment.errors for text in (str(error), repr(error.args))]
    texts += [repr(policy), str(policy.service_token)]
    assert len(deployment.errors) >= 6
    secrets = [CALLER_SECRET, A_SECRET] + [token.rsplit(".", 1)[1] for token in deployment.minted]
    assert len(deployment.minted) >= 4
    assert [text for text in texts if any(secret in text for secret in secrets)] == []


# -- the policy itself --------------------------------------------------------


def test_a_service_token_never_shows_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr, str, pickling and a missing setting never give the secret away."""
    token = ServiceToken(CALLER_ID, CALLER_SECRET)
    assert CALLER_SECRET not in repr(token) + str(token)
    assert CALLER_SECRET not in repr(OnwardPolicy(["https://b.example"], service_token=token))
    with pytest.raises(TypeError):
        pickle.dumps(token)
    monkeypatch.setenv("CF_ACCESS_CLIENT_ID", CALLER_ID)
    monkeypatch.setenv("CF_ACCESS_CLIENT_SECRET", CALLER_SECRET)
    assert ServiceToken.from_mapping().headers()["CF-Access-Client-Secret"] == CALLER_SECRET
    with pytest.raises(ConfigurationError, match="CF_ACCESS_CLIENT_SECRET") as raised:
        ServiceToken.from_mapping({"CF_ACCESS_CLIENT_ID": CALLER_ID, "CF_ACCESS_CLIENT_SECRET": ""})
    assert CALLER_ID not in str(raised.value)


@pytest.mark.parametrize(
    ("origins", "options"),
    [
        ([], {"forward_user": True}),
        (["http://b.example"], {"forward_user": True}),
        (["https://b.example/api"], {"forward_user": True}),
        (["https://b.example?x=1"], {"forward_user": True}),
        (["ftp://b.example"], {"forward_user": True}),
        (["https://b.example"], {}),
        (
            ["https://b.example"],
            {"forward_user": True, "service_token": ServiceToken("id", "secret")},
        ),
        (["https://b.example"], {"forward_user": True, "reuse_cookie": True}),
    ],
)
def test_a_policy_that_cannot_be_safe_is_refused(
    origins: list[str], options: dict[str, Any]
) -> None:
    """No origins, plain http off this machine, paths, or neither or both identities."""
    with pytest.raises(ValueError, match=r"origin|http|service_token|reuse_cookie"):
        OnwardPolicy(origins, **options)


def test_loopback_http_is_allowed_for_tests() -> None:
    """``http://`` is accepted for this machine only."""
    policy = OnwardPolicy(
        ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"], forward_user=True
    )
    assert policy.origins == {"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:2"}


def test_the_user_is_not_forwarded_outside_a_verified_request() -> None:
    """With no verified request, there is no user to forward and nothing is sent."""
    policy = OnwardPolicy(["https://b.example"], forward_user=True)
    with pytest.raises(OnwardRefusedError, match="no verified Access identity"):
        policy.start("GET", "https://b.example/")
    app = Flask("plain")
    with (
        app.test_request_context(headers={"Cf-Access-Jwt-Assertion": "a.b.c"}),
        pytest.raises(OnwardRefusedError),
    ):
        policy.start("GET", "https://b.example/")


#: Pieces of URLs that parsers have disagreed on.
_HOSTS = st.sampled_from(
    [
        "b.example",
        "B.EXAMPLE",
        "b.example.",
        "evil.example",
        "b.example@evil.example",
        "evil.example@b.example",
        "b.example:443",
        "b.example:8443",
        "b.example%2eevil.example",
        "b.example\\@evil.example",
        "b.example#@evil.example",
        "xn--b-example",
        "[::1]",
    ]
)


@given(
    scheme=st.sampled_from(["https", "HTTPS", "http", "ftp", ""]),
    host=_HOSTS,
    path=st.sampled_from(["", "/", "/api", "//evil.example/x", "/@evil.example", "?x=1"]),
)
def test_credentials_go_only_where_the_clients_also_go(scheme: str, host: str, path: str) -> None:
    """Whenever the policy gives credentials for a URL, both clients send it to that origin."""
    policy = OnwardPolicy(["https://b.example"], service_token=ServiceToken("id", "secret"))
    url = f"{scheme}://{host}{path}" if scheme else f"{host}{path}"
    try:
        policy.start("GET", url)
    except OnwardRefusedError:
        return
    parsed = httpx.URL(url)
    assert (parsed.scheme, parsed.host, parsed.port or 443) == ("https", "b.example", 443)
    prepared = requests.Request("GET", url).prepare()
    assert prepared.url is not None
    assert httpx.URL(prepared.url).host == "b.example"


#: The part of Access's block page that names the application.
BLOCK_PAGE = '<input type="hidden" name="json_data" value="{&quot;aud&quot;: &quot;ab12&quot;}">'


@dataclass
class FakeAnswer:
    """An answer as both clients give it: status, headers and text."""

    status_code: int
    headers: dict[str, str]
    text: str = ""


def test_a_remote_redirect_is_named_escaped() -> None:
    """What a redirect's URL holds reaches the error text escaped, and without its query."""
    policy = OnwardPolicy(["https://b.example"], service_token=ServiceToken("id", "secret"))
    _, call = policy.start("GET", "https://b.example/x")
    with pytest.raises(OnwardRefusedError) as raised:
        policy.check_hop(call, "https://evil.example/\x1b[31mred\u2028?token=abc")
    text = str(raised.value)
    assert "\x1b" not in text
    assert "\u2028" not in text
    assert "token=abc" not in text


@given(
    status=st.sampled_from([301, 302, 303, 307, 308]),
    kid=st.one_of(st.just("4714" * 16), st.text(max_size=20)),
    login=st.booleans(),
)
def test_every_redirect_to_the_login_page_is_login_required(
    status: int, kid: str, login: bool
) -> None:
    """Any 3xx to Access's login page is the typed error; its kid only if it can be an AUD."""
    policy = OnwardPolicy(["https://b.example"], service_token=ServiceToken("id", "secret"))
    _, call = policy.start("GET", "https://b.example/x")
    path = "/cdn-cgi/access/login/b.example" if login else "/somewhere"
    location = "https://team.example" + path + "?" + urlencode({"kid": kid})
    error = policy.challenge_of(call, FakeAnswer(status, {"Location": location}))
    if not login:
        assert error is None
        return
    assert isinstance(error, AccessLoginRequiredError)
    assert error.status == status
    is_tag = re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", kid) is not None
    assert error.application == (kid if is_tag else None)
    assert not is_tag or f"(application {kid})" in str(error)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (FakeAnswer(401, {}), AccessLoginRequiredError),
        (FakeAnswer(403, {"Content-Type": "application/json"}, '{"error": "forbidden"}'), None),
        (FakeAnswer(403, {"Content-Type": "text/html"}, "<h1>Forbidden by the app</h1>"), None),
        (
            FakeAnswer(
                403,
                {"Content-Type": "text/html; charset=utf-8"},
                BLOCK_PAGE,
            ),
            AccessBlockedError,
        ),
        (FakeAnswer(302, {"Location": "/elsewhere-on-b"}), None),
        (FakeAnswer(200, {}), None),
        (FakeAnswer(500, {}), None),
    ],
)
def test_only_access_answers_are_challenges(
    answer: FakeAnswer, expected: type[OnwardError] | None
) -> None:
    """A 401, a login redirect and Access's block page are Access's; the app's own 403 is not."""
    policy = OnwardPolicy(["https://b.example"], service_token=ServiceToken("id", "secret"))
    _, call = policy.start("GET", "https://b.example/x")
    error = policy.challenge_of(call, answer)
    assert type(error) is expected if expected else error is None


def test_the_requests_auth_needs_no_httpx() -> None:
    """Without httpx installed, the module imports and only the httpx auth asks for the extra."""
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import flask_cf_access.onward as onward\n"
        "assert onward.AccessRequestsAuth\n"
        "try:\n"
        "    onward.AccessHttpxAuth\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'flask-cf-access[httpx]'" in result.stdout


def test_only_the_verified_token_is_forwarded(clock: FrozenClock) -> None:
    """The token forwarded is the request's verified one (list claims and all); a token put
    in the request after the check is refused."""
    issuer = AccessIssuer(clock=clock)
    app = Flask("swapped")
    app.config.update(issuer.settings())
    CloudflareAccess(app, clock=clock, session=issuer.session(), background=run_inline)
    policy = OnwardPolicy(["https://b.example"], forward_user=True, clock=clock)
    other = issuer.user_token("ada@example.com", ["Staff"], groups_in_token=True)

    @app.get("/")
    @require_access
    def forward() -> dict[str, Any]:
        if "swap" in request.args:
            request.environ["HTTP_CF_ACCESS_JWT_ASSERTION"] = other
        try:
            headers, _ = policy.start("GET", "https://b.example/")
        except OnwardRefusedError as error:
            return {"refused": str(error)}
        return {"forwarded": headers["Cf-Access-Token"] == request.headers[TOKEN_HEADER]}

    token = issuer.user_token("ada@example.com", ["Staff"], groups_in_token=True)
    client = app.test_client()
    assert client.get("/", headers={TOKEN_HEADER: token}).json == {"forwarded": True}
    refused = client.get("/?swap", headers={TOKEN_HEADER: token}).json
    assert refused is not None
    assert "not the one that was verified" in refused["refused"]


@pytest.mark.parametrize("caller", ["httpx"], indirect=True)
def test_an_httpx_client_of_your_own_that_follows_redirects_needs_the_hook(
    deployment: Deployment,
) -> None:
    """With the request hook, a client following redirects never sends credentials elsewhere."""
    auth = AccessHttpxAuth(deployment.service_policy())
    hooks = {"request": [AccessHttpxAuth.check_request]}
    with (
        httpx.Client(auth=auth, follow_redirects=True, event_hooks=hooks, trust_env=False) as own,
        pytest.raises(OnwardRefusedError),
    ):
        own.get(deployment.b + "/elsewhere")

    async def call_async() -> None:
        async_hooks = {"request": [AccessHttpxAuth.acheck_request]}
        async with httpx.AsyncClient(
            auth=auth, follow_redirects=True, event_hooks=async_hooks, trust_env=False
        ) as own_async:
            await own_async.get(deployment.b + "/elsewhere")

    with pytest.raises(OnwardRefusedError):
        asyncio.run(call_async())
    assert deployment.seen_elsewhere == []
    with (
        httpx.Client(auth=auth, follow_redirects=True, trust_env=False) as unguarded,
        pytest.raises(OnwardRefusedError),  # too late: said, though already sent
    ):
        unguarded.get(deployment.b + "/elsewhere")
    assert [seen["Cf-Access-Client-Id"] for seen in deployment.seen_elsewhere] == [CALLER_ID]
