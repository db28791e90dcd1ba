"""E-mail addresses and host names: parsed once into well-formed values, then matched.

One parser serves the settings (``CF_ACCESS_ALLOWED_EMAIL_DOMAINS``,
``CF_ACCESS_ALLOWED_EMAILS``, ``CF_ACCESS_TEAM_DOMAIN``) and the identities
(the ``email`` claim), so a rule and the address it is matched against are
read the same way, and rules compare parts, never text: no suffix test on a
string that could hold a ``/``, a ``?``, a second ``@`` or an empty label.

- An address is one unquoted ``@`` between a local part and a domain. The
  local part is a dot-atom (RFC 5322): atoms of ASCII letters, digits and
  ``!#$%&'*+-/=?^_`{|}~`` joined by single dots, at most 64 characters. No
  quoted local part, whitespace, control character or non-ASCII character
  (an internationalised local part, RFC 6531, is not accepted: it would be
  compared code point by code point, lookalikes and all).
- A domain is a host name: labels of 1 to 63 letters, digits and hyphens,
  not starting or ending with a hyphen, no empty label (so no leading or
  trailing dot), at most 253 characters, the last label not all digits (no
  IP address, and no ``[...]`` literal). A label that is not ASCII is
  converted to its ``xn--`` A-label by IDNA 2008 (the ``idna`` package,
  strict: no Unicode case folding or compatibility mapping, so a Kelvin
  sign or a fullwidth letter is malformed rather than turned into ASCII),
  and an ``xn--`` label must decode. Domains are compared in A-label form,
  ASCII case ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import idna

#: Longest address (RFC 5321's path, less its angle brackets), local part
#: and domain; anything longer is malformed before any other work.
MAX_ADDRESS = 254
MAX_LOCAL = 64
MAX_DOMAIN = 253

#: One DNS label in ASCII: letters, digits, hyphens; not starting or ending with a hyphen.
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
#: One unquoted local part (RFC 5322 ``dot-atom``): ``atext`` atoms joined by single dots.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowered and nothing else changed (no Unicode case folding)."""
    return text.translate(_ASCII_LOWER)


class MalformedAddress(ValueError):
    """Not a well-formed e-mail address or host name; the message says which part."""


@dataclass(frozen=True)
class EmailAddress:
    """A well-formed e-mail address, as :func:`parse_address` reads it."""

    #: The local part, as written.
    local: str
    #: The domain, in A-label form, lower case.
    domain: str

    @property
    def key(self) -> str:
        """The form address rules compare: ``local@domain``, ASCII case ignored."""
        return f"{ascii_lower(self.local)}@{self.domain}"

    @property
    def parent_domains(self) -> tuple[str, ...]:
        """Every domain this one is a subdomain of, by whole labels:
        ``("corp.example", "example")`` for ``eu.corp.example``."""
        labels = self.domain.split(".")
        return tuple(".".join(labels[index:]) for index in range(1, len(labels)))


def parse_address(text: object) -> EmailAddress:
    """``text`` read as an e-mail address.

    :raises MalformedAddress: anything but a well-formed address (see the module).
    """
    if not isinstance(text, str):
        raise MalformedAddress("an e-mail address must be a string")
    if len(text) > MAX_ADDRESS:
        raise MalformedAddress(f"longer than {MAX_ADDRESS} characters")
    local, at, domain = text.partition("@")
    if not at or "@" in domain:
        raise MalformedAddress("not exactly one '@'")
    _check_local(local)
    return EmailAddress(local=local, domain=parse_hostname(domain))


def _check_local(local: str) -> None:
    if not local:
        raise MalformedAddress("no local part")
    if len(local) > MAX_LOCAL:
        raise MalformedAddress(f"a local part longer than {MAX_LOCAL} characters")
    if not _DOT_ATOM.fullmatch(local):
        raise MalformedAddress(
            "a local part that is not ASCII letters, digits and !#$%&'*+-/=?^_`{|}~"
            " joined by single dots"
        )


def parse_hostname(text: str) -> str:
    """``text`` read as a host name: its A-label form, lower case.

    :raises MalformedAddress: anything but a well-formed host name (see the module).
    """
    if len(text) > MAX_DOMAIN:
        raise MalformedAddress(f"a domain longer than {MAX_DOMAIN} characters")
    labels = [_label(label) for label in ascii_lower(text).split(".")]
    domain = ".".join(labels)
    if len(domain) > MAX_DOMAIN:
        raise MalformedAddress(f"a domain longer than {MAX_DOMAIN} characters")
    if labels[-1].isdigit():
        raise MalformedAddress("a domain whose last label is all digits (an IP address?)")
    return domain


def _label(label: str) -> str:
    """One label, ASCII-lowered already, as its A-label."""
    if not label:
        raise MalformedAddress("an empty label in the domain (a leading, trailing or double dot)")
    if label.isascii() and not label.startswith("xn--"):
        if not _LDH_LABEL.fullmatch(label):
            raise MalformedAddress(
                "a domain label that is not 1-63 letters, digits and inner hyphens"
            )
        return label
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise MalformedAddress("a domain label that is not valid IDNA") from exc
