"""What a bench does on each device: how many timed invokes, in how many rounds, with which threads, XNNPACK modes
and runtime, and how long it may wait."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..board.runner import BenchSettings
from ..devices.base import DEFAULT_LOCK_TIMEOUT_S, Device


@dataclass(frozen=True)
class BenchPlan:
    runs: int = 100
    warmup: int = 10
    min_seconds: float = 0.0
    rounds: int = 3
    threads: tuple[int, ...] = ()  # empty: the device's own 'threads' setting, else 1
    xnnpack_modes: tuple[bool, ...] = (True,)
    runtime: str = "auto"
    timeout_s: float = 600.0
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S

    def __post_init__(self) -> None:
        # ``runs`` is the total: fewer runs than rounds fill only that many rounds (each needs a timed invoke).
        object.__setattr__(self, "rounds", min(self.rounds, self.runs))

    def round_settings(self, round_index: int, threads: int, xnnpack: bool) -> BenchSettings:
        """Each round takes its share of the runs (N in total: 10 in 3 rounds are 4 + 3 + 3) and of the minimum
        duration."""
        share, remainder = divmod(self.runs, self.rounds)
        return BenchSettings(
            threads=threads,
            warmup=self.warmup,
            runs=share + (1 if round_index < remainder else 0),
            min_seconds=self.min_seconds / self.rounds,
            xnnpack=xnnpack,
            runtime=self.runtime,
            timeout_s=self.timeout_s,
        )

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "warmup": self.warmup, "min_seconds": self.min_seconds, "rounds": self.rounds,
                "threads": list(self.threads), "xnnpack": list(self.xnnpack_modes), "runtime": self.runtime}

    def thread_counts(self, device: Device) -> tuple[int, ...]:
        """The thread counts measured on ``device``: the plan's, else the device's own setting, else 1."""
        return self.threads or (device.threads or 1,)
