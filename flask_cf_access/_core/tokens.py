"""Reading a token before it is trusted: size, shape and header only."""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Any

from .errors import AccessError, Reason, refusal
from .json_input import parse_json

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

#: The request header Cloudflare Access puts the application token in.
TOKEN_HEADER = "Cf-Access-Jwt-Assertion"
#: The cookie browsers carry the same token in.
TOKEN_COOKIE = "CF_Authorization"
#: Where a WSGI server puts the token header in the environ.
TOKEN_ENVIRON_KEY = "HTTP_" + TOKEN_HEADER.upper().replace("-", "_")


def sent_token(request: Request) -> tuple[str | None, str | None]:
    """The token header of ``request`` and, only without it, its token cookie.

    The header is authoritative: when present, even empty or bad, the cookie
    is not read (so a bad header is never rescued by a good cookie, and a
    request with the header never pays for parsing its cookies).
    """
    header = request.environ.get(TOKEN_ENVIRON_KEY)
    return header, (request.cookies.get(TOKEN_COOKIE) if header is None else None)


#: Real application tokens are 1 to 4 KB; nothing longer is parsed at all.
MAX_TOKEN_LENGTH = 16 * 1024
#: Access token headers are about 150 characters (``alg``, ``kid``, ``typ``);
#: a longer header segment is refused before it is decoded or parsed.
MAX_HEADER_LENGTH = 1024

_BASE64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Every byte of a token to its spelling in standard base64: ``-`` to ``+``,
#: ``_`` to ``/``, the rest of the base64url alphabet and the dot to
#: themselves, and any other byte to ``0x80``, which is not even ASCII.
_TO_STANDARD_BASE64 = bytes(
    byte if byte in _BASE64URL_ALPHABET or byte == ord(".") else 0x80 for byte in range(256)
).translate(bytes.maketrans(b"-_", b"+/"))


def check_token_shape(token: str) -> tuple[bytes, bytes, bytes, bytes]:
    """Refuse, before any parsing, what cannot be a compact RS256 JWS.

    The token is read once: its alphabet checked, and its segments spelled
    in standard base64 on the way, ready for :func:`decode_segment`.

    :returns: the token's signing input (``header.payload``, as sent) and its
        three segments, non-empty, in the standard base64 alphabet:
        ``(signing_input, header, payload, signature)``.
    :raises AccessUnauthorized: too long (the token, or its header segment
        beyond :data:`MAX_HEADER_LENGTH`), or not three base64url segments.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise refusal(Reason.TOKEN_TOO_LARGE)
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise refusal(Reason.MALFORMED_TOKEN) from exc
    standard = raw.translate(_TO_STANDARD_BASE64)
    first_dot = standard.find(b".")
    last_dot = standard.rfind(b".")
    if (
        not standard.isascii()  # a byte of neither alphabet
        or first_dot <= 0  # no dot, or an empty header segment
        or last_dot <= first_dot + 1  # one dot, or an empty payload segment
        or last_dot == len(standard) - 1  # an empty signature segment
        or standard.find(b".", first_dot + 1, last_dot) != -1  # a third dot
    ):
        raise refusal(Reason.MALFORMED_TOKEN)
    if first_dot > MAX_HEADER_LENGTH:
        raise refusal(Reason.TOKEN_TOO_LARGE)
    return (
        raw[:last_dot],
        standard[:first_dot],
        standard[first_dot + 1 : last_dot],
        standard[last_dot + 1 :],
    )


def read_unverified_header(segment: bytes) -> dict[str, Any]:
    """The JOSE header in a token's first segment, whose signature has *not* been checked.

    Used only to choose the key by ``kid``; nothing in it is trusted.

    :param segment: the header segment :func:`check_token_shape` returned,
        in the standard base64 alphabet.
    :raises AccessUnauthorized: the header is longer than :data:`MAX_HEADER_LENGTH`,
        or not base64url UTF-8 JSON of an object.
    """
    if len(segment) > MAX_HEADER_LENGTH:
        raise refusal(Reason.TOKEN_TOO_LARGE)
    try:
        header = parse_json(decode_segment(segment))
    except (binascii.Error, ValueError) as exc:
        raise refusal(Reason.MALFORMED_TOKEN) from exc
    if not isinstance(header, dict):
        raise refusal(Reason.MALFORMED_TOKEN)
    return header


def read_unverified_claims(token: str) -> dict[str, Any]:
    """The claims of ``token``, whose signature has *not* been checked.

    Never to decide anything with: for the expiry of a token Access handed
    us (to stop sending it in time) and for the testing kit.

    :raises ValueError: not a compact JWS whose payload is a JSON object.
    """
    try:
        _, _, payload, _ = check_token_shape(token)
    except AccessError as exc:
        raise ValueError(f"not a compact JWS ({exc.reason})") from exc
    claims = parse_json(decode_segment(payload))
    if not isinstance(claims, dict):
        raise ValueError("the token's claims are not an object")
    return claims


#: For 0, 1, 2 characters of padding, the characters a canonical encoding can end with.
_CANONICAL_LAST = (b"", b"AEIMQUYcgkosw048", b"AQgw")
_PADDING = (b"", b"=", b"==")


def decode_segment(segment: bytes) -> bytes:
    """The bytes of a token segment spelled in standard base64 without padding.

    A length no encoding has, or a last character with unused bits set (a
    second spelling of the same bytes), is refused as in
    ``joserfc.util.urlsafe_b64decode``; the segment is already known to hold
    only base64 characters (:func:`check_token_shape`), so what is left to
    do is done by ``binascii`` alone, at about half the cost. The one
    base64url decoder of the package.

    :raises ValueError: the segment is not canonical base64.
    """
    pad = -len(segment) % 4
    if pad == 3 or (pad and segment[-1] not in _CANONICAL_LAST[pad]):
        raise ValueError("not canonical base64url")
    return binascii.a2b_base64(segment + _PADDING[pad])
