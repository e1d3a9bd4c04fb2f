"""The report's plots as PNG bytes, drawn by matplotlib on its Agg canvas (no display, no pyplot state).

Imported only by the report: matplotlib is an optional dependency (``pip install 'edgeprune[report]'``).
"""

from __future__ import annotations

import functools
import io
import warnings
from typing import Callable, TypeVar

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .report_data import ModelSparsity, Panel, ReportData, TradeoffPoint
from .text import one_line, shorten

WIDTH_IN = 11.0
DPI = 100
WHISKERS = (5, 95)  # percentiles
PARETO_COLOUR = "#d62728"
# Latencies this many times apart would squash the fast variants into a line on a linear axis.
LOG_SCALE_SPREAD = 20.0
# Agg draws at most 2^16 pixels a side, and a taller figure could not be read anyway: past these the plot shows the
# first panels (layers), the tables beside it every one.
MAX_PANELS = 40
MAX_LAYERS = 400
LABEL_CHARS = 40  # names are the file's: a long one would squeeze the axes to nothing
# Names are drawn as written: a '$' starts no mathtext (a crafted '$\frac{a}$' would not even parse), no TeX.
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}

Drawing = TypeVar("Drawing", bound=Callable)


def plain_text(draw: Drawing) -> Drawing:
    """``draw`` with names drawn as plain text; a glyph missing from the font is drawn as a box, not warned about."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with matplotlib.rc_context(PLAIN_TEXT), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            return draw(*args, **kwargs)
    return drawn  # type: ignore[return-value]


def label(name: object) -> str:
    return shorten(one_line(name), LABEL_CHARS)


def latency_panels(data: ReportData) -> list[tuple[Panel, list[tuple[str, list[float]]]]]:
    """Each panel with samples to plot, and its (label, samples)."""
    panels = [(panel, data.distributions(panel)) for panel in data.panels]
    return [(panel, runs) for panel, runs in panels if runs]


def tradeoff_panels(data: ReportData) -> list[tuple[Panel, list[TradeoffPoint]]]:
    return [(panel, points) for panel, points in data.tradeoff.items() if points]


@plain_text
def latency_distribution_png(data: ReportData) -> bytes | None:
    """Box plots of every run's per-invoke samples, one panel per device and model; None when none has samples."""
    panels = latency_panels(data)[:MAX_PANELS]
    if not panels:
        return None
    figure = new_figure(WIDTH_IN, 3.6 * len(panels))
    for index, (panel, runs) in enumerate(panels, 1):
        axes = figure.add_subplot(len(panels), 1, index)
        labels, samples = zip(*((label(name), values) for name, values in runs))
        positions = range(1, len(runs) + 1)
        boxes = axes.boxplot(samples, positions=positions, whis=WHISKERS, widths=0.55, patch_artist=True,
                             flierprops={"markersize": 2, "alpha": 0.4}, medianprops={"color": "black"})
        for box, colour in zip(boxes["boxes"], palette(len(runs))):
            box.set_facecolor(colour)
        axes.set_xticks(list(positions), labels, rotation=20, ha="right")
        # A few invokes hundreds of times slower (a page fault, a context switch) would squash every box into
        # a line: the view frames the whiskers with a margin, and rarer samples may lie outside it.
        low = min(float(np.percentile(values, WHISKERS[0])) for values in samples)
        high = max(float(np.percentile(values, WHISKERS[1])) for values in samples)
        if high / low > LOG_SCALE_SPREAD:  # samples are > 0 (results_from_json)
            axes.set_yscale("log")
            axes.set_ylim(low / 1.5, high * 1.5)
        else:
            margin = 0.25 * (high - low) or 0.05 * high
            axes.set_ylim(max(0.0, low - margin), high + margin)
        axes.set_ylabel("latency per invoke (ms)")
        axes.set_title(f"{panel_title(panel)}: latency per invoke (box 25-75%, whiskers 5-95%)", loc="left")
        axes.grid(axis="y", alpha=0.3)
    return png(figure)


