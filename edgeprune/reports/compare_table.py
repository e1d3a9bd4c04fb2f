"""What ``edgeprune compare`` prints: each paired layer's figures, how the layers were paired, where they part."""

from __future__ import annotations

from collections import Counter

from ..numerics.comparison import MIN_LAYER_COSINE, MIN_LAYER_SNR_DB, LayerComparisons
from ..text import one_line, shorten
from .table import format_table

TENSOR_WIDTH = 48


def render_compare(comparisons: LayerComparisons, inputs: str) -> str:
    rows = [[index, layer.op, shorten(layer.candidate_tensor, TENSOR_WIDTH), figure(layer.snr_db, ".1f"),
             figure(layer.cosine, ".4f"), figure(layer.max_abs_error, ".3g"), layer.paired_by,
             "<- first divergent" if index == comparisons.first_divergent else ""]
            for index, layer in enumerate(comparisons.layers)]
    table = format_table(["#", "op", "tensor", "SNR dB", "cosine", "max |err|", "paired by", ""], rows)
    ways = Counter(layer.paired_by for layer in comparisons.layers)
    lines = [table, "", f"inputs: {one_line(inputs)}",
             f"paired {len(comparisons.layers)} of the candidate's {comparisons.candidate_layers} op outputs with the "
             f"reference's {comparisons.reference_layers} ("
             + ", ".join(f"{count} by {way}" for way, count in ways.items()) + ")"]
    divergent = comparisons.divergent_layer
    if divergent is None:
        lines.append(f"no layer diverges (SNR >= {MIN_LAYER_SNR_DB:g} dB and cosine >= {MIN_LAYER_COSINE:g} "
                     "at every paired layer)")
    else:
        lines.append(f"first divergent layer: #{comparisons.first_divergent} {divergent.op} "
                     f"'{one_line(shorten(divergent.candidate_tensor, 100))}' (below SNR {MIN_LAYER_SNR_DB:g} dB or "
                     f"cosine {MIN_LAYER_COSINE:g})")
    return "\n".join(lines)


def figure(value: float | None, spec: str) -> str:
    return "NaN/Inf" if value is None else format(value, spec)
