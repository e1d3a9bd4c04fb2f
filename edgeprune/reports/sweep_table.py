"""What ``edgeprune sweep`` prints: every point, and the one to ship."""

from __future__ import annotations

from ..results.sweep import SweepDocument
from ..text import human_bytes, percent
from .table import format_table


def render_sweep(document: SweepDocument) -> str:
    rows = [[f"{point.sparsity:g}", percent(point.achieved_sparsity), point.variant, point.device,
             point.threads, "on" if point.xnnpack else "off", human_bytes(point.size_bytes),
             f"{point.p50_ms:.4g}" if point.p50_ms is not None else None,
             percent(point.top1), f"{point.top1_drop:+.2f}" if point.top1_drop is not None else None,
             point.status] for point in document.points]
    table = format_table(["sparsity", "zeros", "variant", "device", "thr", "xnnpack", "size", "p50 ms", "top-1",
                          "drop (pts)", "status"], rows)
    lines = [table]
    if document.sensitivity:
        ranked = ", ".join(f"{layer.layer} {layer.top1_drop:+.2f}" for layer in document.sensitivity.layers[:8])
        lines.append(f"\nsensitivity at sparsity {document.sensitivity.sparsity:g} (top-1 points lost, layer pruned "
                     f"alone): {ranked or 'no prunable layer'}")
        if document.sensitivity.suggested_skip:
            lines.append(f"suggested --skip-layers: {'|'.join(document.sensitivity.suggested_skip)}")
    reused = sum(step.reused for step in document.steps)
    if reused:
        lines.append(f"\nreused {reused} of {len(document.steps)} steps finished by an earlier run with the same "
                     "inputs and settings")
    recommendation = document.recommendation
    lines.append(f"\nrecommendation: {recommendation.reason}" if recommendation.point else
                 f"\nno recommendation: {recommendation.reason}")
    return "\n".join(lines)
