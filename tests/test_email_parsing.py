"""E-mail rules judged against an independent reading: the standard library's address
parser and a host-name check written here, over hostile and well-formed addresses."""

from __future__ import annotations

import re
import string
from email.headerregistry import Address

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from flask_cf_access import AccessForbidden, AccessIdentity, AccessSettings, Group, Reason
from flask_cf_access._core.requirements import ANY_TOKEN, AccessPolicy

DOMAINS = ["acme.com", ".corp.example", "b\u00fccher.example"]
EMAILS = ["contractor@gmail.com"]
POLICY = AccessPolicy(
    AccessSettings.from_mapping(
        {
            "CF_ACCESS_TEAM_DOMAIN": "acme.cloudflareaccess.com",
            "CF_ACCESS_AUDIENCE": "aud",
            "CF_ACCESS_ALLOWED_EMAIL_DOMAINS": DOMAINS,
            "CF_ACCESS_ALLOWED_EMAILS": EMAILS,
        }
    )
)

# -- the reference reading, independent of the package's parser ----------------

LDH = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
#: The non-ASCII letters the strategies draw that IDNA 2008 admits (lower case only).
IDNA_LETTERS = frozenset("\u00fc\u0430")


def reference_label(label: str) -> str | None:
    """One domain label as its A-label, lower case; ``None`` if it is not valid."""
    label = "".join(char.lower() if char.isascii() else char for char in label)
    if label.isascii():
        return label if LDH.fullmatch(label) and not label.startswith("xn--") else None
    allowed = set(string.ascii_lowercase + string.digits + "-") | IDNA_LETTERS
    if not set(label) <= allowed or label[0] == "-" or label[-1] == "-" or label[2:4] == "--":
        return None
    a_label = "xn--" + label.encode("punycode").decode("ascii")
    return a_label if len(a_label) <= 63 else None


def reference_domain(domain: str) -> str | None:
    """A host name in A-label form, lower case, or ``None``."""
    labels = [reference_label(label) for label in domain.split(".")]
    if None in labels:
        return None
    a_domain = ".".join(label for label in labels if label)
    if len(a_domain) > 253 or a_domain.rpartition(".")[2].isdigit():
        return None
    return a_domain


def reference_address(text: str) -> tuple[str, str] | None:
    """``(local part, A-label domain)`` as the standard library and the check above read
    ``text``, or ``None`` when either refuses it or it needs quoting, comments or spaces."""
    try:
        parsed = Address(addr_spec=text)
    except Exception:  # the library raises several kinds; any is a refusal
        return None
    if f"{parsed.username}@{parsed.domain}" != text or len(text) > 254:
        return None
    if len(parsed.username) > 64:
        return None
    domain = reference_domain(parsed.domain)
    return None if domain is None else (parsed.username, domain)


def reference_verdict(text: str) -> Reason | None:
    """What the rules above should answer ``text``: ``None`` to admit it."""
    parsed = reference_address(text)
    if parsed is None:
        return Reason.MALFORMED_EMAIL
    local, domain = parsed
    if f"{local.lower()}@{domain}" in EMAILS:
        return None
    for rule in DOMAINS:
        wanted = reference_domain(rule.lstrip("."))
        assert wanted is not None
        if domain == wanted if not rule.startswith(".") else domain.endswith("." + wanted):
            return None
    return Reason.EMAIL_NOT_ALLOWED


def verdict(email: str) -> Reason | None:
    """What the package answers a user with ``email``: ``None`` to admit it."""
    identity = AccessIdentity({"sub": "u1", "email": email}, tuple[Group, ...], POLICY)
    try:
        POLICY.authorize(identity, ANY_TOKEN)
    except AccessForbidden as refused:
        return refused.reason
    return None


# -- what is drawn --------------------------------------------------------------

#: Characters a hostile address slips in: separators a suffix test would skip,
#: whitespace and controls, lookalikes (Kelvin sign, fullwidth a, ideographic full
#: stop), a zero-width space, a bidirectional override, upper case.
HOSTILE = '/?#@\\ \t\n\x00"()[]:;,<>_.\u212a\uff41\u3002\u200b\u202eAZ'
ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"

