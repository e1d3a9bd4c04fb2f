"""The gate policy: budgets in a TOML file, per device and per variant, with defaults (see docs/gate.md).

Example::

    [defaults]                          # every run
    max_p50_ms = 5.0
    [variants.int8]                     # every run of the int8 variant
    max_size_kb = 200
    [devices.pi4]                       # every run on pi4
    max_p90_ms = 40
    [devices.pi4.variants.fp32-sparse]  # fp32-sparse on pi4
    min_speedup_vs_fp32 = 1.3

For each run and budget key the most specific table that sets the key wins:
devices.D.variants.V > devices.D > variants.V > defaults.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from ..variants import REFERENCE_VARIANT
from ..config_keys import toml_type_name, unknown_key_hint
from ..errors import ConfigError, UsageError
from ..parsing import ParseError, decode_utf8, parse_toml
from ..text import one_line
from ..results.document import RunRecord
from ..toml_lines import TablePath, line_of


@dataclass(frozen=True)
class BudgetKind:
    """One budget key: which way it bounds, how its values read, and what it compares against."""

    key: str
    bound: Literal["max", "min"]
    unit: str
    scale: float = 1.0  # policy value x scale = the number shown (fractions of 1 shown as percent)
    signed: bool = False
    fraction: bool = False  # a share of 1 (accuracy): budgets must lie in [0, 1]
    positive: bool = False  # zero would be a budget that can only fail (or, for a speed-up, only pass): a typo
    reference: Literal["fp32", "baseline"] | None = None

    def allows(self, measured: float, limit: float) -> bool:
        return measured <= limit if self.bound == "max" else measured >= limit

    def format(self, value: float) -> str:
        return f"{readable(value * self.scale, signed=self.signed)}{self.unit}"

    def format_limit(self, limit: float) -> str:
        return f"{'<=' if self.bound == 'max' else '>='} {self.format(limit)}"

    def problem_with(self, value: Any) -> str | None:
        """Why ``value`` cannot be a budget of this kind, or None when it can."""
        # bool is an int subclass in Python, but `max_p50_ms = true` is a mistake, not 1 ms.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"must be a number, not {toml_type_name(value)}"
        if self.fraction and not 0 <= value <= 1:
            return f"must be a fraction between 0 and 1 (0.9 = 90%), not {value}"
        if value < 0 or (value == 0 and self.positive):
            return f"must be {'greater than' if self.positive else 'at least'} 0, not {value}"
        return None


BUDGET_KINDS: dict[str, BudgetKind] = {
    kind.key: kind
    for kind in (
        BudgetKind("max_size_kb", "max", " KB", positive=True),
        BudgetKind("max_p50_ms", "max", " ms", positive=True),
        BudgetKind("max_p90_ms", "max", " ms", positive=True),
        BudgetKind("max_peak_rss_mb", "max", " MB", positive=True),
        BudgetKind("min_top1", "min", "%", scale=100, fraction=True),
        BudgetKind("max_top1_drop", "max", " pp", scale=100, fraction=True, reference="fp32"),
        BudgetKind("max_top1_drop_vs_baseline", "max", " pp", scale=100, fraction=True, reference="baseline"),
        BudgetKind("min_speedup_vs_fp32", "min", "x", positive=True, reference="fp32"),
        BudgetKind("max_regression_pct", "max", "%", signed=True, reference="baseline"),
    )
}
TOP_LEVEL_KEYS = ("defaults", "variants", "devices")
VARIANTS_KEY = "variants"


@dataclass(frozen=True)
class Rule:
    """One table of the policy: the budgets it sets and the runs it selects (None selects every one)."""

    table: TablePath
    device: str | None
    variant: str | None
    budgets: Mapping[str, float]
    line: int | None

    @property
    def name(self) -> str:
        return f"[{dotted(self.table)}]"

    @property
    def specificity(self) -> int:
        return (2 if self.device is not None else 0) + (1 if self.variant is not None else 0)

    def applies_to(self, run: RunRecord) -> bool:
        return self.device in (None, run.device) and self.variant in (None, run.variant)


@dataclass(frozen=True)
class Policy:
    path: Path
    rules: tuple[Rule, ...]

    def where(self, rule: Rule) -> str:
        """``policy.toml:7: [variants.int8]``, to start a message about a rule."""
        return f"{self.path}{f':{rule.line}' if rule.line else ''}: {rule.name}"

    def budget_keys(self) -> set[str]:
        return {key for rule in self.rules for key in rule.budgets}


def read_policy(path: Path) -> Policy:
    try:
        text = decode_utf8(Path(path).read_bytes())
    except FileNotFoundError:
        raise UsageError(f"policy file '{path}' does not exist", hint="see docs/gate.md for the format") from None
    except OSError as exc:
        raise ConfigError(f"policy file '{path}' cannot be read: {exc}") from exc
    except ParseError as exc:
        raise ConfigError(f"policy file '{path}' is {exc}", hint="save it as UTF-8") from None
    return parse_policy(text, Path(path))


def parse_policy(text: str, path: Path) -> Policy:
    try:
        document = parse_toml(text)
    except ParseError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    parser = _PolicyParser(path, text)
    rules: list[Rule] = []
    for key, value in document.items():
        if key == "defaults":
            rules.append(parser.rule(("defaults",), value, device=None, variant=None))
        elif key == "variants":
            rules += parser.variant_rules(("variants",), value, device=None)
        elif key == "devices":
            for device, table in parser.tables_in(("devices",), value).items():
                rules += parser.device_rules(device, table)
        else:
            raise parser.error((), key, f"unknown top-level key '{key}'", choices=TOP_LEVEL_KEYS)
    if not any(rule.budgets for rule in rules):
        raise ConfigError(f"{path}: sets no budgets", hint="a gate that checks nothing would always pass; "
                                                           "see docs/gate.md for the keys")
    return Policy(path, tuple(rules))


@dataclass(frozen=True)
class _PolicyParser:
    """Turns the parsed TOML into rules; every error names the file, line, table and key."""

    path: Path
    text: str

    def error(self, table: TablePath, key: str | None, problem: str,
              choices: tuple[str, ...] | None = None) -> ConfigError:
        # A key may be a `key = value` line or a `[table.key]` header of its own.
        line = line_of(self.text, table, key) or (line_of(self.text, table + (key,)) if key else None)
        where = f"{self.path}{f':{line}' if line else ''}:{f' [{dotted(table)}]' if table else ''}"
        hint = None
        if choices is not None and key is not None:
            hint = unknown_key_hint(key, choices)
        # Table and key names are the file's: one_line keeps a crafted one from splitting the message.
        return ConfigError(one_line(f"{where} {problem}"), hint=hint)

    def tables_in(self, table: TablePath, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(table[:-1], table[-1],
                             f"'{table[-1]}' must be a table of tables, not {toml_type_name(value)}")
        return value

    def device_rules(self, device: str, table: Any) -> list[Rule]:
        path = ("devices", device)
        if not isinstance(table, dict):
            raise self.error(("devices",), device, f"'{device}' must be a table, not {toml_type_name(table)}")
        budgets = {key: value for key, value in table.items() if key != VARIANTS_KEY}
        rules = [self.rule(path, budgets, device=device, variant=None, extra_keys=(VARIANTS_KEY,))]
        if VARIANTS_KEY in table:
            rules += self.variant_rules(path + (VARIANTS_KEY,), table[VARIANTS_KEY], device=device)
        return rules

    def variant_rules(self, table: TablePath, value: Any, device: str | None) -> list[Rule]:
        return [self.rule(table + (variant,), budgets, device=device, variant=variant)
                for variant, budgets in self.tables_in(table, value).items()]

    def rule(self, table: TablePath, value: Any, *, device: str | None, variant: str | None,
             extra_keys: tuple[str, ...] = ()) -> Rule:
        if not isinstance(value, dict):
            raise self.error(table[:-1], table[-1], f"'{table[-1]}' must be a table, not {toml_type_name(value)}")
        for key, budget in value.items():
            kind = BUDGET_KINDS.get(key)
            if kind is None:
                raise self.error(table, key, f"unknown key '{key}'", choices=tuple(BUDGET_KINDS) + extra_keys)
            if problem := kind.problem_with(budget):
                raise self.error(table, key, f"'{key}' {problem}")
            if kind.reference == "fp32" and variant == REFERENCE_VARIANT:
                raise self.error(table, key, f"'{key}' compares a variant with {REFERENCE_VARIANT}, so it cannot "
                                             f"apply to {REFERENCE_VARIANT} itself")
        return Rule(table, device, variant, {key: float(budget) for key, budget in value.items()},
                    line_of(self.text, table))


def readable(value: float, *, signed: bool = False) -> str:
    """Digits that matter at the value's size: 1234.5, 23.92, 4, 0.00651 (never 1.234e+03)."""
    sign = "+" if signed else ""
    if abs(value) >= 1:
        decimals = 1 if abs(value) >= 100 else 2
        return f"{value:{sign}.{decimals}f}".rstrip("0").rstrip(".")
    return f"{value:{sign}.3g}"


def dotted(table: TablePath) -> str:
    """A table path as TOML writes it: bare keys as they are, others quoted (TOML's escapes are JSON's), and what
    neither escapes (a bidirectional override ...) shown as an escape too: the names are the file's."""
    return ".".join(part if part and all(c.isascii() and (c.isalnum() or c in "_-") for c in part)
                    else one_line(json.dumps(part, ensure_ascii=False)) for part in table)
