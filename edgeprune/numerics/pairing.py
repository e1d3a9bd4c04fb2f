"""Which candidate tensor stands for which reference tensor.

By name first: variants of one model converted by one converter keep the names of the ops they share. What is
left is paired by position: walking both graphs in execution order, a candidate tensor pairs with the next
unpaired reference tensor of the same per-sample shape, and the pair is marked uncertain when their ops differ.
Ops a quantized or fp16 variant adds (QUANTIZE, DEQUANTIZE of its inputs, outputs and fp16 weights) have no
counterpart and stay unpaired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .capture import LayerTensor

BY_NAME = "name"
BY_POSITION = "position"
BY_POSITION_UNCERTAIN = "position (uncertain: the ops differ)"
ADDED_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


@dataclass(frozen=True)
class TensorPair:
    reference: LayerTensor
    candidate: LayerTensor
    paired_by: str


def pair_layers(reference: Sequence[LayerTensor], candidate: Sequence[LayerTensor]) -> list[TensorPair]:
    """The pairs in the candidate's execution order."""
    by_name = unique_names(reference)
    candidate_names = unique_names(candidate)
    named = {layer.position: by_name[layer.tensor] for layer in candidate
             if layer.tensor in by_name and layer.tensor in candidate_names
             and by_name[layer.tensor].sample_shape == layer.sample_shape}
    taken = {pair.position for pair in named.values()}
    pairs = []
    cursor = 0  # reference position after the last pair: positions only move forward
    for layer in candidate:
        match = named.get(layer.position)
        paired_by = BY_NAME
        if match is None and layer.op not in ADDED_OPS:
            match = next((ref for ref in reference[cursor:] if ref.position not in taken
                          and ref.sample_shape == layer.sample_shape), None)
            paired_by = BY_POSITION if match is not None and match.op == layer.op else BY_POSITION_UNCERTAIN
        if match is None:
            continue
        taken.add(match.position)
        cursor = max(cursor, match.position + 1)
        pairs.append(TensorPair(match, layer, paired_by))
    return pairs


def unique_names(layers: Sequence[LayerTensor]) -> dict[str, LayerTensor]:
    seen: dict[str, list[LayerTensor]] = {}
    for layer in layers:
        seen.setdefault(layer.tensor, []).append(layer)
    return {name: found[0] for name, found in seen.items() if len(found) == 1}
