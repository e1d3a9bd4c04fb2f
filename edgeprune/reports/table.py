"""Plain-text tables for the terminal: aligned columns, numbers right-aligned, no colour codes in pipes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..text import one_line


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[one_line(h) for h in headers]] + [["-" if value is None else one_line(value) for value in row]
                                                for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width) for value, width, right in zip(row, widths, numeric)
        ).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(row) for row in cells[1:]])


def is_number(text: str) -> bool:
    stripped = text.rstrip("x%").replace(",", "").lstrip("+-")
    return text == "-" or stripped.replace(".", "", 1).isdigit()


@dataclass(frozen=True)
class LongText:
    """A table cell's text too long for the cell (a rejection's reason): tables show it shortened to ``width``
    characters, the HTML report the whole of it on demand."""

    text: str
    width: int

    @property
    def full(self) -> str:
        return one_line(self.text)

    @property
    def short(self) -> str:
        """At most ``width`` characters, cut at a space where one is near the end."""
        if len(self.full) <= self.width:
            return self.full
        head = self.full[: self.width - 3]
        space = head.rfind(" ")
        if space > self.width * 0.7:
            head = head[:space]
        return head.rstrip(" ,;:") + "..."

    @property
    def shortened(self) -> bool:
        return self.short != self.full

    def __str__(self) -> str:
        return self.short
