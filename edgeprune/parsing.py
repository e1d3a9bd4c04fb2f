"""Parsing JSON and TOML that came from outside (files, a board's reply) without letting it crash the reader.

Python's parsers accept what the formats' specs do not (``NaN`` and ``Infinity`` in JSON) and recurse once per
nesting level (a 100k-deep ``[[[[...`` raises ``RecursionError``, not a parse error). Every reader of a
document goes through here, so each such input is one ``ParseError`` with a short reason; the caller adds the
file or device it came from.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from .errors import UsageError


class ParseError(ValueError):
    """The text is not a well-formed document; ``str()`` is a short reason without the text itself."""


def _reject_constant(name: str) -> Any:
    raise ParseError(f"'{name}' is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise ParseError(f"'{text[:20]}' is not a finite number")
    return value


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` without ``NaN``/``Infinity`` and without a ``RecursionError`` on absurd nesting."""
    if isinstance(text, bytes):
        text = decode_utf8(text)
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError names line and column
        raise ParseError(str(exc)) from None


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads`` without a ``RecursionError`` on absurd nesting."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ParseError("nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(str(exc)) from None


def decode_utf8(data: bytes) -> str:
    """The text of a file that must be UTF-8; a stray byte is a ``ParseError`` naming its offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 text (byte {exc.start})") from None


def read_json_document(path: Path, what: str, *, missing_hint: str) -> Any:
    """The JSON in ``path``; a missing, unreadable or malformed file is one UsageError naming ``what`` and the
    path (``results file 'r.json' does not exist``)."""
    try:
        return parse_json(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"{what} '{path}' does not exist", hint=missing_hint) from exc
    except OSError as exc:
        raise UsageError(f"{what} '{path}' cannot be read ({exc.strerror or type(exc).__name__})") from exc
    except ParseError as exc:
        raise UsageError(f"{what} '{path}' is not valid JSON ({exc})") from None
