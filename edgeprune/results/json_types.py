"""Type checks for documents read back from disk: a damaged or crafted file fails on reading, with the key named,
instead of deep inside whatever uses it later."""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import UsageError

_CHECKS = {
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "null": lambda value: value is None,
}


def is_json_type(value: Any, types: str) -> bool:
    """Whether ``value`` is one of ``types``, JSON type names separated by spaces (``"number null"``)."""
    return any(_CHECKS[name](value) for name in types.split())


def check_keys(value: Mapping[str, Any], expected: Mapping[str, str], where: str, *, required: bool = False) -> None:
    """Each key of ``expected`` that ``value`` has (or must have, if ``required``) holds one of its types; a
    UsageError naming the key otherwise."""
    missing = [key for key in expected if key not in value] if required else []
    if missing:
        raise UsageError(f"{where} lacks {', '.join(repr(key) for key in missing)}")
    for key, types in expected.items():
        if key in value and not is_json_type(value[key], types):
            raise UsageError(f"{where}.{key} must be {' or '.join(types.split())}, not {_json_name(value[key])}")


def check_items(values: list[Any], types: str, where: str) -> None:
    for index, item in enumerate(values):
        if not is_json_type(item, types):
            raise UsageError(f"{where}[{index}] must be {' or '.join(types.split())}, not {_json_name(item)}")


def _json_name(value: Any) -> str:
    return next((name for name, check in _CHECKS.items() if check(value)), type(value).__name__)
