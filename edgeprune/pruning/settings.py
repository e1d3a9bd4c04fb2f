"""What ``prune`` is asked to do, checked before TensorFlow loads: the settings a sweep keys its steps on."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UsageError

SCHEDULES = ("polynomial", "constant")
POLICIES = ("xnnpack",)
DEFAULT_SPARSITY = 0.8
DEFAULT_EPOCHS = 4
DEFAULT_BATCH_SIZE = 32
DEFAULT_VALIDATION_SHARE = 0.1


@dataclass(frozen=True)
class PruneSettings:
    sparsity: float = DEFAULT_SPARSITY
    schedule: str = "polynomial"
    initial_sparsity: float | None = None  # polynomial only; None: half the final sparsity
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    skip_layers: str | None = None  # regular expression over layer names, matched in full
    policy: str | None = None
    m_by_n: tuple[int, int] | None = None
    loss: str | None = None  # None: the model's compiled loss, else one that fits y
    learning_rate: float | None = None  # None: the compiled optimizer's, else Adam's default

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity < 1.0:
            raise UsageError(f"sparsity {self.sparsity:g} is outside (0, 1)", hint="e.g. --sparsity 0.8")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"unknown schedule '{self.schedule}'", hint=f"one of {', '.join(SCHEDULES)}")
        if self.initial_sparsity is not None:
            if self.schedule != "polynomial":
                raise UsageError("--initial-sparsity applies to the polynomial schedule only",
                                 hint="drop it, or use --schedule polynomial")
            if not 0.0 <= self.initial_sparsity <= self.sparsity:
                raise UsageError(f"initial sparsity {self.initial_sparsity:g} must lie in [0, {self.sparsity:g}]")
        if self.policy is not None and self.policy not in POLICIES:
            raise UsageError(f"unknown pruning policy '{self.policy}'", hint=f"one of {', '.join(POLICIES)}")
        if self.m_by_n is not None:
            zeros, group = self.m_by_n
            if not 0 < zeros < group:
                raise UsageError(f"--m-by-n {zeros}:{group}: M must be at least 1 and below N", hint="e.g. 2:4")
            if self.initial_sparsity is not None:
                raise UsageError("--initial-sparsity does not apply with --m-by-n (M of every N from the start)",
                                 hint="drop one of them")
        if self.skip_layers is not None:
            try:
                re.compile(self.skip_layers)
            except re.error as exc:
                raise UsageError(f"--skip-layers '{self.skip_layers}' is not a regular expression: {exc}") from None

    @property
    def start_sparsity(self) -> float:
        """Where the polynomial schedule starts (the constant one holds ``sparsity`` from the first step)."""
        if self.schedule == "constant":
            return self.sparsity
        return self.sparsity / 2 if self.initial_sparsity is None else self.initial_sparsity

    @property
    def target_sparsity(self) -> float:
        """The share of zeros each pruned kernel ends with: M of every N under ``m_by_n``."""
        return self.m_by_n[0] / self.m_by_n[1] if self.m_by_n else self.sparsity

    def skips(self, layer_name: str) -> bool:
        return self.skip_layers is not None and re.fullmatch(self.skip_layers, layer_name) is not None

    def with_sparsity(self, sparsity: float) -> "PruneSettings":
        return PruneSettings(**{**asdict(self), "sparsity": sparsity})

    def to_json(self) -> dict[str, Any]:
        settings = asdict(self)
        settings["sparsity"] = self.target_sparsity
        settings["m_by_n"] = f"{self.m_by_n[0]}:{self.m_by_n[1]}" if self.m_by_n else None
        return settings


def parse_m_by_n(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,3}):(\d{1,3})", text.strip())
    if not match:
        raise ValueError(f"'{text}' is not M:N, e.g. 2:4")
    return int(match.group(1)), int(match.group(2))
