"""The user loader: from a verified identity to the app's own user, once per request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from flask import Blueprint, Flask, g

from flask_cf_access import (
    AccessIdentity,
    AccessUnauthorized,
    CloudflareAccess,
    NewUser,
    NoAccessContextError,
    Reason,
    current_user,
    get_user,
    require_access,
    require_group,
    verify_access_in_request,
)
from flask_cf_access.testing import (
    AccessCapture,
    AccessClient,
    AccessIssuer,
    UserLoad,
    capture_access,
    capture_user_loads,
    run_inline,
)

from .support import FrozenClock, bearer


@dataclass
class Account:
    """An account of the test app."""

    email: str


@dataclass
class Directory:
    """The test app's accounts, and every identity its loader was asked about."""

    accounts: dict[str, Account] = field(default_factory=dict)
    asked: list[AccessIdentity] = field(default_factory=list)
    create_unknown: bool = False

    def load(self, identity: AccessIdentity) -> Account | NewUser[Account] | None:
        self.asked.append(identity)
        email = identity.email or ""
        if email in self.accounts:
            return self.accounts[email]
        if self.create_unknown and email:
            self.accounts[email] = Account(email)
            return NewUser(self.accounts[email])
        return None


class LoaderFailed(Exception):
    """What the failing loader raises."""


@pytest.fixture
def directory() -> Directory:
    """Accounts for ada only."""
    return Directory({"ada@example.com": Account("ada@example.com")})


def build_app(extension: CloudflareAccess, settings: dict[str, Any]) -> Flask:
    """An app with views that do and do not touch the user."""
    app = Flask("users")
    app.config.update(settings)
    extension.init_app(app)

    @app.get("/me")
    @require_access
    def me() -> dict[str, Any]:
        first = current_user.email
        return {"email": first, "again": get_user().email, "same": get_user() is get_user()}

    @app.get("/identity-only")
    @require_access(account=False)
    def identity_only() -> str:
        return "no user asked for"

    @app.get("/humans")
    @require_access(allow_service_tokens=False)
    def humans() -> str:
        return str(current_user.email)

    @app.get("/admins")
    @require_group("Admins")
    def admins() -> str:
        return str(current_user.email)

    @app.get("/async")
    @require_access
    async def async_me() -> dict[str, Any]:
        return {"email": current_user.email, "again": get_user().email}

    @app.get("/open")
    def open_view() -> str:
        try:
            get_user()
        except NoAccessContextError:
            return "no context"
        return "user"

    @app.get("/catches")
    @require_access(account=False)
    def catches() -> str:
        try:
            get_user()
        except LoaderFailed:
            return "caught"
        return "loaded"

    guarded = Blueprint("guarded", __name__)

    @guarded.before_request
    def check() -> None:
        verify_access_in_request()

    @guarded.get("/twice")
    @require_access
    def twice() -> str:
        return f"{current_user.email} {get_user().email}"

    app.register_blueprint(guarded, url_prefix="/bp")
    return app


@pytest.fixture
def extension(directory: Directory, clock: FrozenClock) -> CloudflareAccess:
    """One extension object whose loader asks the directory."""
    cf_access = CloudflareAccess(clock=clock, background=run_inline)
    cf_access.user_loader(directory.load)
    return cf_access


