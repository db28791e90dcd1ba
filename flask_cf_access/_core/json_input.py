"""The one JSON parser for everything that comes from outside: tokens, certs, identities.

Token headers and payloads (RFC 7515, 7519), certs documents and get-identity
answers are all read here, so every one of them gets the same rules:

- UTF-8 only: no byte-order mark, no UTF-16 or UTF-32 (which ``json.loads``
  on bytes would detect and accept), no encoded surrogates;
- JSON only: no ``NaN``, ``Infinity`` or ``-Infinity``;
- at most :data:`MAX_JSON_DEPTH` arrays and objects deep, and a text nested
  beyond what the parser itself can take is a refusal, never a
  ``RecursionError``.

Anything else raises :class:`JSONInputError`, a ``ValueError``, which each
caller turns into its own refusal (a bad token, a failed fetch).
"""

from __future__ import annotations

import json
from typing import Any

#: Arrays and objects nested deeper than this are refused. Access tokens,
#: certs documents and identities are 2 to 5 deep; this leaves room for any
#: SAML or OIDC attributes while keeping every later walk of a value short.
MAX_JSON_DEPTH = 32


class JSONInputError(ValueError):
    """Bytes from outside that are not the JSON this package accepts."""


def _refuse_constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_CONTAINERS = (dict, list)


def parse_json(data: bytes) -> Any:
    """The value of the UTF-8 JSON text ``data``, nested at most :data:`MAX_JSON_DEPTH` deep.

    :raises JSONInputError: not UTF-8, not JSON, or nested too deep.
    """
    try:
        text = data.decode("utf-8")
        # A token's header and claims are an object with nothing around it:
        # raw_decode reads them without json's two whitespace scans; anything
        # else (whitespace around, trailing text, a scalar) as json.loads would.
        if text[:1] == "{":
            value, end = _DECODER.raw_decode(text)
            if end != len(text):
                value = _DECODER.decode(text)
        else:
            value = _DECODER.decode(text)
    except UnicodeDecodeError as exc:
        raise JSONInputError("not UTF-8") from exc
    except RecursionError as exc:
        raise JSONInputError("nested too deep") from exc
    except ValueError as exc:
        raise JSONInputError("not JSON") from exc
    # Fewer brackets than the limit cannot nest beyond it: only a text with
    # more (or with brackets inside its strings) needs the walk, which costs
    # a token's usual claims five times what the count does.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise JSONInputError("nested too deep")
    return value


def _depth(value: object) -> int:
    """How many arrays and objects deep ``value`` nests, counted without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, _CONTAINERS))
    return deepest
