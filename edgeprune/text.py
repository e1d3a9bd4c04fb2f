"""Text from results files, manifests, policies and boards on its way into a terminal, a table cell, a plot or a
document: control characters shown (``visible``) or removed (``printable``), never obeyed.

A name is whatever the file says. An escape sequence would drive the terminal, a newline would split a table row
or a one-line error, a character XML 1.0 forbids would leave JUnit XML unparsable, a bidirectional override would
reorder what is shown. Each renderer adds its own format's escaping (HTML, Markdown, XML) on top of this.
"""

from __future__ import annotations

import re

# C0 and C1 controls, line and paragraph separators, bidirectional marks, embeddings, overrides and isolates, lone
# surrogates (not encodable) and the two noncharacters XML 1.0 forbids.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
# CSI (ESC [ ... final) and OSC (ESC ] ... BEL or ESC \) sequences: removed whole by ``printable``.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
MAX_TEXT = 2000
_LINE_BREAKS = "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def visible(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with line breaks and tabs as spaces (kept, with ``keep_lines``: XML may hold them) and every other
    unsafe character written out as its escape, ``\\x1b`` or ``\\u202e``."""
    def shown(match: re.Match[str]) -> str:
        char = match.group()
        if char in _LINE_BREAKS:
            return char if keep_lines and char in "\t\n" else " "
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return _UNSAFE.sub(shown, text)


def one_line(value: object) -> str:
    """``str(value)`` safe for one line of a terminal or a table cell."""
    return visible(str(value))


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` as one plain line for a field read from outside (a board's reply, a lock file): escape sequences
    and every other unsafe character removed, line breaks and tabs made spaces, at most ``limit`` characters."""
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _UNSAFE.sub(lambda match: " " if match.group() in _LINE_BREAKS else "", text)
    return shorten(text, limit)


def human_bytes(size: int | None) -> str | None:
    """1.5 KB, 537.2 KB, 12.0 MB (powers of 1024)."""
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return None


def percent(share: float | None) -> str | None:
    """A share (0..1) as a table cell: 97.1%; None stays a blank."""
    return None if share is None else f"{share:.1%}"
