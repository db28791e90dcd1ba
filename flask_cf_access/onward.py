"""Calling other Access apps: a service token, or the user forwarded, and nothing leaked.

One :class:`OnwardPolicy` says who calls (a :class:`ServiceToken`, or the
user of the current verified request, forwarded as a Linked App Token) and
where (an allow-list of origins); :class:`AccessRequestsAuth` (``requests``)
and :class:`AccessHttpxAuth` (``httpx``, sync and async; the ``httpx`` extra)
carry it out::

    from flask_cf_access.onward import AccessRequestsAuth, OnwardPolicy, ServiceToken

    reports = OnwardPolicy(
        ["https://reports.example.com"], service_token=ServiceToken.from_mapping()
    )
    answer = requests.get(
        "https://reports.example.com/api/daily", auth=AccessRequestsAuth(reports), timeout=10
    )

Access's answers (its login page, its 401, its block page) are raised as
:class:`AccessLoginRequiredError` and :class:`AccessBlockedError`; a call
off the allow-list, a redirect to another origin, or a user that cannot be
forwarded, as :class:`OnwardRefusedError`. Every call sends
:data:`~flask_cf_access.onward_call`. No token or secret is ever in a log
line, a signal or an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._onward.policy import AccessBlockedError as AccessBlockedError
from ._onward.policy import AccessChallengeError as AccessChallengeError
from ._onward.policy import AccessLoginRequiredError as AccessLoginRequiredError
from ._onward.policy import Answer as Answer
from ._onward.policy import OnwardCall as OnwardCall
from ._onward.policy import OnwardError as OnwardError
from ._onward.policy import OnwardPolicy as OnwardPolicy
from ._onward.policy import OnwardRefusedError as OnwardRefusedError
from ._onward.policy import ServiceToken as ServiceToken
from ._onward.requests_auth import AccessRequestsAuth as AccessRequestsAuth

if TYPE_CHECKING:
    from ._onward.httpx_auth import AccessHttpxAuth as AccessHttpxAuth

__all__ = [
    "AccessBlockedError",
    "AccessChallengeError",
    "AccessHttpxAuth",
    "AccessLoginRequiredError",
    "AccessRequestsAuth",
    "Answer",
    "OnwardCall",
    "OnwardError",
    "OnwardPolicy",
    "OnwardRefusedError",
    "ServiceToken",
]


def __getattr__(name: str) -> Any:
    """``AccessHttpxAuth``, imported on first use: httpx is an optional extra."""
    if name == "AccessHttpxAuth":
        from ._onward.httpx_auth import AccessHttpxAuth

        return AccessHttpxAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
