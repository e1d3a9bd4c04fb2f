"""Plain-text tables for the terminal: aligned columns, numbers right-aligned, no colour codes in pipes."""

from __future__ import annotations

from typing import Sequence

from .text import one_line


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


def human_bytes(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return None
