"""Text from results files, manifests, policies and boards on its way into a terminal, a table cell, a plot or a
document: control characters shown, never obeyed.

A name is whatever the file says. An escape sequence would drive the terminal, a newline would split a table row
or a one-line error, a character XML 1.0 forbids would leave JUnit XML unparsable, a bidirectional override would
reorder what is shown. Each renderer adds its own format's escaping (HTML, Markdown, XML) on top of this.
"""

from __future__ import annotations

import re

# C0 and C1 controls, line and paragraph separators, bidirectional embeddings, overrides and isolates, lone
# surrogates (not encodable) and the two noncharacters XML 1.0 forbids.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
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
