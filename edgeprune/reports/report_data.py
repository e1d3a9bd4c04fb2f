"""What ``edgeprune report`` shows, computed once from a results document: short run labels, the
latency/size/accuracy trade-off with its Pareto front, per-layer sparsity, per-layer SNR against fp32 and the rejected
variants from the export manifests, and the tables behind the plots. The plots, the HTML and the Markdown all draw
from this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..numerics.comparison import MIN_LAYER_COSINE, MIN_LAYER_SNR_DB
from ..results.accuracy_figures import AccuracyFigures
from ..results.document import ResultsDocument, RunRecord
from ..results.manifest import MANIFEST_FILENAME
from ..results.sweep import SWEEP_FILENAME, read_sweep
from ..text import human_bytes, percent, printable, shorten
from ..variants import REFERENCE_VARIANT
from .bench_table import ms, percentiles_ms, sparse_headline, speedup_text
from .device_label import device_labeller
from .exports import ModelExport, model_exports, rejected_variants
from .sweep_view import SweepView
from .table import LongText

KB = 1024
Table = tuple[list[str], list[list[Any]]]
Panel = tuple[str, str]  # device, model: what one plot panel shows
# A rejection's reason in a table cell; the HTML report shows the whole of it on demand.
REASON_CHARS = 100
NOT_SHIPPED_MEANING = ("Variants the export ran before shipping and rejected: they have no deliverable file, so no "
                       "run measured them. Each export keeps their files in its rejected/ folder for bug reports.")
ALL_SHIPPED = "Every variant the exports made passed validation."
PARETO_MEANING = ("Pareto-optimal: no other variant of the model on that device is as fast, as small and as "
                  "accurate, and better on one of them.")
LAYER_SNR_MEANING = (f"Each variant's op outputs against the fp32 variant's on the export's validation inputs, builtin "
                     f"kernels, in execution order; below the dashed line ({MIN_LAYER_SNR_DB:g} dB) a layer diverges. "
                     f"A ring marks each variant's first divergent layer (SNR below {MIN_LAYER_SNR_DB:g} dB or cosine "
                     f"below {MIN_LAYER_COSINE:g}); a triangle at the bottom, an output with NaN or Inf.")
TENSOR_CHARS = 500  # as the manifest keeps the inspection's layer names
SHORT_NAME_CHARS = 24
TENSOR_CELL_CHARS = 40  # an op output name in a table cell; the HTML report shows the whole of it on demand


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
class LayerSNR:
    """One op output of a variant against the fp32 variant's (``numerics.comparison``), its names cleaned."""
    op: str
    tensor: str  # the fp32 variant's op output name
    snr_db: float | None  # None: NaN or Inf in an output
    cosine: float | None

    @property
    def short_name(self) -> str:
        """The Keras layer of the op output: ``model/block1_dw_relu/Relu6;...`` is ``block1_dw_relu``."""
        parts = self.tensor.split(";")[0].split("/")
        name = parts[-2] if len(parts) >= 2 and parts[-2] else parts[-1]
        return shorten(name or self.op, SHORT_NAME_CHARS)


@dataclass(frozen=True)
class VariantLayerSNR:
    variant: str
    layers: tuple[LayerSNR, ...]
    first_divergent: int | None  # index into layers
    valid: bool
    float_layers: int  # how many layers the variant keeps in float

    @property
    def divergent_layer(self) -> LayerSNR | None:
        return None if self.first_divergent is None else self.layers[self.first_divergent]


@dataclass(frozen=True)
class ModelLayerSNR:
    model: str
    variants: tuple[VariantLayerSNR, ...]  # at least one
    left_out: tuple[str, ...] = ()  # variants other than fp32 with no layers in the manifest

    @property
    def layer_count(self) -> int:
        return max(len(variant.layers) for variant in self.variants)


