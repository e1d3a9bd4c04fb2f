"""The terminal view of an ``InspectionReport``: a layer table, the totals and the XNNPACK verdict."""

from __future__ import annotations

import textwrap

from ..text import human_bytes
from .report import InspectionReport, LayerStats, Totals

NAME_WIDTH = 40
LINE_WIDTH = 110
EFFECT_LABELS = {"ok": "ok", "blocks": "BLOCKS", "note": "note"}
COLUMNS = (
    "layer", "op", "weight shape", "params", "zeros", "sparsity", "dense MACs", "eff. MACs", "encoding", "dtype",
)
RIGHT_ALIGNED = frozenset({"params", "zeros", "sparsity", "dense MACs", "eff. MACs"})
# MACs of a layer whose count is unknown (left out of the totals), as against "-" for one that does none.
UNKNOWN_MACS = "?"
MAX_LISTED_LEFT_OUT = 5


def render_inspection(report: InspectionReport) -> str:
    header = f"{report.path} ({report.format}, {human_bytes(report.totals.model_size_bytes)})"
    blocks = [header, _table(report.layers), _totals(report.totals, len(report.layers)), _verdict(report)]
    return "\n\n".join(blocks) + "\n"


def _table(layers: tuple[LayerStats, ...]) -> str:
    rows = [COLUMNS] + [_cells(layer) for layer in layers]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if COLUMNS[column] in RIGHT_ALIGNED else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cells(layer: LayerStats) -> tuple[str, ...]:
    has_weights = layer.weight_shape is not None
    return (
        _shorten(layer.name),
        layer.op,
        "x".join(str(size) for size in layer.weight_shape) if has_weights else "-",
        f"{layer.params:,}" if layer.params else "-",
        f"{layer.zeros:,}" if has_weights else "-",
        _percent(layer.sparsity),
        UNKNOWN_MACS if layer.macs_unknown else _count(layer.dense_macs),
        UNKNOWN_MACS if layer.macs_unknown else _count(layer.effective_macs),
        layer.sparse_encoding or "-",
        layer.dtype or "-",
    )


def _totals(totals: Totals, layer_count: int) -> str:
    shared = (
        f" ({_plural(totals.shared_constants, 'constant')} read by several ops counted once)"
        if totals.shared_constants
        else ""
    )
    summary = (
        f"totals: {totals.params:,} params in {_plural(layer_count, 'layer')}{shared}; "
        f"{totals.zeros:,} of {totals.weights:,} kernel weights are zero ({_percent(totals.sparsity)}); "
        f"MACs {_count(totals.dense_macs)} dense, {_count(totals.effective_macs)} effective; "
        f"size {human_bytes(totals.model_size_bytes)}"
    )
    lines = [summary]
    if totals.macs_left_out:
        lines.append(textwrap.fill(_left_out(totals), LINE_WIDTH, subsequent_indent="  "))
    if totals.pruning_wrappers:
        lines.append(
            f"still wrapped for pruning: {totals.params_with_pruning_wrappers:,} weights with the masks, thresholds "
            "and pruning steps (the params above are the model's own, as export strips the wrappers)"
        )
    return "\n".join(lines)


def _left_out(totals: Totals) -> str:
    left_out = totals.macs_left_out
    listed = [f"'{layer.name}' ({layer.op}, {layer.reason})" for layer in left_out[:MAX_LISTED_LEFT_OUT]]
    if len(left_out) > MAX_LISTED_LEFT_OUT:
        listed.append(f"{len(left_out) - MAX_LISTED_LEFT_OUT} more (all in --json)")
    return (
        f"the MAC totals leave out {_plural(len(left_out), 'op')} whose MACs are unknown (marked {UNKNOWN_MACS}), "
        f"so they are a lower bound: {'; '.join(listed)}"
    )


def _plural(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _verdict(report: InspectionReport) -> str:
    verdict = report.xnnpack_sparse
    lines = [f"XNNPACK sparse inference: {'eligible' if verdict.eligible else 'not eligible'}"]
    for finding in verdict.findings:
        label = EFFECT_LABELS[finding.effect].ljust(7)
        lines.append(textwrap.fill(finding.text, LINE_WIDTH, initial_indent=f"  {label}", subsequent_indent=" " * 9))
    return "\n".join(lines)


def _shorten(name: str) -> str:
    # The end of a long TFLite tensor name says which layer it is; keep that.
    return name if len(name) <= NAME_WIDTH else "…" + name[-(NAME_WIDTH - 1) :]


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction:.1%}"


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    for limit, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if value >= limit:
            return f"{value / limit:.2f}{suffix}"
    return str(value)
