"""What a shared cache in front of the origin may keep: nothing of an admitted answer.

An admitted request's answer is one user's page, so both front ends mark it
``Cache-Control: private`` as it leaves the application, on its WSGI headers,
unless the application set a ``Cache-Control`` of its own
(``CF_ACCESS_PRIVATE_RESPONSES``). Refusals are never cached at all
(``no-store``, set with the refusal in :mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: Set in a request's WSGI environ by a check that admitted it (or, in the
#: Flask extension, let it pass as nobody on an optional route, whose answer
#: depends on whether a token came): its answer is to be private.
CHECKED_ENVIRON_KEY = "flask_cf_access.checked"


class PrivateWhenChecked:
    """A WSGI application whose answers are marked private when a check of the
    request set :data:`CHECKED_ENVIRON_KEY`: what the Flask extension wraps
    ``app.wsgi_app`` in, and what the middleware passes what it admits to.

    On the headers as they leave the application, after the view, every
    ``after_request`` function and any middleware inside it: a
    ``Cache-Control`` set by any of them is kept. It costs a request less
    than an ``after_request`` function of its own would (Flask asks of each
    whether it is a coroutine) and adds no work to werkzeug's header copies.
    """

    __slots__ = ("wsgi_app",)

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        #: The application wrapped.
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start_checked_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if environ.get(CHECKED_ENVIRON_KEY):
                for name, _ in headers:
                    if name.lower() == "cache-control":
                        break
                else:
                    headers = [*headers, ("Cache-Control", "private")]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_checked_response)