@pytest.fixture
def app(
    extension: CloudflareAccess, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> Flask:
    """The app, trusting the stand-in team."""
    return build_app(extension, issuer.settings())


@pytest.fixture
def client(app: Flask, issuer: AccessIssuer) -> AccessClient:
    """A client sending the stand-in's tokens."""
    return AccessClient.for_app(app, issuer)


@pytest.fixture
def refusals(app: Flask) -> Iterator[AccessCapture]:
    """Every access decision the app makes while the test runs."""
    with capture_access(app) as captured:
        yield captured


@pytest.fixture
def loads(app: Flask) -> Iterator[list[UserLoad]]:
    """Every user the app's loader gives while the test runs."""
    with capture_user_loads(app) as loads:
        yield loads


def test_loader_gives_current_user(client: AccessClient, directory: Directory) -> None:
    """current_user and get_user() are the loader's answer for the verified identity."""
    response = client.get("/me", as_user="ada@example.com")
    assert response.status_code == 200
    assert response.json == {"email": "ada@example.com", "again": "ada@example.com", "same": True}
    assert [identity.email for identity in directory.asked] == ["ada@example.com"]


def test_loader_runs_once_per_request(client: AccessClient, directory: Directory) -> None:
    """Each request asks the loader once however often it reads the user; the next asks again."""
    for _ in range(3):
        assert client.get("/me", as_user="ada@example.com").status_code == 200
    assert len(directory.asked) == 3


def test_loader_runs_once_when_the_request_is_checked_twice(
    client: AccessClient, directory: Directory
) -> None:
    """A blueprint guard and the view's decorator both check: still one load."""
    response = client.get("/bp/twice", as_user="ada@example.com")
    assert response.get_data(as_text=True) == "ada@example.com ada@example.com"
    assert len(directory.asked) == 1


def test_loader_waits_where_no_account_is_needed(
    client: AccessClient, directory: Directory
) -> None:
    """A view with account=False that never reads the user never runs the loader."""
    assert client.get("/identity-only", as_user="nobody@example.com").status_code == 200
    assert directory.asked == []


@pytest.mark.parametrize(
    ("path", "kind", "status", "reason"),
    [
        ("/me", "none", 401, Reason.MISSING_TOKEN),
        ("/me", "expired", 401, Reason.EXPIRED),
        ("/me", "other-audience", 401, Reason.INVALID_AUDIENCE),
        ("/me", "garbage", 401, Reason.MALFORMED_TOKEN),
        ("/humans", "service", 403, Reason.SERVICE_TOKEN_REFUSED),
        ("/admins", "user", 403, Reason.NOT_IN_GROUP),
        ("/bp/twice", "expired", 401, Reason.EXPIRED),
    ],
)
def test_loader_never_runs_for_a_refused_request(
    client: AccessClient,
    issuer: AccessIssuer,
    directory: Directory,
    refusals: AccessCapture,
    path: str,
    kind: str,
    status: int,
    reason: Reason,
) -> None:
    """Every refusal, 401 or 403, is decided before the loader could run."""
    tokens = {
        "none": None,
        "expired": issuer.user_token("ada@example.com", expired=True),
        "other-audience": issuer.user_token("ada@example.com", audience="another-app"),
        "garbage": "not.a.token",
        "service": issuer.service_token("ci.access"),
        "user": issuer.user_token("ada@example.com", ["Staff"]),
    }
    response = client.get(path, token=tokens[kind])
    assert response.status_code == status
    assert refusals.reasons == [reason]
    assert directory.asked == []


def test_loader_never_runs_when_keys_are_unavailable(
    issuer: AccessIssuer, extension: CloudflareAccess, directory: Directory
) -> None:
    """With no keys to be had, the 503 comes before any load."""
    with responses.RequestsMock() as mock:
        mock.get(issuer.certs_url, status=500)
        app = build_app(extension, issuer.settings())
        with capture_access(app) as captured:
            response = AccessClient.for_app(app, issuer).get("/me", as_user="ada@example.com")
    assert response.status_code == 503
    assert captured.reasons == [Reason.KEYS_UNAVAILABLE]
    assert directory.asked == []


def test_no_account_is_403_with_its_reason(
    client: AccessClient,
    directory: Directory,
    refusals: AccessCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A loader's None refuses with Reason.NO_ACCOUNT: logged and signalled with the identity."""
    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        response = client.get("/me", as_user="eve@example.com")
    assert response.status_code == 403
    assert "no_account" not in response.get_data(as_text=True)
    assert [(record.reason, record.identity and record.identity.email) for record in refusals] == [
        (Reason.NO_ACCOUNT, "eve@example.com")
    ]
    assert [record.getMessage() for record in caplog.records] == [
        "Cloudflare Access refused GET /me: 403 no_account"
    ]
    assert len(directory.asked) == 1


def test_no_account_log_line_cannot_be_forged(
    app: Flask, client: AccessClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The no-account refusal escapes the path it logs: a CR or an ESC in it reaches no log raw."""

    @app.get("/files/<path:name>")
    @require_access
    def files(name: str) -> str:
        return str(current_user.email)

    with caplog.at_level(logging.WARNING, logger="flask_cf_access"):
        response = client.get("/files/a%0DFAKE%1B[2K", as_user="eve@example.com")
    assert response.status_code == 403
    assert [record.getMessage() for record in caplog.records] == [
        "Cloudflare Access refused GET /files/a\\rFAKE\\x1b[2K: 403 no_account"
    ]


def test_no_account_on_an_async_view(client: AccessClient, refusals: AccessCapture) -> None:
    """An async view reading the user of an identity without an account gets the same 403."""
    assert client.get("/async", as_user="eve@example.com").status_code == 403
    assert refusals.reasons == [Reason.NO_ACCOUNT]


def test_service_token_goes_to_the_loader(
    client: AccessClient, directory: Directory, captured: AccessCapture
) -> None:
    """A service token reaches the loader too, which decides (here: no account, 403)."""
    assert client.get("/me", as_service_token="ci.access").status_code == 403
    assert captured.last.reason is Reason.NO_ACCOUNT
    assert [identity.common_name for identity in directory.asked] == ["ci.access"]


def test_loader_exception_propagates(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """An exception in the loader is the app's: not swallowed, not turned into a 401 or 403."""
    cf_access = CloudflareAccess(clock=clock, background=run_inline)

    @cf_access.user_loader
    def broken(identity: AccessIdentity) -> Account:
        raise LoaderFailed(identity.name)

    app = build_app(cf_access, issuer.settings())
    app.testing = True
    client = AccessClient.for_app(app, issuer)
    with pytest.raises(LoaderFailed, match=r"ada@example\.com"):
        client.get("/me", as_user="ada@example.com")
    assert client.get("/catches", as_user="ada@example.com").get_data(as_text=True) == "caught"
    app.testing = False
    assert client.get("/me", as_user="ada@example.com").status_code == 500


def test_user_loaded_signal_says_whether_created(
    client: AccessClient, directory: Directory, loads: list[UserLoad], captured: AccessCapture
) -> None:
    """user_loaded carries created=True for NewUser, False otherwise; nothing for None."""
    directory.create_unknown = True
    client.get("/me", as_user="new@example.com")
    client.get("/me", as_user="new@example.com")
    client.get("/me", as_user="ada@example.com")
    assert [(load.user.email, load.identity.email, load.created) for load in loads] == [
        ("new@example.com", "new@example.com", True),
        ("new@example.com", "new@example.com", False),
        ("ada@example.com", "ada@example.com", False),
    ]
    directory.create_unknown = False
    assert client.get("/me", as_service_token="ci.access").status_code == 403
    assert captured.last.reason is Reason.NO_ACCOUNT
    assert len(loads) == 3


def test_new_user_is_unwrapped(client: AccessClient, directory: Directory) -> None:
    """A loader returning NewUser gives the view the user itself."""
    directory.create_unknown = True
    response = client.get("/me", as_user="new@example.com")
    assert response.json is not None
    assert response.json["email"] == "new@example.com"


def test_async_view_reads_the_user(client: AccessClient, directory: Directory) -> None:
    """An async view gets the user through the loader, once."""
    response = client.get("/async", as_user="ada@example.com")
    assert response.json == {"email": "ada@example.com", "again": "ada@example.com"}
    assert len(directory.asked) == 1


def test_user_outside_a_protected_request_raises(client: AccessClient, app: Flask) -> None:
    """get_user() and current_user raise NoAccessContextError in an open view and outside."""
    assert client.get("/open", as_user="ada@example.com").get_data(as_text=True) == "no context"
    with pytest.raises(NoAccessContextError):
        get_user()
    with app.test_request_context("/"), pytest.raises(NoAccessContextError):
        current_user.email  # noqa: B018 (the attribute read is the test)


def test_without_a_loader_asking_for_the_user_is_an_error(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """An app that registered no loader learns so when a view reads the user."""
    app = build_app(CloudflareAccess(clock=clock, background=run_inline), issuer.settings())
    app.testing = True
    with pytest.raises(RuntimeError, match="user_loader"):
        AccessClient.for_app(app, issuer).get("/me", as_user="ada@example.com")


def test_one_extension_serves_many_apps_with_a_loader_registered_late(
    issuer: AccessIssuer, clock: FrozenClock, mocked_team: responses.RequestsMock
) -> None:
    """A loader registered after init_app on two apps serves both; the object holds no app."""
    cf_access = CloudflareAccess(clock=clock, background=run_inline)
    first = build_app(cf_access, issuer.settings())
    second = build_app(cf_access, issuer.settings())
    directory = Directory({"ada@example.com": Account("ada@example.com")})
    cf_access.user_loader(directory.load)
    for app in (first, second):
        response = AccessClient.for_app(app, issuer).get("/me", as_user="ada@example.com")
        assert response.json is not None
        assert response.json["email"] == "ada@example.com"
    assert len(directory.asked) == 2
    assert not any(isinstance(value, Flask) for value in vars(cf_access).values())


def test_user_loader_decorator_returns_the_function(extension: CloudflareAccess) -> None:
    """@cf_access.user_loader gives the function back unchanged."""

    def load(identity: AccessIdentity) -> None:
        return None

    assert extension.user_loader(load) is load


def test_cached_user_belongs_to_the_identity_checked(
    app: Flask, issuer: AccessIssuer, directory: Directory
) -> None:
    """If a request is checked again with another token, the user is loaded for the new one."""
    directory.accounts["bob@example.com"] = Account("bob@example.com")
    ada, bob = issuer.user_token("ada@example.com"), issuer.user_token("bob@example.com")
    with app.test_request_context("/", headers=bearer(ada)) as context:
        verify_access_in_request()
        assert get_user().email == "ada@example.com"
        context.request.environ["HTTP_CF_ACCESS_JWT_ASSERTION"] = bob
        verify_access_in_request()
        assert get_user().email == "bob@example.com"
        assert g.cf_access_identity.email == "bob@example.com"
    assert len(directory.asked) == 2


def test_ensure_account_runs_the_loader_once(client: AccessClient, directory: Directory) -> None:
    """ensure_account() gives the loader's user for the identity, loading it once, with no view."""
    directory.create_unknown = True
    account = client.ensure_account(as_user="new@example.com")
    assert account == Account("new@example.com")
    assert [identity.email for identity in directory.asked] == ["new@example.com"]
    response = client.get("/me", as_user="new@example.com")
    assert response.json is not None
    assert response.json["email"] == "new@example.com"


def test_ensure_account_needs_an_identity(client: AccessClient) -> None:
    """ensure_account() without a user, service token or token is a TypeError."""
    with pytest.raises(TypeError, match="ensure_account"):
        client.ensure_account()


def test_ensure_account_refuses_a_bad_token(client: AccessClient, issuer: AccessIssuer) -> None:
    """The helper checks the token as a request would: a bad one raises the 401."""
    with pytest.raises(AccessUnauthorized) as refused:
        client.ensure_account(token=issuer.user_token("ada@example.com", expired=True))
    assert refused.value.reason is Reason.EXPIRED
