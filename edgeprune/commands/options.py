"""Option types and option groups several commands share."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..variants import VariantChoice, choose_variants
from ..text import printable

# Upper bounds of the numeric options: beyond them a value is a typo, not a plan (and a timeout past what the
# OS's waits take would fail deep in them).
MAX_COUNT = 1_000_000
MAX_THREADS = 1024
MAX_SECONDS = 7 * 24 * 3600.0


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is an EdgepruneError like every other bad input (one line, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        # The CLI prefixes "edgeprune: error:"; the hint names the command.
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An option type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{printable(text, 40)}' is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def number(low: float, high: float, *, low_excluded: bool = False) -> Callable[[str], float]:
    """An option type: a finite number from ``low`` (or above it, if ``low_excluded``) to ``high``. Python's
    ``float`` takes 'nan', 'inf' and '1e999' (infinite), which no option means."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"'{printable(text, 40)}' is not a finite number")
        if value < low or (low_excluded and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{value:g} must be above {low:g} and at most {high:g}" if low_excluded
                                             else f"{value:g} is not between {low:g} and {high:g}")
        return value

    return parse


# --runtime: the device runner's runtimes, in the order "auto" tries them.
RUNTIME_CHOICES = ("auto", "ai_edge_litert", "tflite_runtime", "tensorflow")

positive_int = whole_number(1, MAX_COUNT)
thread_count = whole_number(1, MAX_THREADS)


def thread_counts(text: str) -> tuple[int, ...]:
    return tuple(dict.fromkeys(thread_count(part) for part in text.split(",") if part.strip()))


def variant_choice(text: str) -> VariantChoice:
    """An option type: export's and bench's ``--variants`` list."""
    try:
        return choose_variants(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--inventory", type=Path, help="inventory file (default: $EDGEPRUNE_INVENTORY or ./edgeprune.toml)")
    command.add_argument("--accept-new-host-key", action="store_true",
                         help="trust and record an unknown SSH host key (like OpenSSH's accept-new); a changed key is still refused")


def add_trust_model_code_option(command: argparse.ArgumentParser) -> None:
    """For every command that loads a Keras model: loading one with a Lambda layer or a custom object runs its
    Python code, so such a model is refused unless the user says they trust it."""
    command.add_argument("--trust-model-code", action="store_true",
                         help="load Keras models that carry Python code (Lambda layers, custom objects): "
                              "loading runs that code, so only for models from a source you trust")


def add_history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", metavar="FOLDER|URL", default=None,
                        help="results history: a folder (FOLDER/history.sqlite), sqlite:///PATH or "
                             "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (default $EDGEPRUNE_HISTORY, else .edgeprune)")
