"""Typed, bounded reading of the fields of a parsed JSON reply that came from outside (a board's runner, a lock
file); edgeprune's own documents are checked against their shipped schemas instead (``results/schema.py``).

``parse_json`` makes sure a document is well-formed; this makes sure each field a consumer uses is there, has
the type it needs and a value in range, before anything uses it. A field that is not is one ``FieldError``
naming its key (``xnnpack.log_warnings[2]``) and what it must be, never echoing the hostile value beyond its type
or a number; the caller adds the file or device it came from and picks the error class.

Text is cleaned on the way in: control characters (ANSI escape sequences included) and bidirectional overrides
are removed, so whatever a consumer prints is one plain line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

from .text import MAX_TEXT, printable

T = TypeVar("T")
_MISSING = object()


class FieldError(ValueError):
    """A field is missing, of the wrong type or out of range; ``str()`` names the key and the rule."""


def json_type(value: Any) -> str:
    """What ``value`` is, for messages: a number as itself, anything else by its JSON type only (a hostile
    string or array is not repeated)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**15 else f"{value:.3g}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bounded(value: float, where: str, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise FieldError(f"{where} must be at least {json_type(low)}, not {json_type(value)}")
    if high is not None and value > high:
        raise FieldError(f"{where} must be at most {json_type(high)}, not {json_type(value)}")


@dataclass(frozen=True)
class Fields:
    """The fields of one JSON object; ``where`` is its key path for messages (empty at the document's top)."""

    value: Mapping[str, Any]
    where: str = ""

    @classmethod
    def of(cls, value: Any, where: str = "") -> Fields:
        if not isinstance(value, dict):
            raise FieldError(f"{where or 'the document'} must be an object, not {json_type(value)}")
        return cls(value, where)

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _typed(self, key: str, kind: str, check: Callable[[Any], bool], null: bool, optional: bool) -> Any:
        """The value if ``check`` accepts it; None for an allowed null or, when ``optional``, an absent key."""
        value = self.value.get(key, _MISSING)
        if value is _MISSING:
            if optional:
                return None
            raise FieldError(f"{self.key(key)} is missing")
        if value is None and null:
            return None
        if not check(value):
            raise FieldError(f"{self.key(key)} must be {kind}{' or null' if null else ''}, not {json_type(value)}")
        return value

    def text(self, key: str, *, null: bool = False, optional: bool = False, limit: int = MAX_TEXT) -> str | None:
        """A string, cleaned to one printable line of at most ``limit`` characters."""
        value = self._typed(key, "a string", lambda v: isinstance(v, str), null, optional)
        return None if value is None else printable(value, limit)

    def integer(self, key: str, *, low: int | None = None, high: int | None = None, null: bool = False,
                optional: bool = False) -> int | None:
        value = self._typed(key, "a whole number", _is_integer, null, optional)
        if value is not None:
            _bounded(value, self.key(key), low, high)
        return value

    def number(self, key: str, *, low: float | None = None, high: float | None = None, null: bool = False,
               optional: bool = False) -> float | None:
        """A finite number (ints stay ints)."""
        value = self._typed(key, "a finite number", _is_number, null, optional)
        if value is not None:
            _bounded(value, self.key(key), low, high)
        return value

    def flag(self, key: str, *, null: bool = False, optional: bool = False) -> bool | None:
        return self._typed(key, "true or false", lambda v: isinstance(v, bool), null, optional)

    def object(self, key: str, *, null: bool = False, optional: bool = False) -> Fields | None:
        value = self._typed(key, "an object", lambda v: isinstance(v, dict), null, optional)
        return None if value is None else Fields(value, self.key(key))

    def array(self, key: str, *, max_items: int, null: bool = False, optional: bool = False) -> list[Any] | None:
        value = self._typed(key, "an array", lambda v: isinstance(v, list), null, optional)
        if value is not None and len(value) > max_items:
            raise FieldError(f"{self.key(key)} has {len(value)} items, more than the {max_items} it may have")
        return value

    def each(self, key: str, read: Callable[[Fields, str], T], *, max_items: int, null: bool = False,
             optional: bool = False) -> list[T] | None:
        """Every item of an array, read by ``read(holder, item_key)``; the holder maps ``key[i]`` to item i."""
        items = self.array(key, max_items=max_items, null=null, optional=optional)
        if items is None:
            return None
        holder = Fields({f"{key}[{index}]": item for index, item in enumerate(items)}, self.where)
        return [read(holder, f"{key}[{index}]") for index in range(len(items))]

    def texts(self, key: str, *, max_items: int, limit: int = MAX_TEXT, null: bool = False,
              optional: bool = False) -> list[str] | None:
        return self.each(key, lambda holder, item: holder.text(item, limit=limit), max_items=max_items, null=null,
                         optional=optional)

    def integers(self, key: str, *, max_items: int, low: int | None = None, high: int | None = None,
                 null: bool = False, optional: bool = False) -> list[int] | None:
        """An array of whole numbers; one pass without a call per item, as it may hold millions (samples)."""
        items = self.array(key, max_items=max_items, null=null, optional=optional)
        if items is None:
            return None
        if not all(type(item) is int for item in items):  # bool is not int here, as in JSON
            index, item = next((i, v) for i, v in enumerate(items) if type(v) is not int)
            raise FieldError(f"{self.key(key)}[{index}] must be a whole number, not {json_type(item)}")

        def outside(value: int) -> bool:
            return (low is not None and value < low) or (high is not None and value > high)

        if items and (outside(min(items)) or outside(max(items))):
            index = next(i for i, v in enumerate(items) if outside(v))
            _bounded(items[index], f"{self.key(key)}[{index}]", low, high)
        return items