@dataclass(frozen=True)
class ReportData:
    document: ResultsDocument
    source: str
    labels: dict[tuple, str]
    tradeoff: dict[Panel, list[TradeoffPoint]]
    sparsity: list[ModelSparsity]
    exports: list[ModelExport]
    sweep: SweepView | None = None  # when the results are a sweep's, with its sweep.json beside them
    layer_snr: list[ModelLayerSNR] = field(default_factory=list)  # only models with a variant with layers

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

    def runs_table(self, *, errors_in_status: bool = True) -> Table:
        """Every run; a failed one's error in its status, or (``errors_in_status`` False) left for the renderer to
        show elsewhere."""
        document = self.document
        headers = ["device", "model", "variant", "threads", "xnnpack", "p50 ms", "p90 ms", "p99 ms", "n", "size",
                   "speed-up vs fp32 [95% CI]", "top-1", "agree", "peak RSS", "status"]
        rows = []
        device_label = device_labeller(document.runs)
        for run in document.runs:
            accuracy = run.accuracy or AccuracyFigures()
            rows.append([device_label(run), run.model, run.variant, run.threads, "on" if run.xnnpack else "off",
                         *percentiles_ms(run.latency_ms), run.latency_ms.n if run.latency_ms else None,
                         human_bytes(run.size_bytes), speedup_text(document, run), percent(accuracy.top1),
                         percent(accuracy.top1_agreement),
                         f"{run.peak_rss_mb:.1f} MB" if run.peak_rss_mb is not None else None,
                         "ok" if run.ok else (f"FAILED: {run.error}" if errors_in_status else "FAILED")])
        return headers, rows

    def tradeoff_table(self) -> Table:
        rows = [[device, model, point.label, ms(point.p50_ms), human_bytes(point.run.size_bytes), percent(point.top1),
                 "★" if point.pareto else ""]
                for (device, model), points in self.tradeoff.items() for point in points]
        return ["device", "model", "run", "p50 ms", "size", "top-1", "Pareto"], rows

    def not_shipped_table(self) -> Table:
        """The variants the exports rejected, with their reasons."""
        rows = [[rejected.model, rejected.variant, LongText(rejected.reason, REASON_CHARS)]
                for rejected in rejected_variants(self.exports)]
        return ["model", "variant", "reason"], rows

    def not_shipped_notes(self) -> list[str]:
        """What to say beside the not-shipped table: that nothing was rejected, when so; and for each exported model
        whose manifest could not be read, that its rejected variants are not known, and why (a loose .tflite had no
        export to reject anything)."""
        exported = [export for export in self.exports if export.exported]
        unread = [f"Which variants of {export.model} the export rejected is not known: {export.problem}"
                  for export in exported if export.manifest is None]
        some_read = len(unread) < len(exported)
        return ([ALL_SHIPPED] if some_read and not rejected_variants(self.exports) else []) + unread

    def sparse_inference(self) -> list[tuple[str, list[str]]]:
        """Bench's verdicts on XNNPACK sparse inference: a headline and its reasons each."""
        return [(sparse_headline(verdict), list(verdict["reasons"]))
                for verdict in self.document.sparse_inference]

    @staticmethod
    def layer_snr_table(model: ModelLayerSNR) -> Table:
        """Per variant, its first divergent layer and its lowest SNR."""
        rows = []
        for variant in model.variants:
            first = variant.divergent_layer
            finite = [layer.snr_db for layer in variant.layers if layer.snr_db is not None]
            rows.append([variant.variant, "yes" if variant.valid else "no (rejected)", len(variant.layers),
                         "none" if first is None else f"#{variant.first_divergent} {first.short_name}",
                         None if first is None else first.op,
                         None if first is None else LongText(first.tensor, TENSOR_CELL_CHARS),
                         None if first is None else snr_text(first.snr_db),
                         snr_text(min(finite)) if finite else "NaN/Inf",
                         variant.float_layers or None])
        return ["variant", "shipped", "layers", "first divergent", "op", "op output", "its SNR dB", "lowest SNR dB",
                "layers in float"], rows

    @staticmethod
    def sparsity_table(model: ModelSparsity) -> Table:
        rows = [[layer.name, layer.op, layer.weights, layer.zeros, f"{layer.sparsity:.1%}"] for layer in model.layers]
        return ["layer", "op", "weights", "zeros", "sparsity"], rows


def collect(document: ResultsDocument, results_path: Path) -> ReportData:
    labels = run_labels(document.runs)
    exports = model_exports(document.runs, results_path.parent)
    layer_snr = [snr for snr in map(layer_snr_of, exports) if snr is not None]
    return ReportData(document, str(results_path), labels, tradeoff_points(document.runs, labels),
                      [layers_of(export) for export in exports], exports, sweep_beside(results_path), layer_snr)


