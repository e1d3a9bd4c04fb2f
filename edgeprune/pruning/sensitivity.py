"""Which layers pruning hurts most: each prunable layer pruned alone, one-shot by magnitude, with no fine-tuning,
and the top-1 it then loses on the evaluation data."""

from __future__ import annotations

from typing import Any

import numpy as np

from .layer_choice import dense_reasons, prunable_weights
from .settings import PruneSettings
from .training_data import LabelledData


def layer_sensitivity(model: Any, data: LabelledData, settings: PruneSettings,
                      sparsity: float) -> tuple[float, list[tuple[str, str, float]]]:
    """(the model's top-1, [(layer, kind, top-1 drop in points)] most sensitive first). Each layer's weights are
    restored before the next is tried."""
    baseline = top1(model, data)
    drops = []
    for name, reason in dense_reasons(model, settings).items():
        if reason is not None:
            continue
        layer = model.get_layer(name)
        weights = prunable_weights(layer)
        if not weights:
            continue
        saved = [np.array(weight.numpy()) for weight in weights]
        try:
            for weight, values in zip(weights, saved):
                weight.assign(magnitude_pruned(values, sparsity))
            drops.append((name, type(layer).__name__, (baseline - top1(model, data)) * 100))
        finally:
            for weight, values in zip(weights, saved):
                weight.assign(values)
    return baseline, sorted(drops, key=lambda drop: -drop[2])


def magnitude_pruned(values: np.ndarray, sparsity: float) -> np.ndarray:
    """``values`` with the ``sparsity`` share of smallest magnitudes set to zero (as tfmot's masks pick them)."""
    count = int(round(values.size * sparsity))
    if count == 0:
        return values
    order = np.argsort(np.abs(values), axis=None, kind="stable")
    pruned = values.copy().ravel()
    pruned[order[:count]] = 0
    return pruned.reshape(values.shape)


def top1(model: Any, data: LabelledData) -> float:
    outputs = np.asarray(model.predict(data.x, batch_size=256, verbose=0))
    return float(np.mean(outputs.argmax(axis=-1) == data.labels))
