"""How a request path may be read by the servers, routers and apps behind a check.

One reader for every part that matches paths: the WSGI middleware's rules and
public paths, the applications of ``CF_ACCESS_APPLICATIONS`` and the testing
kit's local edge. A path that readers may resolve differently is refused
(``ambiguous_path``) rather than guessed at.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from .errors import AccessBadRequest, Reason, refusal

#: A percent-encoded byte, which a reader behind the middleware may decode again.
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
#: An encoded ``/`` or ``\`` (a separator to some readers, not to others), or
#: a ``%uNNNN`` escape (which IIS decodes, and nothing else should meet).
_REFUSED_ESCAPE = re.compile(r"%(?:2f|5c|u[0-9a-f]{4})", re.IGNORECASE)
#: A control character (Unicode category Cc), or the bytes of an overlong
#: UTF-8 sequence (as ``surrogateescape`` leaves them), which old decoders
#: read as ``.`` or ``/``.
_CONTROL_OR_OVERLONG = re.compile(
    "[\x00-\x1f\x7f-\x9f]|[\udcc0\udcc1]|\udce0[\udc80-\udc9f]|\udcf0[\udc80-\udc8f]"
)
#: A path every reader reads alike: lowercase ASCII segments, dots only inside.
_PLAIN_PATH = re.compile(r"(?:/[a-z0-9_~-]+(?:\.[a-z0-9_~-]+)*)*/?")
#: The most readings a path may have before it is refused as ambiguous.
_MAX_READINGS = 8


class _PathReadings:
    """The ways the servers, routers and apps behind the middleware may read a path.

    ``texts`` are the path as given (a ``PATH_INFO``, as text) and as it reads
    percent-decoded again, any number of times, and NFKC-normalised (a
    fullwidth solidus is ``/``, a fullwidth full stop is ``.``). ``segments``
    are their non-empty segments, and ``loose_segments`` the same with each
    segment's ``;`` parameters, letter case and trailing dots and spaces
    ignored, as Java servlet containers, case-insensitive file systems and
    Windows read them.

    :raises AccessBadRequest: a reading has a ``.`` or ``..`` segment (or one
        of dots and spaces only, ``;`` parameters aside), a backslash, an
        encoded ``/`` or ``\\``, a ``%uNNNN`` escape, or a control character;
        or the path has too many readings.
    """

    __slots__ = ("loose_segments", "segments", "texts")

    def __init__(self, path_info: str) -> None:
        if _PLAIN_PATH.fullmatch(path_info):
            # Most paths: one reading, loose as it is. Saves some 3 µs a request.
            self.texts: tuple[str, ...] = (path_info,)
            self.segments = self.loose_segments = {_segments(path_info)}
            return
        try:
            path = path_info.encode("latin-1").decode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:  # not a WSGI string: no server sends this
            raise refusal(Reason.AMBIGUOUS_PATH) from exc
        texts = [path]
        for text in texts:
            _refuse_ambiguous(text)
            for other in (_percent_decoded(text), unicodedata.normalize("NFKC", text)):
                if other not in texts:
                    if len(texts) == _MAX_READINGS:
                        raise refusal(Reason.AMBIGUOUS_PATH)
                    texts.append(other)
        self.texts = tuple(texts)
        self.segments = {_segments(text) for text in texts}
        self.loose_segments = {_loose_segments(segments) for segments in self.segments}


def _refuse_ambiguous(text: str) -> None:
    """:raises AccessBadRequest: ``text`` is a path that readers may resolve differently."""
    if "\\" in text or _REFUSED_ESCAPE.search(text):
        raise refusal(Reason.AMBIGUOUS_PATH)
    if _CONTROL_OR_OVERLONG.search(text):
        raise refusal(Reason.AMBIGUOUS_PATH)
    for segment in text.split("/"):
        bare = segment.split(";", 1)[0]
        if bare and not bare.rstrip(". "):
            raise refusal(Reason.AMBIGUOUS_PATH)


def _percent_decoded(text: str) -> str:
    if not _PERCENT_ESCAPE.search(text):
        return text
    return unquote(text, encoding="utf-8", errors="surrogateescape")


def _segments(path: str) -> tuple[str, ...]:
    """The non-empty segments of ``path``: ``//admin/`` is ``("admin",)``."""
    return tuple(segment for segment in path.split("/") if segment)


def _loose_segments(segments: tuple[str, ...]) -> tuple[str, ...]:
    """``segments`` with ``;`` parameters, letter case and trailing dots and spaces ignored."""
    loose = (_loose(segment) for segment in segments)
    return tuple(segment for segment in loose if segment)


def _loose(segment: str) -> str:
    for _ in range(3):
        bare = segment.split(";", 1)[0]
        looser = unicodedata.normalize("NFKC", bare.casefold()).rstrip(". ")
        if looser == segment:
            break
        segment = looser
    return segment


def _wsgi_path(path: str) -> str:
    """A configured path as it appears in ``PATH_INFO``: UTF-8 bytes in a latin-1 string."""
    return path.encode("utf-8").decode("latin-1")


def _configurable_path(path: str) -> bool:
    """Whether ``path`` starts with ``/`` and has one reading, itself, and no ``;``."""
    if not path.startswith("/") or ";" in path:
        return False
    try:
        readings = _PathReadings(_wsgi_path(path))
    except AccessBadRequest:
        return False
    return readings.texts == (path,)
