"""What ``edgeprune inspect`` reports: per-layer weight statistics, totals and the XNNPACK sparse verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Effect = Literal["ok", "blocks", "note"]


@dataclass(frozen=True)
class LayerStats:
    """One Keras layer or TFLite operator.

    ``weights`` and ``zeros`` count the main weight tensor (kernel, filter), the one pruning thins out;
    ``params`` counts every weight of the layer (bias, batch-norm statistics too).
    """

    name: str
    op: str
    weight_shape: tuple[int, ...] | None
    params: int
    weights: int
    zeros: int
    dense_macs: int | None
    dtype: str | None
    sparse_encoding: str | None = None

    @property
    def sparsity(self) -> float | None:
        return self.zeros / self.weights if self.weights else None

    @property
    def effective_macs(self) -> int | None:
        if self.dense_macs is None:
            return None
        # Only multiplications by a non-zero weight are work a sparse kernel still does.
        return round(self.dense_macs * (1 - (self.sparsity or 0.0)))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "weight_shape": list(self.weight_shape) if self.weight_shape is not None else None,
            "params": self.params,
            "weights": self.weights,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
            "dense_macs": self.dense_macs,
            "effective_macs": self.effective_macs,
            "sparse_encoding": self.sparse_encoding,
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class Totals:
    params: int
    weights: int
    zeros: int
    dense_macs: int
    effective_macs: int
    model_size_bytes: int
    pruning_wrappers: bool = False
    # Every weight of the still-wrapped model: masks, thresholds and pruning steps included.
    params_with_pruning_wrappers: int | None = None

    @property
    def sparsity(self) -> float | None:
        return self.zeros / self.weights if self.weights else None

    @classmethod
    def of(
        cls, layers: Sequence[LayerStats], *, model_size_bytes: int, params_with_pruning_wrappers: int | None = None
    ) -> Totals:
        return cls(
            params=sum(layer.params for layer in layers),
            weights=sum(layer.weights for layer in layers),
            zeros=sum(layer.zeros for layer in layers),
            dense_macs=sum(layer.dense_macs or 0 for layer in layers),
            effective_macs=sum(layer.effective_macs or 0 for layer in layers),
            model_size_bytes=model_size_bytes,
            pruning_wrappers=params_with_pruning_wrappers is not None,
            params_with_pruning_wrappers=params_with_pruning_wrappers,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "weights": self.weights,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
            "dense_macs": self.dense_macs,
            "effective_macs": self.effective_macs,
            "model_size_bytes": self.model_size_bytes,
            "pruning_wrappers": self.pruning_wrappers,
            "params_with_pruning_wrappers": self.params_with_pruning_wrappers,
        }


@dataclass(frozen=True)
class Finding:
    """One sentence of the verdict: a check that passed (ok), one that fails (blocks), or context (note)."""

    effect: Effect
    text: str

    def __str__(self) -> str:
        return f"{self.effect}: {self.text}"


@dataclass(frozen=True)
class SparseVerdict:
    findings: tuple[Finding, ...]

    @property
    def eligible(self) -> bool:
        return not any(finding.effect == "blocks" for finding in self.findings)

    @property
    def reasons(self) -> list[str]:
        return [str(finding) for finding in self.findings]

    def to_json(self) -> dict[str, Any]:
        return {"eligible": self.eligible, "reasons": self.reasons}


@dataclass(frozen=True)
class InspectionReport:
    path: Path
    format: str
    layers: tuple[LayerStats, ...]
    totals: Totals
    xnnpack_sparse: SparseVerdict

    def layer(self, name: str) -> LayerStats:
        return next(layer for layer in self.layers if layer.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "layers": [layer.to_json() for layer in self.layers],
            "totals": self.totals.to_json(),
            "xnnpack_sparse": self.xnnpack_sparse.to_json(),
        }


def dense_macs(weight_elements: int, output_shape: Sequence[int | None]) -> int | None:
    """Multiply-accumulates of one inference (batch 1) of a convolution, depthwise convolution or dense layer.

    Each weight is used once per output position: Conv2D out_h*out_w * (out_c*k_h*k_w*in_c/groups),
    depthwise out_h*out_w * (in_c*mult*k_h*k_w), dense (in*out) once per row. None when the spatial size is
    unknown (a model built for any input size).
    """
    positions = output_shape[1:-1]
    if any(size is None for size in positions):
        return None
    return weight_elements * math.prod(positions)  # type: ignore[arg-type]
