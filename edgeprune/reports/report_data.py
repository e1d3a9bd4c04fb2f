"""What ``edgeprune report`` shows, computed once from a results document: short run labels, the
latency/size/accuracy trade-off with its Pareto front, per-layer sparsity from the export manifests, and the
tables behind the plots. The plots, the HTML and the Markdown all draw from this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import UsageError
from ..results.document import ResultsDocument, RunRecord
from ..results.manifest import read_manifest
from .bench_table import ms, percent, speedup_text
from .table import human_bytes

KB = 1024
Table = tuple[list[str], list[list[Any]]]
Panel = tuple[str, str]  # device, model: what one plot panel shows
PARETO_MEANING = ("Pareto-optimal: no other variant of the model on that device is as fast, as small and as "
                  "accurate, and better on one of them.")


@dataclass(frozen=True)
class TradeoffPoint:
    run: RunRecord
    label: str
    p50_ms: float
    size_kb: float | None
    top1: float | None
    pareto: bool


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    op: str
    weights: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.weights


@dataclass(frozen=True)
class ModelSparsity:
    model: str
    layers: tuple[LayerSparsity, ...]
    problem: str | None = None  # why there are no layers to show

    @property
    def summary(self) -> str:
        zeros = sum(layer.zeros for layer in self.layers)
        weights = sum(layer.weights for layer in self.layers)
        return f"{zeros / weights:.1%} of {weights:,} weights are zero, in {len(self.layers)} layers"


@dataclass(frozen=True)
class ReportData:
    document: ResultsDocument
    source: str
    labels: dict[tuple, str]
    tradeoff: dict[Panel, list[TradeoffPoint]]
    sparsity: list[ModelSparsity]

    @property
    def title(self) -> str:
        return f"edgeprune report: {self.document.label or self.source}"

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(run.device for run in self.document.runs))

    @property
    def panels(self) -> list[Panel]:
        return list(dict.fromkeys(panel_of(run) for run in self.document.runs))

    def label(self, run: RunRecord) -> str:
        return self.labels[run.key]

    def distributions(self, panel: Panel) -> list[tuple[str, list[float]]]:
        """(label, samples) of every run of ``panel`` that has samples, in results order."""
        return [(self.label(run), run.samples_ms) for run in self.document.runs
                if panel_of(run) == panel and run.ok and run.samples_ms]

    def facts(self) -> list[tuple[str, str]]:
        document = self.document
        failed = sum(not run.ok for run in document.runs)
        return [
            ("results", self.source),
            ("label", document.label or "-"),
            ("created", document.created or "-"),
            ("edgeprune", document.edgeprune_version),
            ("devices", ", ".join(self.devices) or "-"),
            ("runs", f"{len(document.runs)} ({failed} failed)" if failed else str(len(document.runs))),
        ]

    def runs_table(self) -> Table:
        document = self.document
        headers = ["device", "model", "variant", "threads", "xnnpack", "p50 ms", "p90 ms", "p99 ms", "n", "size",
                   "speed-up vs fp32 [95% CI]", "top-1", "agree", "peak RSS", "status"]
        rows = []
        for run in document.runs:
            latency, accuracy = run.latency_ms or {}, run.accuracy or {}
            rows.append([run.device, run.model, run.variant, run.threads, "on" if run.xnnpack else "off",
                         ms(latency.get("p50")), ms(latency.get("p90")), ms(latency.get("p99")), latency.get("n"),
                         human_bytes(run.size_bytes), speedup_text(document, run), percent(accuracy.get("top1")),
                         percent(accuracy.get("top1_agreement")),
                         f"{run.peak_rss_mb:.1f} MB" if run.peak_rss_mb is not None else None,
                         "ok" if run.ok else f"FAILED: {run.error}"])
        return headers, rows

    def tradeoff_table(self) -> Table:
        rows = [[device, model, point.label, ms(point.p50_ms), human_bytes(point.run.size_bytes), percent(point.top1),
                 "★" if point.pareto else ""]
                for (device, model), points in self.tradeoff.items() for point in points]
        return ["device", "model", "run", "p50 ms", "size", "top-1", "Pareto"], rows

    def sparse_inference(self) -> list[tuple[str, list[str]]]:
        """Bench's verdicts on XNNPACK sparse inference: a headline and its reasons each."""
        return [(f"{verdict['device']} ({verdict['arch']}), {verdict['model']}: "
                 f"{'applied' if verdict['applied'] else 'not applied'}", list(verdict["reasons"]))
                for verdict in self.document.sparse_inference]

    @staticmethod
    def sparsity_table(model: ModelSparsity) -> Table:
        rows = [[layer.name, layer.op, layer.weights, layer.zeros, f"{layer.sparsity:.1%}"] for layer in model.layers]
        return ["layer", "op", "weights", "zeros", "sparsity"], rows


