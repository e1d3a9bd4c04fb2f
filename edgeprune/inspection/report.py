"""What ``edgeprune inspect`` reports: per-layer weight statistics, totals and the XNNPACK sparse verdict."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Effect = Literal["ok", "blocks", "note"]


@dataclass(frozen=True)
class StoredConstant:
    """One stored constant a layer reads. ``key`` names its storage (a TFLite buffer, a Keras variable), so a
    constant read by several ops counts once in the totals. ``kernel_zeros`` is set for the main weight tensor
    (kernel, filter), the one pruning thins out, and None for the rest (bias, batch-norm statistics)."""

    key: Hashable
    elements: int
    kernel_zeros: int | None = None

    @property
    def is_kernel(self) -> bool:
        return self.kernel_zeros is not None


@dataclass(frozen=True)
class LayerStats:
    """One Keras layer or TFLite operator.

    ``weights`` and ``zeros`` count the kernel(s); ``params`` counts every constant the layer reads.
    ``dense_macs`` is None for an op that multiplies no weights, and for one whose count is unknown, which
    ``macs_unknown`` then says why (the totals leave it out).
    """

    name: str
    op: str
    weight_shape: tuple[int, ...] | None
    constants: tuple[StoredConstant, ...]
    dense_macs: int | None
    dtype: str | None
    sparse_encoding: str | None = None
    macs_unknown: str | None = None

    @property
    def params(self) -> int:
        return sum(constant.elements for constant in _unique(self.constants))

    @property
    def weights(self) -> int:
        return sum(constant.elements for constant in _unique(self.constants) if constant.is_kernel)

    @property
    def zeros(self) -> int:
        return sum(constant.kernel_zeros or 0 for constant in _unique(self.constants))

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
            "macs_unknown": self.macs_unknown,
            "sparse_encoding": self.sparse_encoding,
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class MacsLeftOut:
    """A layer whose MACs are unknown, so the MAC totals leave it out."""

    name: str
    op: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "reason": self.reason}


@dataclass(frozen=True)
class Totals:
    """Sums over the layers: each stored constant counted once (params, weights, zeros), MACs once per op."""

    params: int
    weights: int
    zeros: int
    dense_macs: int
    effective_macs: int
    model_size_bytes: int
    pruning_wrappers: bool = False
    # Every weight of the still-wrapped model: masks, thresholds and pruning steps included.
    params_with_pruning_wrappers: int | None = None
    # Constants read by more than one op (a bias shared by several convolutions), counted once above.
    shared_constants: int = 0
    macs_left_out: tuple[MacsLeftOut, ...] = ()

    @property
    def sparsity(self) -> float | None:
        return self.zeros / self.weights if self.weights else None

    @classmethod
    def of(
        cls, layers: Sequence[LayerStats], *, model_size_bytes: int, params_with_pruning_wrappers: int | None = None
    ) -> Totals:
        readers = Counter(constant.key for layer in layers for constant in _unique(layer.constants))
        constants = _unique(constant for layer in layers for constant in layer.constants)
        kernels = [constant for constant in constants if constant.is_kernel]
        return cls(
            params=sum(constant.elements for constant in constants),
            weights=sum(kernel.elements for kernel in kernels),
            zeros=sum(kernel.kernel_zeros or 0 for kernel in kernels),
            dense_macs=sum(layer.dense_macs or 0 for layer in layers),
            effective_macs=sum(layer.effective_macs or 0 for layer in layers),
            model_size_bytes=model_size_bytes,
            pruning_wrappers=params_with_pruning_wrappers is not None,
            params_with_pruning_wrappers=params_with_pruning_wrappers,
            shared_constants=sum(1 for count in readers.values() if count > 1),
            macs_left_out=tuple(
                MacsLeftOut(layer.name, layer.op, layer.macs_unknown) for layer in layers if layer.macs_unknown
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "weights": self.weights,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
            "dense_macs": self.dense_macs,
            "effective_macs": self.effective_macs,
            "macs_left_out": [left_out.to_json() for left_out in self.macs_left_out],
            "shared_constants": self.shared_constants,
            "model_size_bytes": self.model_size_bytes,
            "pruning_wrappers": self.pruning_wrappers,
            "params_with_pruning_wrappers": self.params_with_pruning_wrappers,
        }


def _unique(constants: Iterable[StoredConstant]) -> list[StoredConstant]:
    """One entry per stored constant; read as a kernel by one op and as a plain constant by another, it is a kernel."""
    by_key: dict[Hashable, StoredConstant] = {}
    for constant in constants:
        known = by_key.get(constant.key)
        if known is None or (constant.is_kernel and not known.is_kernel):
            by_key[constant.key] = constant
    return list(by_key.values())


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


# Why a layer's MACs are unknown: its spatial size or row count is open, or inspect has no formula for its op.
UNKNOWN_SIZE = "its size depends on an input dimension the model leaves open"
NO_MAC_FORMULA = "no MAC formula in inspect"


def dense_macs(weight_elements: int, positions: Sequence[int | None]) -> int | None:
    """Multiply-accumulates of one inference (batch 1) of an op that uses each weight once per position.

    Positions are the output's spatial positions for a convolution (Conv2D out_h*out_w * (out_c*k_h*k_w*in_c/groups),
    depthwise out_h*out_w * (in_c*mult*k_h*k_w)), the input's for a transposed convolution (each input value
    meets every weight: in_h*in_w * (in_c*k_h*k_w*out_c)), and the rows for a dense layer. None when a position
    count is unknown (a model built for any input size).
    """
    if any(size is None for size in positions):
        return None
    return weight_elements * math.prod(positions)  # type: ignore[arg-type]
