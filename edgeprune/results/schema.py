"""The shipped JSON schemas (``schemas/*.schema.json``) as the readers' checks: a document read back from disk is
validated whole before anything uses it, and its first problem becomes one line naming the key path and the rule
(``runs[1].latency_ms.p50 must be a number from 0 to 1e+09, not -3.5``), never echoing a hostile string.

Two deliberate departures from a stock Draft 2020-12 validator, neither of which accepts more than it would:
a whole number is a JSON number without a fraction part *as written* (``1.0`` is refused, as ``range(1.0)``
would be), and an array of plain numbers is checked in one pass (a results file holds millions of samples, and
jsonschema takes some 30 µs to descend into each one).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

from ..errors import UsageError
from ..json_fields import json_type

RESULTS_SCHEMA = "results.schema.json"
MANIFEST_SCHEMA = "manifest.schema.json"
SWEEP_SCHEMA = "sweep.schema.json"


@functools.cache
def schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("schemas", name).read_text(encoding="utf-8"))


# The largest duration (ms) or memory figure (MB) a results document holds: board replies are bounded by it too.
MAX_MEASURE = schema(RESULTS_SCHEMA)["$defs"]["milliseconds"]["maximum"]

_TYPE_PHRASES = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
                 "object": "an object", "array": "an array", "null": "null"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keywords whose next schema-path step is a name or an index, and whether that step also enters the instance.
_NAMED = {"properties": True, "patternProperties": True, "prefixItems": True, "allOf": False, "anyOf": False,
          "oneOf": False, "dependentSchemas": False}
# Keywords that apply their subschema to a member or item of the instance.
_ENTERS_INSTANCE = {"items", "additionalProperties", "contains", "unevaluatedItems", "unevaluatedProperties"}


def check_document(document: Any, name: str, origin: str, *, hint: str | None = None) -> None:
    """A UsageError ``{origin}: {key path} {what it must be}`` for the first problem of ``document`` against the
    shipped schema ``name``, found in the schema's order."""
    error = next(iter(_validator(name).iter_errors(document)), None)
    if error is not None:
        raise UsageError(f"{origin}: {_problem(error, schema(name))}", hint=hint)


@functools.cache
def _validator(name: str) -> Any:
    import jsonschema  # a quarter of a second: only commands that read documents pay it

    base = jsonschema.Draft202012Validator
    strict_types = base.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    plain_items = base.VALIDATORS["items"]

    def items(validator: Any, items_schema: Any, instance: Any, parent: dict[str, Any]) -> Any:
        if not _plain_numbers_within(items_schema, instance, parent):
            yield from plain_items(validator, items_schema, instance, parent)

    validator_class = jsonschema.validators.extend(base, {"items": items}, type_checker=strict_types)
    return validator_class(schema(name))


def _plain_numbers_within(items_schema: Any, instance: Any, parent: dict[str, Any]) -> bool:
    """Whether ``instance`` is an array of numbers that ``items_schema``, a bare number range, accepts (False
    means: let the validator look at each item, and say which one)."""
    if (not isinstance(instance, list) or "prefixItems" in parent or not isinstance(items_schema, dict)
            or items_schema.get("type") != "number" or not set(items_schema) <= {"type", "minimum", "maximum"}):
        return False
    if not all(type(item) is float or type(item) is int for item in instance):  # bool is no number here
        return False
    low, high = items_schema.get("minimum", -float("inf")), items_schema.get("maximum", float("inf"))
    return not instance or low <= min(instance) and max(instance) <= high


def _problem(error: Any, root: dict[str, Any]) -> str:
    """One line for a jsonschema ValidationError: the key path, then the rule in words."""
    path = list(error.absolute_path)
    custom = _error_message(error, root)
    if custom is not None:
        message, depth = custom
        return f"{_key_path(path[:depth])} {message}".lstrip()
    rule = error.validator
    value = error.instance
    if rule == "required":
        missing = next(key for key in error.validator_value if key not in value)
        return f"{_key_path([*path, missing])} is missing"
    where = _key_path(path) or "the document"
    if rule == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{where} must be {' or '.join(_TYPE_PHRASES[name] for name in types)}, not {_shown(value)}"
    if rule in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        if low is not None and high is not None:
            return f"{where} must be a number from {low:g} to {high:g}, not {_shown(value)}"
        bound = f"at least {low:g}" if low is not None else f"at most {high:g}"
        return f"{where} must be {bound}, not {_shown(value)}"
    if rule == "enum":
        return f"{where} must be one of {', '.join(sorted(str(choice) for choice in error.validator_value))}"
    if rule == "const":
        return f"{where} must be {json.dumps(error.validator_value)}"
    if rule == "maxItems":
        return f"{where} has {len(value)} items, more than the {error.validator_value} it may have"
    return f"{where} breaks the schema's rule '{rule}'"


def _error_message(error: Any, root: dict[str, Any]) -> tuple[str, int] | None:
    """The ``errorMessage`` of the deepest subschema on the error's schema path that has one, with how many steps
    of the instance path lead to what it describes. A subschema's own ``type`` errors keep the plain phrase, which
    says what the value is instead."""
    node: Any = root
    depth = 0
    found = None
    named_by = None  # the keyword whose member or item the current step names
    steps = list(error.absolute_schema_path)
    for index, step in enumerate(steps):
        if named_by is not None:
            depth += _NAMED[named_by]
            named_by = None
        else:
            while isinstance(node, dict) and step not in node and "$ref" in node:  # the path leaves $ref out
                node = _resolved(root, node["$ref"])
            if isinstance(node, dict) and "errorMessage" in node and not (index == len(steps) - 1 and step == "type"):
                found = (node["errorMessage"], depth)
            if step in _NAMED:
                named_by = step
            elif step in _ENTERS_INSTANCE:
                depth += 1
        node = node[step]
    return found


def _resolved(root: dict[str, Any], reference: str) -> Any:
    """A reference within the schema itself (``#/$defs/run``): the only kind the shipped schemas use."""
    node: Any = root
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _key_path(path: list[Any]) -> str:
    """``runs[1].latency_ms.p50``; a key that is no plain name in brackets, as its repr (no control character)."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _IDENTIFIER.fullmatch(step):
            text += f".{step}" if text else step
        else:
            text += f"[{step if len(step) <= 64 else step[:61] + '...'!r}]"
    return text


def _shown(value: Any) -> str:
    """The offending value for a message: a number as itself, anything else by its JSON type only."""
    if isinstance(value, float):
        return repr(value) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"  # 1.0 is no whole number
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value) if abs(value) < 10**15 else f"{value:g}"
        except OverflowError:
            return "a number beyond float range"
    return json_type(value)
