"""What ``edgeprune prune`` prints: each layer's target and achieved sparsity, and the score before and after."""

from __future__ import annotations

from ..pruning.report import PruneReport, Score
from ..text import percent
from .table import format_table


def render_prune(report: PruneReport) -> str:
    rows = [[layer.name, layer.kind, percent(layer.target_sparsity), percent(layer.achieved_sparsity),
             f"{layer.params_wrapped:,}", f"{layer.params_stripped:,}", layer.reason or ""]
            for layer in report.layers]
    table = format_table(["layer", "kind", "target", "zeros", "params (with masks)", "params (stripped)",
                          "left dense because"], rows)
    return f"{table}\n\n{score_line(report)}\ntraining: {report.loss}, {report.settings.epochs} epochs"


def score_line(report: PruneReport) -> str:
    if report.top1_drop is not None:
        return (f"top-1 on {report.validation}: {score_text(report.before)} before, {score_text(report.after)} after "
                f"({-report.top1_drop:+.1f} points)")
    return f"loss on {report.validation}: {score_text(report.before)} before, {score_text(report.after)} after"


def score_text(score: Score) -> str:
    return f"{score.top1:.1%}" if score.top1 is not None else f"{score.loss:.4g}"
