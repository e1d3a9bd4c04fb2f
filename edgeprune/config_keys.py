"""What an error in a TOML configuration (the inventory, a gate policy) says about a key or a value."""

from __future__ import annotations

import difflib
from typing import Iterable

_TOML_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
               dict: "a table"}


def toml_type_name(value: object) -> str:
    """A parsed TOML value's type as the file's author knows it: "a table", not "dict"."""
    return _TOML_TYPES.get(type(value), type(value).__name__)


def unknown_key_hint(key: str, allowed: Iterable[str]) -> str:
    """The allowed key a typo most likely meant, else every allowed key (in the order given)."""
    choices = list(allowed)
    close = difflib.get_close_matches(key, choices, n=1)
    return f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(choices)}"
