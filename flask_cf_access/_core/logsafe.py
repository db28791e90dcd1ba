"""Text taken from a request, made safe to put in a log line."""

from __future__ import annotations


def loggable(text: str) -> str:
    """``text`` with everything that could end, fake or hide part of a log line escaped.

    Non-printable characters (control characters such as CR, LF, NUL, ESC and
    DEL, the line breaks NEL, U+2028 and U+2029, format characters such as
    bidirectional overrides, and unassigned or private code points) are
    written as ``repr`` writes them (``\\r``, ``\\x1b``, ``\\u2028``); a
    backslash becomes ``\\\\``, so an escape in the input cannot pass for one
    of ours. Printable text, including non-ASCII letters, is kept as it is.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    return char if char.isprintable() else repr(char)[1:-1]