def collect(document: ResultsDocument, results_path: Path) -> ReportData:
    labels = run_labels(document.runs)
    return ReportData(document, str(results_path), labels, tradeoff_points(document.runs, labels),
                      model_sparsity(document.runs, results_path.parent))


def panel_of(run: RunRecord) -> Panel:
    return run.device, run.model


def run_labels(runs: Sequence[RunRecord]) -> dict[tuple, str]:
    """Labels within a panel (device and model): the variant, with threads and mode only where runs differ."""
    several_threads = len({run.threads for run in runs}) > 1
    any_builtin = any(not run.xnnpack for run in runs)
    labels = {}
    for run in runs:
        parts = [run.variant]
        parts += [f"t{run.threads}"] if several_threads else []
        parts += ["no-xnnpack"] if any_builtin and not run.xnnpack else []
        labels[run.key] = " ".join(parts)
    return labels


def tradeoff_points(runs: Sequence[RunRecord], labels: dict[tuple, str]) -> dict[Panel, list[TradeoffPoint]]:
    """Per device and model, every measured run; Pareto-optimal ones are those no other run of the same model
    on the same device beats on p50, size and top-1 (other models may solve other tasks)."""
    by_panel: dict[Panel, list[RunRecord]] = {}
    for run in runs:
        if run.ok and (run.latency_ms or {}).get("p50") is not None:
            by_panel.setdefault(panel_of(run), []).append(run)
    points = {}
    for panel, measured in by_panel.items():
        sizes = [run.size_bytes / KB if run.size_bytes is not None else None for run in measured]
        top1s = [(run.accuracy or {}).get("top1") for run in measured]
        # An objective some runs lack cannot rank them: leave it out rather than guess.
        objectives = [[run.latency_ms["p50"] for run in measured]]
        objectives += [sizes] if None not in sizes else []
        objectives += [[-value for value in top1s]] if None not in top1s else []
        flags = pareto_flags(list(zip(*objectives)))
        points[panel] = [TradeoffPoint(run, labels[run.key], run.latency_ms["p50"], size, top1, flag)
                          for run, size, top1, flag in zip(measured, sizes, top1s, flags)]
    return points


def pareto_flags(costs: Sequence[Sequence[float]]) -> list[bool]:
    """For each point (all costs minimised): True when no other point is as good on every cost and better on one."""
    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [not any(dominates(other, point) for other in costs) for point in costs]


def model_sparsity(runs: Sequence[RunRecord], results_dir: Path) -> list[ModelSparsity]:
    """Per model, the layers with weights from its export's manifest (the first run that names one)."""
    manifests: dict[str, str | None] = {}
    for run in runs:
        if manifests.get(run.model) is None:
            manifests[run.model] = run.export_manifest
    return [layers_of(model, manifest, results_dir) for model, manifest in manifests.items()]


def layers_of(model: str, manifest: str | None, results_dir: Path) -> ModelSparsity:
    if manifest is None:
        return ModelSparsity(model, (), "benched from a .tflite file, not an export folder: no manifest")
    # Bench records the path as given on its command line: relative to where it ran, often the results' folder.
    candidates = [Path(manifest)] if Path(manifest).is_absolute() else [Path(manifest), results_dir / manifest]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        return ModelSparsity(model, (), f"export manifest {manifest} not found")
    try:
        inspection = read_manifest(found.parent).inspection
    except UsageError as exc:
        return ModelSparsity(model, (), str(exc))
    if not inspection or not inspection.get("layers"):
        return ModelSparsity(model, (), f"{found} has no per-layer inspection")
    layers = tuple(LayerSparsity(layer["name"], layer.get("op") or "?", layer["weights"], layer["zeros"])
                   for layer in inspection["layers"] if layer.get("weights"))
    return ModelSparsity(model, layers, None if layers else f"{found} lists no layer with weights")
