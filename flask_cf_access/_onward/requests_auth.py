"""The ``requests`` auth of an :class:`~flask_cf_access.onward.OnwardPolicy`."""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import AuthBase

from .._core.tokens import TOKEN_COOKIE
from .policy import (
    OnwardCall,
    OnwardError,
    OnwardPolicy,
    add_cookie,
    drop_cookie,
)


class AccessRequestsAuth(AuthBase):
    """Calls another Access app as its :class:`~flask_cf_access.onward.OnwardPolicy` says::

        auth = AccessRequestsAuth(policy)
        requests.get("https://reports.example.com/api/daily", auth=auth, timeout=10)

    Refuses a URL off the policy's origins before anything is sent; raises
    Access's answers (its login page, its 401 and its block page) as
    :class:`~flask_cf_access.onward.AccessChallengeError`, and a redirect
    to another origin as :class:`~flask_cf_access.onward.OnwardRefusedError`,
    before ``requests`` would follow it. Same-origin redirects are followed
    as usual. A remembered cookie Access refuses is dropped, and the call
    made once more with the service token.
    """

    def __init__(self, policy: OnwardPolicy) -> None:
        self.policy = policy

    def __repr__(self) -> str:
        return f"<AccessRequestsAuth {self.policy!r}>"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        call = self._apply(r, fresh=False)
        r.hooks["response"].append(_Hook(self.policy, call))
        return r

    def _apply(self, r: requests.PreparedRequest, *, fresh: bool) -> OnwardCall:
        headers, call = self.policy.start(r.method or "GET", r.url or "", fresh=fresh)
        cookie = headers.pop("Cookie", None)
        if cookie is not None:
            r.headers["Cookie"] = add_cookie(r.headers.get("Cookie"), cookie)
        r.headers.update(headers)
        return call


class _Hook:
    """The response hook of one call: it sees every answer, redirects included."""

    def __init__(self, policy: OnwardPolicy, call: OnwardCall) -> None:
        self.policy = policy
        self.call = call

    def __call__(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        answer = response
        try:
            call = self.policy.check_hop(self.call, response.request.url or "")
            if self.policy.refuses_cookie(call, response):
                answer = self._again(response, **kwargs)
                call = self.call
            self.policy.finish(call, answer, _set_cookie(answer))
        except OnwardError:
            answer.close()  # requests leaves an answer it is not given back unclosed
            raise
        return answer

    def _again(self, refused: requests.Response, **kwargs: Any) -> requests.Response:
        """Send the call once more with the service token, the refused cookie dropped."""
        self.policy.forget_cookie(self.call.origin)
        again = refused.request.copy()
        again.hooks = {"response": []}
        again.headers["Cookie"] = drop_cookie(again.headers.get("Cookie"), TOKEN_COOKIE)
        if not again.headers["Cookie"]:
            del again.headers["Cookie"]
        self.call = AccessRequestsAuth(self.policy)._apply(again, fresh=True)
        _ = refused.content  # read, so that the connection can go back to the pool
        refused.close()
        connection = refused.connection
        response: requests.Response = connection.send(again, **kwargs)
        response.history.append(refused)
        response.request = again
        return response


def _set_cookie(response: requests.Response) -> str | None:
    """The ``CF_Authorization`` cookie the answer set, if any."""
    for cookie in response.cookies:
        if cookie.name == TOKEN_COOKIE and cookie.value:
            return cookie.value
    return None
