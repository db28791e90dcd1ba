"""Bounded JSON GETs to Cloudflare: a timeout, no redirects, a size cap."""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping

import requests
from requests.adapters import HTTPAdapter

from ._json_input import parse_json

#: A certs or identity document larger than this is refused.
MAX_RESPONSE_BYTES = 1024 * 1024


class FetchError(Exception):
    """The document could not be had: network, status, size or JSON."""


def get_json(
    session: requests.Session,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> object:
    """GET ``url`` and return its JSON body.

    Redirects are never followed and anything but a 2xx answer is an error.

    :raises FetchError: with a message fit for a log line (no credentials).
    """
    request_headers = {"Accept": "application/json"}
    if headers:
        request_headers.update(headers)
    try:
        with session.get(
            url,
            headers=request_headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            if not 200 <= response.status_code < 300:
                raise FetchError(f"{url} answered HTTP {response.status_code}")
            body = _read_capped(response)
    except requests.RequestException as exc:
        raise FetchError(f"{url} could not be reached: {type(exc).__name__}") from exc
    try:
        return parse_json(body)
    except ValueError as exc:
        raise FetchError(f"{url} did not answer JSON") from exc


def _read_capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise FetchError(f"{response.url} answered more than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def fork_safe_session() -> requests.Session:
    """A ``requests.Session`` whose kept-alive connections a forked child never reuses.

    A server that loads the app before forking its workers (gunicorn's
    ``--preload``) would otherwise hand every worker the same open connection
    to Cloudflare. In the child, the inherited pools are dropped (not closed,
    so nothing is sent on the parent's connection) and fresh ones mounted.
    """
    session = requests.Session()
    if hasattr(os, "register_at_fork"):
        reference = weakref.ref(session)
        os.register_at_fork(after_in_child=lambda: forget_connections(reference()))
    return session


def forget_connections(session: requests.Session | None) -> None:
    """Mount fresh HTTP(S) adapters on ``session``, leaving the old pools untouched."""
    if session is not None:
        session.mount("https://", HTTPAdapter())
        session.mount("http://", HTTPAdapter())
