"""Workers forked after start-up (gunicorn --preload) never share a connection to Cloudflare."""

from __future__ import annotations

import os

import pytest
import requests

from flask_cf_access import AccessSettings
from flask_cf_access._core.assembly import build_checker
from flask_cf_access._core.fetch import fork_safe_session
from flask_cf_access.testing import run_inline

URL = "https://team.cloudflareaccess.com/cdn-cgi/access/certs"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def adapter_is_fresh_in_child(session: requests.Session) -> bool:
    """Fork; report whether the child sees another adapter than the parent's."""
    before = session.get_adapter(URL)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, leave without pytest's teardown
        fresh = session.get_adapter(URL) is not before
        os.write(write_end, b"1" if fresh else b"0")
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert session.get_adapter(URL) is before  # the parent keeps its pools
    return answer == b"1"


def test_fork_safe_session_drops_inherited_pools() -> None:
    """A forked child gets fresh adapters; the parent keeps its own."""
    assert adapter_is_fresh_in_child(fork_safe_session())


def test_gate_session_is_fork_safe() -> None:
    """The session a checker makes for itself is fork-safe; one given to it is left alone."""
    settings = AccessSettings.from_mapping(
        {"CF_ACCESS_TEAM_DOMAIN": "team.cloudflareaccess.com", "CF_ACCESS_AUDIENCE": "aud"}
    )
    assert adapter_is_fresh_in_child(build_checker(settings, background=run_inline).session)
    assert not adapter_is_fresh_in_child(
        build_checker(settings, session=requests.Session(), background=run_inline).session
    )
