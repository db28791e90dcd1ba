"""How a refusal is told: one log line, then the ``access_denied`` signal.

The only place a refusal is reported, whoever refuses: the checker (for the
decorators, guards and middleware), the middleware's path judgement, the
user loader.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._logsafe import loggable
from ._signals import access_denied

if TYPE_CHECKING:
    from ._errors import AccessError
    from ._identity import AccessIdentity

logger = logging.getLogger("flask_cf_access")


def report_refusal(
    sender: object,
    error: AccessError,
    *,
    method: str,
    path: str,
    identity: AccessIdentity | None,
) -> None:
    """Tell of one refusal: one log line, then the ``access_denied`` signal.

    The line says what the client was sent: ``401 missing_token``, or
    ``302 missing_token (to the login page)`` for a browser sent to sign in.
    The method and path come from the client, so they are escaped for the
    log (a ``%0D%0A`` in a path cannot write a line of its own); the token
    is never logged.
    """
    logger.warning(
        "Cloudflare Access refused %s %s: %d %s%s",
        loggable(method),
        loggable(path),
        error.sent_status,
        error.reason,
        "" if error.login_redirect is None else " (to the login page)",
    )
    if access_denied.receivers:
        access_denied.send(
            sender,
            error=error,
            reason=error.reason,
            method=method,
            path=path,
            identity=identity,
        )
