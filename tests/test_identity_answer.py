"""A get-identity answer counts only when it is about the token's own user."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from flask import Flask

from flask_cf_access import Reason
from flask_cf_access.testing import AccessCapture, AccessIssuer, capture_access

from .support import bearer, count_calls

ADA = "ada@example.com"


@pytest.fixture
def captured(app: Flask) -> Iterator[AccessCapture]:
    """Every access decision ``app`` makes while the test runs, with its reason."""
    with capture_access(app) as captured:
        yield captured


def answer_with(
    mock: responses.RequestsMock, issuer: AccessIssuer, token: str, **changes: Any
) -> None:
    """Make get-identity answer the stand-in's answer for ``token``, with ``changes``."""
    answer = issuer.identity_for(token)
    assert answer is not None
    answer.update(changes)
    mock.replace(
        responses.GET,
        issuer.identity_url,
        json={name: value for name, value in answer.items() if value is not None},
    )


def admin_status(app: Flask, token: str) -> int:
    return app.test_client().get("/admin", headers=bearer(token)).status_code


def test_answer_about_another_user_is_refused_and_not_cached(
    app: Flask,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    captured: AccessCapture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An answer naming another e-mail is 503 (logged, no token), and asked again next time."""
    token = issuer.user_token(ADA, ["Staff"])
    boss = issuer.identity_for(issuer.user_token("boss@example.com", ["Admins"]))
    assert boss is not None
    mocked_team.replace(responses.GET, issuer.identity_url, json=boss)
    with caplog.at_level(logging.INFO, logger="flask_cf_access"):
        assert admin_status(app, token) == 503
        assert admin_status(app, token) == 503
    assert captured.reasons == [Reason.IDENTITY_UNAVAILABLE] * 2
    assert "another user" in caplog.text
    assert token.split(".")[2] not in caplog.text
    assert count_calls(mocked_team, issuer.identity_url) == 2
    answer_with(mocked_team, issuer, token)
    assert admin_status(app, token) == 403
    assert captured.reasons[-1] is Reason.NOT_IN_GROUP


def test_email_compared_without_case(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """The same e-mail in other letter cases is the same user."""
    token = issuer.user_token(ADA, ["Admins"])
    answer_with(mocked_team, issuer, token, email="Ada@EXAMPLE.com")
    assert admin_status(app, token) == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"email": None},
        {"email": ""},
        {"email": ["ada@example.com"]},
        {"email": "ada@example.com.evil.example"},
        {"user_uuid": "7335d417-61da-459d-899c-0a01c76a2f94"},
        {"user_uuid": None, "email": "eve@example.com"},
    ],
    ids=["no-email", "empty-email", "email-list", "other-email", "other-uuid", "other-both"],
)
def test_answer_not_about_the_user_is_503(
    app: Flask,
    issuer: AccessIssuer,
    mocked_team: responses.RequestsMock,
    captured: AccessCapture,
    changes: dict[str, Any],
) -> None:
    """No e-mail, another e-mail, or a user_uuid other than the sub: 503, never the groups."""
    token = issuer.user_token(ADA, ["Admins"])
    answer_with(mocked_team, issuer, token, **changes)
    assert admin_status(app, token) == 503
    assert captured.reasons == [Reason.IDENTITY_UNAVAILABLE]


def test_user_uuid_matching_sub_passes(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """An answer carrying the token's sub as user_uuid, as Cloudflare's does, is accepted."""
    token = issuer.user_token(ADA, ["Admins"])
    answer = issuer.identity_for(token)
    assert answer is not None
    assert answer["user_uuid"] == answer["id"]
    assert admin_status(app, token) == 200


def test_token_without_email_is_tied_by_its_sub(
    app: Flask, issuer: AccessIssuer, mocked_team: responses.RequestsMock
) -> None:
    """A user token with no e-mail needs an answer whose user_uuid is its sub."""
    token = issuer.mint({"email": "", "sub": "ada-uuid"})
    groups = [{"id": "1", "name": "Admins"}]
    answer = {"email": ADA, "user_uuid": "ada-uuid", "groups": groups}
    mocked_team.replace(responses.GET, issuer.identity_url, json=answer)
    assert admin_status(app, token) == 200
    nothing_ties = issuer.mint({"email": "", "sub": "eve-uuid"})
    mocked_team.replace(responses.GET, issuer.identity_url, json={"email": ADA, "groups": groups})
    assert admin_status(app, nothing_ties) == 503
