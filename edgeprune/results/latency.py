"""A run's latency figures: computed once from its samples, kept as this object until the results are written."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class Latency:
    """Per-invoke latency in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def from_values(cls, values_ms: Sequence[float]) -> "Latency":
        values = np.asarray(values_ms, dtype=np.float64)
        if values.size == 0:
            raise ValueError("no latency samples")
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(
            p50=float(p50), p90=float(p90), p99=float(p99),
            mean=float(values.mean()), std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
            min=float(values.min()), max=float(values.max()), n=int(values.size),
        )

    def to_json(self) -> dict[str, float | int]:
        return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, figures: dict[str, Any]) -> "Latency":
        """From a results document (checked against its schema already)."""
        return cls(**{name: figures[name] for name in ("p50", "p90", "p99", "mean", "std", "min", "max", "n")})