@plain_text
def tradeoff_png(data: ReportData) -> bytes | None:
    """p50 against size, coloured by top-1, Pareto-optimal runs ringed; one panel per device and model."""
    panels = tradeoff_panels(data)[:MAX_PANELS]
    if not panels:
        return None
    figure = new_figure(WIDTH_IN, 4.8 * len(panels))
    for index, (panel, points) in enumerate(panels, 1):
        axes = figure.add_subplot(len(panels), 1, index)
        plotted = [point for point in points if point.size_kb is not None]
        x = [point.p50_ms for point in plotted]
        y = [point.size_kb for point in plotted]
        accuracies = [point.top1 for point in plotted]
        if plotted and None not in accuracies:
            percents = [100 * value for value in accuracies]
            # Equal accuracies would otherwise get an arbitrary colour range around them.
            spread = max(max(percents) - min(percents), 1.0)
            dots = axes.scatter(x, y, c=percents, cmap="viridis", s=90, zorder=3,
                                vmin=max(percents) - spread, vmax=max(percents))
            figure.colorbar(dots, ax=axes, label="top-1 accuracy (%)")
        else:
            axes.scatter(x, y, color="#1f77b4", s=90, zorder=3)
        front = [point for point in plotted if point.pareto]
        axes.scatter([point.p50_ms for point in front], [point.size_kb for point in front], s=260,
                     facecolors="none", edgecolors=PARETO_COLOUR, linewidths=2, zorder=4,
                     label="Pareto-optimal (p50, size, top-1)")
        # Alternating above and below keeps the labels of neighbours (a variant and its -sparse twin) apart.
        for order, point in enumerate(sorted(plotted, key=lambda point: point.p50_ms)):
            axes.annotate(label(point.label), (point.p50_ms, point.size_kb),
                          xytext=(8, 7 if order % 2 == 0 else -13), textcoords="offset points", fontsize=8,
                          color=PARETO_COLOUR if point.pareto else "#333333")
        axes.set_xlabel("p50 latency (ms)")
        axes.set_ylabel("model size (KB)")
        axes.set_title(f"{panel_title(panel)}: latency vs size vs top-1", loc="left")
        axes.margins(0.15)  # room for the labels of the outermost points
        axes.grid(alpha=0.3)
        if front:
            axes.legend(loc="best", fontsize=8)
    return png(figure)


@plain_text
def sparsity_png(model: ModelSparsity) -> bytes:
    """Share of zero weights per layer, in graph order, coloured by operator."""
    layers = model.layers[:MAX_LAYERS]
    figure = new_figure(WIDTH_IN, 1.2 + 0.32 * len(layers))
    axes = figure.add_subplot(1, 1, 1)
    ops = list(dict.fromkeys(layer.op for layer in layers))
    colours = dict(zip(ops, palette(len(ops))))
    rows = range(len(layers))
    axes.barh(rows, [100 * layer.sparsity for layer in layers], color=[colours[layer.op] for layer in layers])
    for row, layer in zip(rows, layers):
        axes.text(100 * layer.sparsity + 1, row, f"{layer.sparsity:.0%}", va="center", fontsize=8)
    axes.set_yticks(list(rows), [label(layer.name) for layer in layers], fontsize=8)
    axes.invert_yaxis()  # first layer on top
    axes.set_xlim(0, 110)
    axes.set_xlabel("zero weights (%)")
    axes.set_title(f"{label(model.model)}: per-layer sparsity", loc="left")
    axes.legend(handles=[Patch(color=colours[op], label=label(op)) for op in ops], fontsize=8, loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    return png(figure)


def panel_title(panel: Panel) -> str:
    device, model = panel
    return f"{label(model)} on {label(device)}"


def new_figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def palette(count: int) -> list[str]:
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
               "#64b5cd"]
    return [colours[index % len(colours)] for index in range(count)]


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
