"""The bootstrap that tells a real speed-up or regression from noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
# Resampling all of a long run costs memory (resamples x n); this many samples already pin a median.
BOOTSTRAP_MAX_SAMPLES = 4000


@dataclass(frozen=True)
class RatioEstimate:
    """``median(numerator) / median(denominator)`` with a bootstrap confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float

    def to_json(self) -> dict[str, float]:
        return {"ratio": round(self.ratio, 4), "ci_low": round(self.low, 4), "ci_high": round(self.high, 4),
                "confidence": self.confidence}

    def __str__(self) -> str:
        return f"{self.ratio:.2f}x [{self.low:.2f}, {self.high:.2f}]"


def median_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> RatioEstimate:
    """Percentile bootstrap of the ratio of medians, resampling both sides independently."""
    top = np.asarray(numerator, dtype=np.float64)
    bottom = np.asarray(denominator, dtype=np.float64)
    if top.size == 0 or bottom.size == 0:
        raise ValueError("both sides need samples")
    rng = np.random.default_rng(seed)
    top_medians = resampled_medians(top, resamples, rng)
    bottom_medians = resampled_medians(bottom, resamples, rng)
    ratios = top_medians / bottom_medians
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return RatioEstimate(float(np.median(top) / np.median(bottom)), float(low), float(high), confidence)


def speedup(reference_ms: Sequence[float], candidate_ms: Sequence[float], *,
            confidence: float = 0.95) -> RatioEstimate:
    """How many times as fast the candidate runs as its reference (fp32 for a variant, the dense twin for a sparse
    one): the reference's median latency over the candidate's, with a bootstrap CI; above 1 is faster. Every
    speed-up edgeprune shows, gates on or judges sparse inference by is this one computation."""
    return median_ratio(reference_ms, candidate_ms, confidence=confidence)


def resampled_medians(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    if values.size > BOOTSTRAP_MAX_SAMPLES:
        values = rng.choice(values, BOOTSTRAP_MAX_SAMPLES, replace=False)
    draws = rng.integers(0, values.size, size=(resamples, values.size))
    return np.median(values[draws], axis=1)
