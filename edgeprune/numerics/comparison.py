"""Per-layer figures of a candidate model against a reference on the same inputs, and the first layer where the
candidate parts from it: SNR below 30 dB or cosine similarity below 0.99, the thresholds of LiteRT's accuracy
debugger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..accuracy.metrics import snr_db
from .capture import LayerTensor
from .pairing import TensorPair, pair_layers

MIN_LAYER_SNR_DB = 30.0
MIN_LAYER_COSINE = 0.99


@dataclass(frozen=True)
class LayerComparison:
    op: str
    reference_tensor: str
    candidate_tensor: str
    snr_db: float | None  # None: a tensor with NaN or Inf
    cosine: float | None
    max_abs_error: float | None
    paired_by: str

    @property
    def diverges(self) -> bool:
        return (self.snr_db is None or self.snr_db < MIN_LAYER_SNR_DB
                or self.cosine is None or self.cosine < MIN_LAYER_COSINE)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LayerComparisons:
    layers: list[LayerComparison]
    first_divergent: int | None  # index into layers
    reference_layers: int
    candidate_layers: int

    @property
    def divergent_layer(self) -> LayerComparison | None:
        return self.layers[self.first_divergent] if self.first_divergent is not None else None

    def to_json(self) -> dict[str, Any]:
        return {"layers": [layer.to_json() for layer in self.layers], "first_divergent": self.first_divergent}


def compare_layers(reference: Sequence[LayerTensor], candidate: Sequence[LayerTensor]) -> LayerComparisons:
    layers = [layer_figures(pair) for pair in pair_layers(reference, candidate)]
    first = next((index for index, layer in enumerate(layers) if layer.diverges), None)
    return LayerComparisons(layers, first, len(reference), len(candidate))


def layer_figures(pair: TensorPair) -> LayerComparison:
    reference = pair.reference.values.astype(np.float64).ravel()
    candidate = pair.candidate.values.astype(np.float64).ravel()
    names = dict(op=pair.candidate.op, reference_tensor=pair.reference.tensor,
                 candidate_tensor=pair.candidate.tensor, paired_by=pair.paired_by)
    if reference.shape != candidate.shape or not (np.isfinite(reference).all() and np.isfinite(candidate).all()):
        return LayerComparison(snr_db=None, cosine=None, max_abs_error=None, **names)
    error = candidate - reference
    return LayerComparison(snr_db=round(snr_db(reference, error), 4), cosine=round(cosine(reference, candidate), 6),
                           max_abs_error=float(np.abs(error).max()) if error.size else 0.0, **names)


def cosine(reference: np.ndarray, candidate: np.ndarray) -> float:
    norms = float(np.linalg.norm(reference) * np.linalg.norm(candidate))
    if norms == 0.0:
        return 1.0 if not reference.any() and not candidate.any() else 0.0
    return float(np.dot(reference, candidate) / norms)