good_labels = st.from_regex(LDH, fullmatch=True).filter(lambda label: len(label) <= 20)
idn_labels = st.text(alphabet="ab-\u00fc\u0430", min_size=1, max_size=8)
hostile_labels = st.text(alphabet="ab0-" + HOSTILE, min_size=0, max_size=6)
labels = st.one_of(good_labels, good_labels, idn_labels, hostile_labels)
suffixes = st.sampled_from(["corp.example", "acme.com", "b\u00fccher.example", "gmail.com", ""])
domains = st.builds(
    lambda head, suffix: ".".join([*head, suffix] if suffix else head) or "",
    st.lists(labels, max_size=3),
    suffixes,
)
locals_ = st.one_of(
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=12),
    st.text(alphabet="ab." + HOSTILE, max_size=6),
    st.just("contractor"),
)
affixes = st.sampled_from(["", "", "", " ", "\x00", ".", "@evil.com", "\n", "/", "?x"])
addresses = st.builds(
    lambda before, local, domain, after: f"{before}{local}@{domain}{after}",
    affixes,
    locals_,
    domains,
    affixes,
)


@pytest.mark.slow
@given(addresses)
@example("x@evil.com/.corp.example")
@example("x@evil.com?.corp.example")
@example("x@..corp.example")
@example("x@-.corp.example")
@example(" x@a.corp.example")
@example("x@a.corp.example\x00")
@example("x@a.corp.example")
@example("Contractor@GMAIL.com")
def test_rules_agree_with_the_reference(email: str) -> None:
    """Drawn addresses, hostile or not, get the verdict the independent reading gives."""
    assert verdict(email) == reference_verdict(email)


@given(st.text(max_size=40))
def test_anything_admitted_is_well_formed(text: str) -> None:
    """Any text: the package admits only what the standard library reads as the same
    unquoted address."""
    email = f"{text}@acme.com" if "@" not in text else text
    if verdict(email) is None:
        assert reference_address(email) is not None or not email.isascii()


@pytest.mark.slow
@given(st.emails())
def test_every_well_formed_address_is_judged_not_malformed(email: str) -> None:
    """Hypothesis's own well-formed addresses are never called malformed."""
    assert verdict(email) in (None, Reason.EMAIL_NOT_ALLOWED)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("x@a.corp.example", None),
        ("x@a.b.corp.example", None),
        ("x@corp.example", Reason.EMAIL_NOT_ALLOWED),
        ("x@acorp.example", Reason.EMAIL_NOT_ALLOWED),
        ("x@acme.com", None),
        ("x@a.acme.com", Reason.EMAIL_NOT_ALLOWED),
        ("x@xn--bcher-kva.example", None),
        ("x@B\u00fcCHER.example", None),  # ASCII case only is ignored
        ("x@b\u00dccher.example", Reason.MALFORMED_EMAIL),
        ("x@" + "a." * 125 + "acme.com", Reason.MALFORMED_EMAIL),  # over 254 in all
        ("x@" + "a" * 63 + ".corp.example", None),
        ("x@" + "a" * 64 + ".corp.example", Reason.MALFORMED_EMAIL),
        ("x" * 64 + "@acme.com", None),
        ("x" * 65 + "@acme.com", Reason.MALFORMED_EMAIL),
        ("\u00e9l\u00e8ve@acme.com", Reason.MALFORMED_EMAIL),  # not ASCII (RFC 6531)
        ("x@xn--zz.corp.example", Reason.MALFORMED_EMAIL),
        ("x@ab--cd.corp.example", None),
        ("x@1.corp.example", None),
        ("x@corp.123", Reason.MALFORMED_EMAIL),
        ("x@[::1]", Reason.MALFORMED_EMAIL),
        ("x.y+tag@acme.com", None),
        ("x\u200b@acme.com", Reason.MALFORMED_EMAIL),
    ],
)
def test_boundaries(email: str, expected: Reason | None) -> None:
    """Lengths, IDNA, labels of digits, literals and the subdomain rule at their edges."""
    assert verdict(email) == expected


def test_the_address_is_parsed_once_per_identity() -> None:
    """A remembered identity parses its e-mail once, however many requests judge it."""
    identity = AccessIdentity({"sub": "u1", "email": "x@a.corp.example"}, tuple, POLICY)
    POLICY.authorize(identity, ANY_TOKEN)
    parsed = identity._parsed_email()
    POLICY.authorize(identity, ANY_TOKEN)
    assert identity._parsed_email() is parsed
