"""The table ``edgeprune bench`` prints: latency percentiles, size, speed-up over fp32, accuracy."""

from __future__ import annotations

from ..bench.stats import speedup
from ..results.accuracy_figures import AccuracyFigures
from ..results.document import ResultsDocument, RunRecord
from ..results.latency import Latency
from ..text import human_bytes, one_line, percent
from ..variants import REFERENCE_VARIANT
from .device_label import device_labeller
from .runtime_notes import bench_notes
from .table import format_table


def speedup_text(document: ResultsDocument, run: RunRecord) -> str | None:
    """Speed-up of ``run`` over the fp32 variant of the same model, device, threads and mode, with a 95% CI."""
    if not run.ok or run.variant == REFERENCE_VARIANT:
        return None
    reference = document.find(run.device, run.model, REFERENCE_VARIANT, run.threads, run.xnnpack)
    if reference is None or not reference.ok or not reference.samples_ms or not run.samples_ms:
        return None
    return str(speedup(reference.samples_ms, run.samples_ms))


def render_bench(document: ResultsDocument) -> str:
    has_accuracy = any(run.accuracy for run in document.runs)
    headers = ["device", "model", "variant", "thr", "xnnpack", "p50 ms", "p90 ms", "p99 ms", "size",
               "speed-up vs fp32 [95% CI]"]
    headers += ["top-1", "agree"] if has_accuracy else []
    headers += ["status"]
    rows = []
    device_label = device_labeller(document.runs)
    for run in runs_in_device_order(document):
        latency = run.latency_ms
        row = [device_label(run), run.model, run.variant, run.threads, "on" if run.xnnpack else "off",
               *percentiles_ms(latency), human_bytes(run.size_bytes),
               speedup_text(document, run)]
        if has_accuracy:
            accuracy = run.accuracy or AccuracyFigures()
            row += [percent(accuracy.top1), percent(accuracy.top1_agreement)]
        row.append("ok" if run.ok else "FAILED")
        rows.append(row)
    lines = [format_table(headers, rows)]
    lines.extend(f"\nNote: {one_line(note)}" for note in bench_notes(runs_in_device_order(document)))
    for verdict in document.sparse_inference:
        lines.append(f"\n{one_line('XNNPACK sparse inference on ' + sparse_headline(verdict))}")
        lines.extend(f"  - {one_line(reason)}" for reason in verdict["reasons"])
    return "\n".join(lines)


def sparse_headline(verdict: dict) -> str:
    """``pi4 (aarch64), mobilenet, fp16-sparse vs fp16, 1 thread: applied``; files before per-variant verdicts
    judged fp32-sparse only."""
    threads = verdict.get("threads")
    pair = f"{verdict.get('variant', 'fp32-sparse')} vs {verdict.get('dense_variant', REFERENCE_VARIANT)}"
    return (f"{verdict['device']} ({verdict['arch']}), {verdict['model']}, {pair}"
            f"{f', {threads} thread' + ('s' if threads != 1 else '') if threads else ''}: "
            f"{'applied' if verdict['applied'] else 'not applied'}")


def runs_in_device_order(document: ResultsDocument) -> list[RunRecord]:
    """Devices finish in any order; show them in the order the user named them."""
    order = {name: index for index, name in enumerate(document.settings.get("devices", []))}
    return sorted(document.runs, key=lambda run: order.get(run.device, len(order)))


def percentiles_ms(latency: Latency | None) -> list[str | None]:
    """p50, p90 and p99 as table cells; blanks for a run without latency."""
    return [ms(latency.p50), ms(latency.p90), ms(latency.p99)] if latency else [None, None, None]


def ms(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:.4g}" if value < 1000 else f"{value:.0f}"


