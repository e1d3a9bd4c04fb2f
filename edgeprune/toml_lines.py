"""Line numbers of tables and keys in a TOML text, for error messages (``tomllib`` parses without positions).

Best effort: ``[a.b]`` headers and ``key = value`` lines, with bare or quoted (dotted) keys; a key written
inside an inline table has no line and the message then goes without one.
"""

from __future__ import annotations

import re

_KEY_PART = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")
_HEADER = re.compile(r"^\s*\[(?!\[)(?P<key>[^\]]*)\]\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(r"""^\s*(?P<key>(?:[A-Za-z0-9_.\s-]|"(?:[^"\\]|\\.)*"|'[^']*')+?)\s*=""")

TablePath = tuple[str, ...]


def split_dotted_key(text: str) -> TablePath | None:
    """``devices."pi 4".variants`` -> ("devices", "pi 4", "variants"); None when it is not a key."""
    parts: list[str] = []
    position = 0
    while True:
        match = _KEY_PART.match(text, position)
        if not match or match.end() == position:
            return None
        parts.append(next(group for group in match.groups() if group is not None))
        position = match.end()
        if position == len(text):
            return tuple(parts)
        if text[position] != ".":
            return None
        position += 1


def line_of(text: str, table: TablePath, key: str | None = None) -> int | None:
    """The line of ``key`` in ``[table]``, or of the ``[table]`` header itself when ``key`` is None."""
    current: TablePath = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            current = split_dotted_key(header["key"]) or ()
            # `[devices.pi4.variants.int8]` alone also defines `[devices.pi4]`, implicitly, on this line.
            if key is None and current[:len(table)] == table:
                return number
            continue
        assignment = _ASSIGNMENT.match(line)
        if not assignment:
            continue
        dotted = split_dotted_key(assignment["key"])
        if dotted is None:
            continue
        full = current + dotted
        # `[devices]` + `pi4.max_p50_ms = 3` defines table devices.pi4 on this very line.
        if key is None and full[:len(table)] == table and len(full) > len(table):
            return number
        if key is not None and full == table + (key,):
            return number
    return None
