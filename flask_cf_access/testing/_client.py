"""A Flask test client that sends requests with the stand-in's tokens."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

from .._core.tokens import TOKEN_HEADER

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.test import TestResponse

    from ._stand_in import AccessIssuer


class AccessClient(FlaskClient):
    """A Flask test client that sends requests as a user or a service token.

    Make it the app's test client class and give it the stand-in the app trusts::

        app.test_client_class = AccessClient
        client = app.test_client(issuer=issuer)

        client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
        client.get("/api/whoami", as_service_token="ci.access")
        client.get("/", token=issuer.user_token("ada@example.com", expired=True))
        client.get("/")  # no token at all

    The token goes in the ``Cf-Access-Jwt-Assertion`` header, as Access sends
    it. To test the cookie instead, set it yourself:
    ``client.set_cookie("CF_Authorization", token)``. The options are ignored
    when the request is given as an ``EnvironBuilder`` or environ.
    """

    def __init__(self, *args: Any, issuer: AccessIssuer | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The stand-in whose tokens ``as_user`` and ``as_service_token`` send.
        self.issuer = issuer

    @classmethod
    def for_app(cls, app: Flask, issuer: AccessIssuer, **kwargs: Any) -> AccessClient:
        """A client of ``app`` sending tokens of ``issuer``, whatever the app's
        ``test_client_class``."""
        return cls(app, app.response_class, use_cookies=True, issuer=issuer, **kwargs)

    def open(
        self,
        *args: Any,
        as_user: str | None = None,
        groups: Iterable[str] = (),
        as_service_token: str | None = None,
        token: str | None = None,
        buffered: bool = False,
        follow_redirects: bool = False,
        **kwargs: Any,
    ) -> TestResponse:
        """Open a request, with a token when asked for.

        :param as_user: mint a token for this e-mail; its ``groups`` are
            served by the stand-in's ``get-identity``.
        :param groups: the user's group names (a single string is one group).
        :param as_service_token: mint a service token's token for this client id.
        :param token: send this token as it is (any kind the stand-in minted).
        """
        names = (groups,) if isinstance(groups, str) else tuple(groups)
        chosen = self._token(as_user, names, as_service_token, token)
        if chosen is not None:
            headers = Headers(kwargs.pop("headers", None))
            headers[TOKEN_HEADER] = chosen
            kwargs["headers"] = headers
        return super().open(*args, buffered=buffered, follow_redirects=follow_redirects, **kwargs)

    def ensure_account(
        self,
        *,
        as_user: str | None = None,
        groups: Iterable[str] = (),
        as_service_token: str | None = None,
        token: str | None = None,
    ) -> Any:
        """Make "a user who already has an account": the app's user loader runs
        once for this identity, as on its first request, so the test's own
        requests are its later visits.

        The token is checked by the app like a request's, then given to the
        loader (a loader that provisions creates the account). Takes the same
        options as :meth:`open`; returns the loader's user, from a request
        context that has ended. A SQLAlchemy object is returned with its
        columns and relationships loaded before its session closed, so it can
        be read (not lazily loaded further) once detached.

        :raises LookupError: the loader has no account for the identity
            (create it in the test's database, then call this).
        """
        from .._flask.guards import make_guard
        from .._flask.request import check_guard, get_user

        chosen = self._token(as_user, tuple(groups), as_service_token, token)
        if chosen is None:
            raise TypeError("ensure_account() needs as_user, as_service_token or token")
        app = self.application
        with app.test_request_context(headers={TOKEN_HEADER: chosen}):
            # Not the primitive: that would judge the guards of the view at "/" too.
            identity = check_guard(app, make_guard(optional=True))
            user = get_user()
            _load_while_attached(user)
        if user is None:
            raise LookupError(f"The app's user loader has no account for {identity!r}.")
        return user

    def _token(
        self,
        as_user: str | None,
        groups: tuple[str, ...],
        as_service_token: str | None,
        token: str | None,
    ) -> str | None:
        if sum(option is not None for option in (as_user, as_service_token, token)) > 1:
            raise TypeError("give only one of as_user, as_service_token and token")
        if groups and as_user is None:
            raise TypeError("groups are for as_user")
        if token is not None or (as_user is None and as_service_token is None):
            return token
        if self.issuer is None:
            raise TypeError(
                "AccessClient has no issuer: use app.test_client(issuer=issuer)"
                " or AccessClient.for_app(app, issuer)"
            )
        if as_user is not None:
            return self.issuer.user_token(as_user, groups)
        return self.issuer.service_token(str(as_service_token))


def _load_while_attached(user: object) -> None:
    """Load every attribute of ``user``, if it is a SQLAlchemy object still in a session.

    The session ends with the request context (Flask-SQLAlchemy removes it),
    and an object the loader committed is expired: read after that, any of
    its attributes would raise ``DetachedInstanceError``.
    """
    try:
        from sqlalchemy import inspect
        from sqlalchemy.orm import InstanceState
    except ImportError:  # no SQLAlchemy: no ORM object
        return
    state = inspect(user, raiseerr=False)
    if not isinstance(state, InstanceState) or state.session is None:
        return
    for attribute in state.mapper.attrs:
        getattr(user, attribute.key)
