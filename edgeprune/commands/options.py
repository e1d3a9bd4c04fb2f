"""Option types and option groups several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is an EdgepruneError like every other bad input (one line, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def thread_counts(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(",") if part.strip())


def add_device_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--inventory", type=Path, help="inventory file (default: $EDGEPRUNE_INVENTORY or ./edgeprune.toml)")
    command.add_argument("--accept-new-host-key", action="store_true",
                         help="trust and record an unknown SSH host key (like OpenSSH's accept-new); a changed key is still refused")