def sweep_beside(results_path: Path) -> SweepView | None:
    """The sweep that wrote these results: its ``sweep.json`` in the same folder, if there is one."""
    path = results_path.parent / SWEEP_FILENAME
    if not path.exists():
        return None
    return SweepView(read_sweep(path))


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
        if run.ok and run.latency_ms is not None:
            by_panel.setdefault(panel_of(run), []).append(run)
    points = {}
    for panel, measured in by_panel.items():
        sizes = [run.size_bytes / KB if run.size_bytes is not None else None for run in measured]
        top1s = [run.accuracy.top1 if run.accuracy else None for run in measured]
        # An objective some runs lack cannot rank them: leave it out rather than guess.
        objectives = [[run.latency_ms.p50 for run in measured]]
        objectives += [sizes] if None not in sizes else []
        objectives += [[-value for value in top1s]] if None not in top1s else []
        flags = pareto_flags(list(zip(*objectives)))
        points[panel] = [TradeoffPoint(run, labels[run.key], run.latency_ms.p50, size, top1, flag)
                          for run, size, top1, flag in zip(measured, sizes, top1s, flags)]
    return points


def pareto_flags(costs: Sequence[Sequence[float]]) -> list[bool]:
    """For each point (all costs minimised): True when no other point is as good on every cost and better on one."""
    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [not any(dominates(other, point) for other in costs) for point in costs]


def layers_of(export: ModelExport) -> ModelSparsity:
    """The layers with weights of the Keras model, from its export manifest's inspection."""
    if export.manifest is None:
        return ModelSparsity(export.model, (), export.problem)
    path = Path(export.manifest.folder or ".") / MANIFEST_FILENAME
    inspection = export.manifest.inspection
    if not inspection or not inspection.get("layers"):
        return ModelSparsity(export.model, (), f"{path} has no per-layer inspection")
    layers = tuple(LayerSparsity(layer["name"], layer.get("op") or "?", layer["weights"], layer["zeros"])
                   for layer in inspection["layers"] if layer.get("weights"))
    return ModelSparsity(export.model, layers, None if layers else f"{path} lists no layer with weights")


def layer_snr_of(export: ModelExport) -> ModelLayerSNR | None:
    """The per-layer comparisons the export recorded for each variant against fp32; None when no variant has them."""
    if export.manifest is None:
        return None
    plotted, left_out = [], []
    for record in export.manifest.variants:
        variant = variant_layer_snr(record.name, record.valid, record.validation)
        if variant is not None:
            plotted.append(variant)
        elif record.name != REFERENCE_VARIANT:
            left_out.append(record.name)
    return ModelLayerSNR(export.model, tuple(plotted), tuple(left_out)) if plotted else None


def variant_layer_snr(name: str, valid: bool, validation: Any) -> VariantLayerSNR | None:
    """A variant's ``validation.layers``, names cleaned as the manifest's other names are; None when it has none."""
    if not isinstance(validation, dict) or not isinstance(validation.get("layers"), list):
        return None
    layers = tuple(LayerSNR(printable(str(layer.get("op") or "?"), 100),
                            printable(str(layer.get("reference_tensor") or layer.get("candidate_tensor") or ""),
                                      TENSOR_CHARS),
                            finite_number(layer.get("snr_db")), finite_number(layer.get("cosine")))
                   for layer in validation["layers"] if isinstance(layer, dict))
    if not layers:
        return None
    first = validation.get("first_divergent")
    if "first_divergent" not in validation:
        first = next((index for index, layer in enumerate(layers) if diverges(layer)), None)
    elif type(first) is not int or not 0 <= first < len(layers):
        first = None
    float_layers = validation.get("float_layers")
    return VariantLayerSNR(name, layers, first, valid, len(float_layers) if isinstance(float_layers, list) else 0)


def diverges(layer: LayerSNR) -> bool:
    return (layer.snr_db is None or layer.snr_db < MIN_LAYER_SNR_DB
            or layer.cosine is None or layer.cosine < MIN_LAYER_COSINE)


def finite_number(value: Any) -> float | None:
    if type(value) not in (int, float) or not math.isfinite(value):
        return None
    return float(value)


def snr_text(snr_db: float | None) -> str:
    return "NaN/Inf" if snr_db is None else f"{snr_db:.1f}"
