"""The middleware's rules and public prefixes: no rule is silently opened by a prefix above it."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from flask_cf_access import CloudflareAccessMiddleware, ConfigurationError, Reason
from flask_cf_access.testing import capture_access, run_inline

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def ok_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """What the middleware guards: it answers everything."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"content"]


def middleware(
    rules: dict[str, list[str]], public_prefixes: list[str]
) -> CloudflareAccessMiddleware:
    """A middleware of these rules and prefixes; its keys are never needed."""
    return CloudflareAccessMiddleware(
        ok_app,
        team_domain="team.example.invalid",
        audience="aud",
        load_keys_on_init=False,
        rules=rules,
        public_prefixes=public_prefixes,
        background=run_inline,
    )


@pytest.mark.parametrize(
    ("rule", "prefix"),
    [
        ("/static/admin", "/static"),
        ("/static", "/static"),
        ("/static/admin", "/static/"),
        ("/Static/admin", "/static"),
        ("/static/admin", "/STATIC"),
        ("/static./admin", "/static"),
        ("/a/b/c", "/a/b"),
    ],
)
def test_rule_under_a_public_prefix_is_refused(rule: str, prefix: str) -> None:
    """A rule at or below a public prefix fails at start-up, naming both."""
    with pytest.raises(ConfigurationError) as raised:
        middleware({rule: ["Admins"]}, [prefix])
    message = str(raised.value)
    assert repr(rule) in message
    assert repr(prefix) in message


@pytest.mark.parametrize(
    ("rule", "prefix"),
    [("/", "/static"), ("/app", "/app/static"), ("/static", "/staticfiles"), ("/a", "/b")],
)
def test_public_prefix_below_or_beside_a_rule_is_fine(rule: str, prefix: str) -> None:
    """A public prefix inside a rule's tree (or beside it) is allowed: the deeper one wins."""
    judge = middleware({rule: ["Admins"]}, [prefix])
    assert judge.is_public(prefix + "/app.css")


# -- the property: every nesting, every spelling ----------------------------

#: Segments rules are made of (lower case, so no two rules are one spelling).
RULE_SEGMENTS = ["a", "b", "c"]
#: Segments public prefixes are made of: also in another letter case.
PUBLIC_SEGMENTS = ["a", "b", "c", "A", "B"]


def paths(segments: list[str]) -> st.SearchStrategy[str]:
    """Paths of one to three of ``segments``."""
    return st.lists(st.sampled_from(segments), min_size=1, max_size=3).map(
        lambda parts: "/" + "/".join(parts)
    )


def loose(path: str) -> tuple[str, ...]:
    """The path's segments as the middleware compares them loosely, written apart from it."""
    text = unicodedata.normalize("NFKC", unquote(path.encode("latin-1").decode("utf-8")))
    return tuple(
        segment.split(";")[0].lower().rstrip(". ")
        for segment in text.split("/")
        if segment.split(";")[0].rstrip(". ")
    )


def spellings(path: str) -> list[str]:
    """``path`` as clients may write it (as a server puts it in ``PATH_INFO``): as is,
    below, with a slash, doubled slashes, upper case, a percent-encoded letter, a
    fullwidth letter, a ``;`` parameter, a trailing dot."""
    first = path[1]
    fullwidth = chr(ord(first) - ord("a") + 0xFF41) + path[2:]
    return [
        path,
        path + "/",
        path + "/x",
        path + "/b/c",
        "/" + path,
        path.replace("/", "//"),
        path.upper(),
        f"/%{ord(first):02x}{path[2:]}",
        path + ";p",
        path + ".",
        ("/" + fullwidth).encode("utf-8").decode("latin-1"),
    ]


def under(path: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return path[: len(prefix)] == prefix


@pytest.mark.slow
@settings(deadline=None, max_examples=300)
@given(
    st.dictionaries(paths(RULE_SEGMENTS), st.just(["Admins"]), min_size=1, max_size=3),
    st.lists(paths(PUBLIC_SEGMENTS), max_size=3),
)
def test_no_rule_is_opened_by_a_public_prefix(
    rules: dict[str, list[str]], prefixes: list[str]
) -> None:
    """Either start-up refuses a rule below a public prefix, or every spelling of every
    rule's paths needs a token, unless a public prefix deeper than the rule covers it."""
    nested = [
        (rule, prefix) for rule in rules for prefix in prefixes if under(loose(rule), loose(prefix))
    ]
    if nested:
        with pytest.raises(ConfigurationError) as raised:
            middleware(rules, prefixes)
        message = str(raised.value)
        assert any(repr(rule) in message and repr(prefix) in message for rule, prefix in nested)
        return
    judge = middleware(rules, prefixes)
    client = Client(judge)
    for rule in rules:
        for path in spellings(rule):
            segments = loose(path)
            deepest_rule = max(
                (loose(other) for other in rules if under(segments, loose(other))),
                key=len,
                default=(),
            )
            if any(
                under(segments, loose(prefix)) and len(loose(prefix)) > len(deepest_rule)
                for prefix in prefixes
            ):
                continue  # a public subtree inside the rule's: the deeper one wins
            with capture_access(judge) as captured:
                # As the server puts it in PATH_INFO ("//b" would be a host to a URL).
                response = client.get("/", environ_overrides={"PATH_INFO": path})
            assert response.status_code == 401, path
            assert captured.reasons == [Reason.MISSING_TOKEN], path
