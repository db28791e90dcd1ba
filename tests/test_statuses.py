"""Each refusal reason's status and description, and the classes its status picks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import flask_cf_access
from flask_cf_access import (
    AccessBadRequest,
    AccessError,
    AccessForbidden,
    AccessUnauthorized,
    AccessUnavailable,
    Reason,
)
from flask_cf_access._core.errors import refusal

REFUSAL_CLASSES: tuple[type[AccessError], ...] = (
    AccessBadRequest,
    AccessUnauthorized,
    AccessForbidden,
    AccessUnavailable,
)


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_carries_a_status_and_a_description(reason: Reason) -> None:
    """One of 400/401/403/503, and one line of plain text for people, no full stop to end it."""
    assert reason.status in {400, 401, 403, 503}
    assert reason.description.strip() == reason.description != ""
    assert "\n" not in reason.description
    assert not reason.description.endswith((".", "?", ":"))


def test_the_four_statuses_are_all_used() -> None:
    """Every refusal class has reasons of its status."""
    assert {reason.status for reason in Reason} == {400, 401, 403, 503}


@pytest.mark.parametrize("reason", list(Reason))
def test_a_reason_is_still_its_code(reason: Reason) -> None:
    """The value logs, signals and captures carry is the code alone, the member's name in
    lower case; the status and description beside it change none of that."""
    assert reason.value == reason.name.lower()
    assert str(reason) == f"{reason}" == reason == reason.value
    assert Reason(reason.value) is reason
    assert isinstance(reason, str)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (Reason.MISSING_TOKEN, 401),
        (Reason.EXPIRED, 401),
        (Reason.NOT_AN_APP_TOKEN, 401),
        (Reason.NOT_IN_GROUP, 403),
        (Reason.NO_ACCOUNT, 403),
        (Reason.CROSS_SITE_REQUEST, 403),
        (Reason.KEYS_UNAVAILABLE, 503),
        (Reason.IDENTITY_UNAVAILABLE, 503),
        (Reason.AMBIGUOUS_PATH, 400),
    ],
)
def test_statuses_follow_the_rule(reason: Reason, status: int) -> None:
    """Bad token 401, refused by a rule 403, keys or identity unavailable 503, bad path 400."""
    assert reason.status == status


@pytest.mark.parametrize("reason", list(Reason))
def test_refusal_picks_the_class_of_the_reasons_status(reason: Reason) -> None:
    """refusal(reason) is the one refusal class whose code is the reason's status."""
    error = refusal(reason)
    assert error.code == reason.status
    assert error.reason is reason
    assert [cls for cls in REFUSAL_CLASSES if isinstance(error, cls)] == [
        cls for cls in REFUSAL_CLASSES if cls.code == reason.status
    ]


def test_a_class_refuses_a_reason_of_another_status() -> None:
    """AccessForbidden(Reason.EXPIRED) is a programming error, named as such."""
    with pytest.raises(
        ValueError,
        match=r"Reason\.EXPIRED is answered with 401, not 403: "
        r"raise AccessUnauthorized\(Reason\.EXPIRED\)",
    ):
        AccessForbidden(Reason.EXPIRED)
    with pytest.raises(ValueError, match="not 401"):
        AccessUnauthorized(Reason.KEYS_UNAVAILABLE)


@pytest.mark.parametrize("reason", ["expired", None, 401])
def test_a_class_refuses_what_is_no_reason(reason: object) -> None:
    """A string, None or a number is no Reason, even one spelled like a Reason's value."""
    with pytest.raises(ValueError, match="is not a Reason"):
        AccessUnauthorized(reason)  # type: ignore[arg-type]  # deliberately wrong


def test_a_class_given_its_own_reason_is_built() -> None:
    """The classes stay usable directly, for a reason of their own status."""
    assert AccessForbidden(Reason.CHECK_FAILED).reason is Reason.CHECK_FAILED
    assert AccessUnavailable(Reason.IDENTITY_UNAVAILABLE).code == 503


def test_the_package_refuses_only_through_the_table() -> None:
    """No module of the package names a refusal class to raise: each calls refusal(reason)."""
    names = {cls.__name__ for cls in REFUSAL_CLASSES}
    built_directly = []
    package = Path(flask_cf_access.__file__).parent
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in names
            ):
                built_directly.append(f"{path.relative_to(package)}:{node.lineno}")
    assert built_directly == []
