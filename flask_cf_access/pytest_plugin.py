"""pytest fixtures for testing apps protected by flask-cf-access.

Registered through the ``pytest11`` entry point, so the fixtures are there in
any project that installs ``flask-cf-access``; nothing to import:

``cf_access_issuer``
    A fresh :class:`~flask_cf_access.testing.AccessIssuer` (the stand-in).
``cf_access_server``
    That stand-in served over HTTP on 127.0.0.1 (a
    :class:`~flask_cf_access.testing.StandInServer`); point an app at it with
    ``app.config.update(cf_access_server.settings())``.
``cf_access_responses``
    A ``responses.RequestsMock`` answering the stand-in's own HTTPS URLs
    (needs ``responses`` installed); use ``cf_access_issuer.settings()``.

::

    def test_admins_only(cf_access_server):
        app = create_app(cf_access_server.settings())
        client = AccessClient.for_app(app, cf_access_server.issuer)
        response = client.get("/admin/", as_user="ada@example.com", groups=["Admins"])
        assert response.status_code == 200

This module is imported by every pytest run in such a project: it imports
nothing heavy itself; the fixtures import what they need when used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from responses import RequestsMock

    from .testing import AccessIssuer, StandInServer


@pytest.fixture
def cf_access_issuer() -> AccessIssuer:
    """The stand-in for a Cloudflare Access team, with fresh keys, on the real clock."""
    from .testing import AccessIssuer

    return AccessIssuer()


@pytest.fixture
def cf_access_server(cf_access_issuer: AccessIssuer) -> Iterator[StandInServer]:
    """``cf_access_issuer`` served over HTTP on 127.0.0.1, stopped after the test."""
    with cf_access_issuer.serve() as server:
        yield server


@pytest.fixture
def cf_access_responses(cf_access_issuer: AccessIssuer) -> Iterator[RequestsMock]:
    """A ``responses`` mock answering ``cf_access_issuer``'s certs and identity URLs."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        cf_access_issuer.register(mock)
        yield mock
