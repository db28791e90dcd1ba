"""The stand-in server acts out injected faults, so apps can be tested against a failing team."""

from __future__ import annotations

import time

import pytest
import requests

from flask_cf_access._core.fetch import FetchError, get_json
from flask_cf_access.testing import AccessIssuer
from flask_cf_access.testing._server import KitHTTPServer


@pytest.mark.parametrize("kind", ["refuse", "hang", "error", "garbage"])
def test_fault_fails_the_fetch_and_heals(kind: str) -> None:
    """Each failing fault makes a certs fetch fail, within the timeout; heal() restores it."""
    issuer = AccessIssuer()
    with issuer.serve() as server, requests.Session() as session:
        server.inject("certs", kind)
        started = time.monotonic()
        with pytest.raises(FetchError):
            get_json(session, server.certs_url, timeout=0.3)
        assert time.monotonic() - started < 3.0
        server.heal()
        assert get_json(session, server.certs_url, timeout=5) == issuer.certs()
        assert server.calls["/cdn-cgi/access/certs"] == 2


def test_slow_fault_answers_late() -> None:
    """A slow fault still answers, after its delay; only the endpoint named is slowed."""
    issuer = AccessIssuer()
    with issuer.serve() as server, requests.Session() as session:
        server.inject("identity", "slow", seconds=0.05)
        assert get_json(session, server.certs_url, timeout=5) == issuer.certs()
        token = issuer.user_token("ada@example.com", ["Admins"])
        identity = get_json(
            session,
            server.identity_url,
            timeout=5,
            headers={"Cookie": f"CF_Authorization={token}"},
        )
        assert isinstance(identity, dict)
        assert identity["email"] == "ada@example.com"


def test_close_ends_a_hanging_answer() -> None:
    """Closing the server releases the requests it holds hanging."""
    issuer = AccessIssuer()
    server = issuer.serve().start()
    server.inject("certs", "hang")
    with requests.Session() as session:
        url = server.certs_url
        server.close()
        with pytest.raises(FetchError):
            get_json(session, url, timeout=0.3)


def test_unknown_fault_refused() -> None:
    """A misspelt endpoint or kind is an error, not a silent no-op."""
    with AccessIssuer().serve() as server:
        with pytest.raises(ValueError, match="endpoint"):
            server.inject("cert", "hang")
        with pytest.raises(ValueError, match="fault"):
            server.inject("certs", "hanging")
        with pytest.raises(ValueError, match="seconds"):
            server.inject("certs", "slow")


def test_listens_with_a_normal_backlog() -> None:
    """The stand-in queues concurrent connections instead of dropping them (backlog 5)."""
    assert KitHTTPServer.request_queue_size >= 128
