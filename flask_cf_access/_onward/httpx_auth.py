"""The ``httpx`` auth of an :class:`~flask_cf_access.onward.OnwardPolicy` (the ``httpx`` extra)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

try:
    import httpx
except ImportError as exc:
    raise ImportError("The httpx auth needs httpx: pip install 'flask-cf-access[httpx]'") from exc

from .._core.tokens import TOKEN_COOKIE
from .policy import OnwardCall, OnwardPolicy, add_cookie, drop_cookie

#: Where a request carries its call, so that a redirect httpx builds from it is checked.
_CALL_EXTENSION = "flask_cf_access.onward_call"
#: The most redirects (and retries) one call follows, as httpx's own default.
_MAX_REDIRECTS = 20


class AccessHttpxAuth(httpx.Auth):
    """Calls another Access app as its :class:`~flask_cf_access.onward.OnwardPolicy`
    says, from ``httpx.Client`` and ``httpx.AsyncClient`` alike::

        auth = AccessHttpxAuth(policy)
        with auth.client(timeout=10) as client:
            client.get("https://reports.example.com/api/daily")

    Refuses a URL off the policy's origins before anything is sent; raises
    Access's answers (its login page, its 401 and its block page) as
    :class:`~flask_cf_access.onward.AccessChallengeError`, and a redirect to
    another origin as :class:`~flask_cf_access.onward.OnwardRefusedError`.

    With ``follow_redirects=True`` the auth follows redirects on the same
    origin itself (leave the client's own ``follow_redirects`` off, httpx's
    default). A client that follows redirects does so inside the auth's flow,
    out of its sight: the clients :meth:`client` and :meth:`async_client`
    make carry a request hook (:meth:`check_request`) that refuses, before it
    is sent, every redirect off the call's origin; with a client of your own
    that follows redirects, add that hook.
    """

    requires_response_body = True

    def __init__(self, policy: OnwardPolicy, *, follow_redirects: bool = False) -> None:
        self.policy = policy
        self.follow_redirects = follow_redirects

    def __repr__(self) -> str:
        return f"<AccessHttpxAuth {self.policy!r}>"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` with this auth and the :meth:`check_request` hook."""
        hooks = dict(kwargs.pop("event_hooks", None) or {})
        hooks["request"] = [self.check_request, *hooks.get("request", [])]
        return httpx.Client(auth=self, event_hooks=hooks, **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` with this auth and the :meth:`acheck_request` hook."""
        hooks = dict(kwargs.pop("event_hooks", None) or {})
        hooks["request"] = [self.acheck_request, *hooks.get("request", [])]
        return httpx.AsyncClient(auth=self, event_hooks=hooks, **kwargs)

    @staticmethod
    def check_request(request: httpx.Request) -> None:
        """An httpx request hook: refuse a request of a call (a redirect) off its origin.

        :raises OnwardRefusedError: the request carries credentials to another origin.
        """
        carried = request.extensions.get(_CALL_EXTENSION)
        if carried is not None:
            policy, call = carried
            policy.check_hop(call, str(request.url))

    @staticmethod
    async def acheck_request(request: httpx.Request) -> None:
        """:meth:`check_request`, for ``httpx.AsyncClient``."""
        AccessHttpxAuth.check_request(request)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the credentials, send, and read the answer.

        A cookie Access refuses is dropped and the call made once more with
        the service token; with ``follow_redirects``, a redirect on the same
        origin is followed here.
        """
        call = self._apply(request, fresh=False)
        response = yield request
        retried = False
        for _ in range(_MAX_REDIRECTS):
            for hop in (*response.history, response):
                self.policy.check_hop(call, str(hop.request.url))
            if not retried and self.policy.refuses_cookie(call, response):
                retried = True
                self.policy.forget_cookie(call.origin)
                again = response.request
                cookies = drop_cookie(again.headers.get("Cookie"), TOKEN_COOKIE)
                del again.headers["Cookie"]
                if cookies:
                    again.headers["Cookie"] = cookies
                call = self._apply(again, fresh=True)
                response = yield again
                continue
            hop_request = response.next_request
            if (
                not self.follow_redirects
                or hop_request is None
                or self.policy.challenge_of(call, response) is not None
            ):
                break
            self.policy.finish(call, response, _set_cookie(response))  # reports the redirect
            self.policy.check_hop(call, str(hop_request.url))
            call = self._apply(hop_request, fresh=False)
            response = yield hop_request
        self.policy.finish(call, response, _set_cookie(response))

    def _apply(self, request: httpx.Request, *, fresh: bool) -> OnwardCall:
        headers, call = self.policy.start(request.method, str(request.url), fresh=fresh)
        cookie = headers.pop("Cookie", None)
        if cookie is not None:
            request.headers["Cookie"] = add_cookie(request.headers.get("Cookie"), cookie)
        request.headers.update(headers)
        request.extensions = {**request.extensions, _CALL_EXTENSION: (self.policy, call)}
        return call


def _set_cookie(response: httpx.Response) -> str | None:
    """The ``CF_Authorization`` cookie the answer set, if any."""
    for cookie in response.cookies.jar:
        if cookie.name == TOKEN_COOKIE and cookie.value:
            return cookie.value
    return None
