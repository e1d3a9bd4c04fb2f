"""How far a variant's outputs are from the reference's, and how often it is right."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Bit-identical outputs have infinite SNR; JSON has no infinity, so it is reported as this ceiling.
SNR_CEILING_DB = 200.0


@dataclass(frozen=True)
class OutputComparison:
    n: int
    finite: bool
    top1: float | None
    top1_agreement: float | None
    max_abs_error: float | None
    mean_abs_error: float | None
    snr_db: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_outputs(outputs: np.ndarray, reference: np.ndarray | None, labels: np.ndarray | None = None) -> OutputComparison:
    """Figures of ``outputs`` against ``reference`` outputs (label-free) and against ``labels`` (top-1)."""
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    finite = bool(np.isfinite(outputs).all())
    top1 = None
    if labels is not None and finite and outputs.shape[1] > 1:
        top1 = float(np.mean(outputs.argmax(axis=1) == labels))
    if reference is None or not finite:
        return OutputComparison(len(outputs), finite, top1, None, None, None, None)
    reference = np.asarray(reference, dtype=np.float64).reshape(outputs.shape)
    error = outputs - reference
    agreement = float(np.mean(outputs.argmax(axis=1) == reference.argmax(axis=1))) if outputs.shape[1] > 1 else None
    return OutputComparison(
        n=len(outputs),
        finite=True,
        top1=top1,
        top1_agreement=agreement,
        max_abs_error=float(np.abs(error).max()),
        mean_abs_error=float(np.abs(error).mean()),
        snr_db=snr_db(reference, error),
    )


def snr_db(reference: np.ndarray, error: np.ndarray) -> float:
    noise = float(np.sum(error**2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return SNR_CEILING_DB
    if signal == 0.0:
        return -SNR_CEILING_DB
    return float(min(SNR_CEILING_DB, 10.0 * np.log10(signal / noise)))
