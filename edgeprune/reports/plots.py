"""The report's plots as PNG bytes, drawn by matplotlib on its Agg canvas (no display, no pyplot state).

Imported only by the report: matplotlib is an optional dependency (``pip install 'edgeprune[report]'``).
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from typing import Callable, Sequence, TypeVar

import matplotlib
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.axis import Axis
from matplotlib.ticker import LogFormatter, MaxNLocator
from matplotlib.transforms import Bbox, blended_transform_factory

from ..accuracy.metrics import SNR_CEILING_DB
from ..numerics.comparison import MIN_LAYER_SNR_DB
from ..text import one_line, shorten
from .label_layout import CLEARANCE, Box, place_labels
from .report_data import (LayerSNR, ModelLayerSNR, ModelSparsity, Panel, ReportData, TradeoffPoint, VariantLayerSNR,
                          snr_text)

WIDTH_IN = 11.0
DPI = 100
WHISKERS = (5, 95)  # percentiles
PARETO_COLOUR = "#d62728"
NO_TOP1_COLOUR = "#1f77b4"
SAME_TOP1_COLOUR = "#21918c"  # viridis' middle, as when top-1 differs
LEADER_COLOUR = "#888888"
DOT_SIZE = 90  # scatter marker areas, points squared
RING_SIZE = 260
# Where the trade-off legend may go, in this order; the first that covers no marker is taken.
LEGEND_PLACES = ("upper right", "upper left", "lower right", "lower left", "center right", "center left",
                 "upper center", "lower center")
# The narrowest top-1 range the colour bar spans, in percentage points.
MIN_TOP1_SPAN = 1.0
# Latencies this many times apart would squash the fast variants into a line on a linear axis.
LOG_SCALE_SPREAD = 20.0
# Agg draws at most 2^16 pixels a side, and a taller figure could not be read anyway: past these the plot shows the
# first panels (layers), the tables beside it every one.
MAX_PANELS = 40
MAX_LAYERS = 400
LABEL_CHARS = 40  # names are the file's: a long one would squeeze the axes to nothing
# Per-layer SNR: values past these are drawn at them (200 dB, the ceiling, means identical outputs), so that the
# threshold's neighbourhood keeps its room; at most this many layers are named on the x axis.
SNR_SHOWN_DB = (-60.0, 100.0)
MAX_LAYER_TICKS = 20
THRESHOLD_COLOUR = "#333333"
NOT_FINITE_Y = 0.03  # where an output with NaN or Inf is marked, as a share of the axes' height
VARIANT_MARKERS = ("o", "s", "D", "^", "P", "X", "h", "<")
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
        # a line: the view frames the whiskers with a margin, and rarer samples may lie outside it. A whisker ends
        # at the last sample inside its percentile, which, among few samples, can lie far from the percentile.
        whisker_ends = [float(end) for whisker in boxes["whiskers"] for end in whisker.get_ydata()]
        low, high = min(whisker_ends), max(whisker_ends)
        if high / low > LOG_SCALE_SPREAD:  # samples are > 0 (results_from_json)
            axes.set_yscale("log")
            plain_log_labels(axes.yaxis)
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
    figure = tradeoff_figure(data)
    return None if figure is None else png(figure)


@plain_text
def tradeoff_figure(data: ReportData) -> Figure | None:
    """p50 against size, coloured by top-1, Pareto-optimal runs ringed, each point labelled where no label covers
    another; one panel per device and model. None when no run was measured."""
    panels = tradeoff_panels(data)[:MAX_PANELS]
    if not panels:
        return None
    figure = new_figure(WIDTH_IN, 4.8 * len(panels))
    drawn = [tradeoff_panel(figure, figure.add_subplot(len(panels), 1, index), panel, points)
             for index, (panel, points) in enumerate(panels, 1)]
    # Labels are placed in pixels: the layout settles first and then stays as it is.
    figure.canvas.draw()
    figure.set_layout_engine("none")
    for axes, plotted in drawn:
        label_points(axes, plotted)
    return figure


def tradeoff_panel(figure: Figure, axes: Axes, panel: Panel, points: list[TradeoffPoint]
                   ) -> tuple[Axes, list[TradeoffPoint]]:
    plotted = [point for point in points if point.size_kb is not None]
    x = [point.p50_ms for point in plotted]
    y = [point.size_kb for point in plotted]
    handles = colour_by_top1(figure, axes, plotted, x, y)
    front = [point for point in plotted if point.pareto]
    if front:
        handles.append(axes.scatter([point.p50_ms for point in front], [point.size_kb for point in front],
                                    s=RING_SIZE, facecolors="none", edgecolors=PARETO_COLOUR, linewidths=2, zorder=4,
                                    label="Pareto-optimal (p50, size, top-1)"))
    axes.set_xlabel("p50 latency (ms)")
    axes.set_ylabel("model size (KB)")
    axes.set_title(f"{panel_title(panel)}: latency vs size vs top-1", loc="left")
    axes.margins(0.15)  # room for the labels of the outermost points
    axes.grid(alpha=0.3)
    if handles:
        axes.legend(handles=handles, fontsize=8)  # placed with the labels (``settle_legend``)
    return axes, plotted


def colour_by_top1(figure: Figure, axes: Axes, plotted: list[TradeoffPoint], x: list[float], y: list[float]
                   ) -> list[Artist]:
    """The points, coloured by top-1 on a colour bar that spans the values; in one colour, said in the legend
    (returned), when the tables would show one value for all."""
    accuracies = [point.top1 for point in plotted]
    if not plotted or None in accuracies:
        axes.scatter(x, y, color=NO_TOP1_COLOUR, s=DOT_SIZE, zorder=3)
        return []
    percents = [100 * value for value in accuracies]
    if len({f"{value:.1f}" for value in percents}) == 1:
        return [axes.scatter(x, y, color=SAME_TOP1_COLOUR, s=DOT_SIZE, zorder=3,
                             label=f"top-1 {percents[0]:.1f}% for every run")]
    low, high = top1_colour_range(percents)
    dots = axes.scatter(x, y, c=percents, cmap="viridis", s=DOT_SIZE, zorder=3, vmin=low, vmax=high)
    colour_bar = figure.colorbar(dots, ax=axes, label="top-1 accuracy (%)")
    ticks = top1_ticks(min(percents), max(percents), low, high)
    colour_bar.set_ticks(ticks, labels=[f"{tick:.1f}" for tick in ticks])
    return []


def top1_colour_range(percents: list[float]) -> tuple[float, float]:
    """The values' range, widened about its middle to at least MIN_TOP1_SPAN points (a 0.2-point difference must
    not look like the whole scale), within 0-100%."""
    low, high = min(percents), max(percents)
    half = max(high - low, MIN_TOP1_SPAN) / 2
    middle = min(max((low + high) / 2, half), 100 - half)
    return middle - half, middle + half


def top1_ticks(lowest: float, highest: float, low: float, high: float) -> list[float]:
    """The lowest and highest top-1 measured, and round values between that do not crowd them."""
    keep_clear = 0.12 * (high - low)
    between = [float(tick) for tick in MaxNLocator(nbins=5).tick_values(low, high)
               if lowest + keep_clear < tick < highest - keep_clear]
    return [lowest, *between, highest]


def label_points(axes: Axes, plotted: list[TradeoffPoint]) -> None:
    """The legend in a corner clear of the markers, and each point's label where it covers no other label, no
    marker and not the legend (see ``label_layout``)."""
    if not plotted:
        return
    renderer = axes.figure.canvas.get_renderer()
    anchors = [tuple(axes.transData.transform((point.p50_ms, point.size_kb))) for point in plotted]
    radii = [marker_radius_px(RING_SIZE if point.pareto else DOT_SIZE, axes.figure.dpi) for point in plotted]
    markers = [Box.around(x, y, radius) for (x, y), radius in zip(anchors, radii)]
    legend = axes.get_legend()
    obstacles = [] if legend is None else [settle_legend(legend, markers, renderer)]
    texts = [axes.annotate(label(point.label), (point.p50_ms, point.size_kb), xytext=(0, 0),
                           textcoords="offset pixels", ha="left", va="bottom", fontsize=8, zorder=5,
                           color=PARETO_COLOUR if point.pareto else "#333333")
             for point in plotted]
    sizes = [tuple(text.get_window_extent(renderer).size) for text in texts]
    placements = place_labels(anchors, sizes, radii, pixel_box(axes.get_window_extent(renderer)), obstacles)
    for text, (x, y), radius, placement in zip(texts, anchors, radii, placements):
        box = placement.box
        text.xyann = (box.x0 - x, box.y0 - y)
        if placement.leader:
            start = box.nearest_point(x, y)
            axes.annotate("", text.xy, xytext=(start[0] - x, start[1] - y), textcoords="offset pixels",
                          arrowprops={"arrowstyle": "-", "color": LEADER_COLOUR, "linewidth": 0.6, "shrinkA": 0,
                                      "shrinkB": radius * 72 / axes.figure.dpi}, zorder=2)


def settle_legend(legend: Legend, markers: list[Box], renderer: RendererBase) -> Box:
    """The legend in the first place in LEGEND_PLACES that covers no marker (else where matplotlib finds best),
    fixed there: the labels are placed around it, it must not move onto them. Its box."""
    for place in LEGEND_PLACES:
        legend.set_loc(place)
        box = pixel_box(legend.get_window_extent(renderer))
        if not any(box.overlaps(marker, CLEARANCE) for marker in markers):
            return box
    legend.set_loc("best")
    box = pixel_box(legend.get_window_extent(renderer))
    legend.set_loc(tuple(legend.axes.transAxes.inverted().transform((box.x0, box.y0))))
    return box


def marker_radius_px(size_pt2: float, dpi: float) -> float:
    """A scatter marker's radius: ``s`` is its area in points squared; plus its edge."""
    return (math.sqrt(size_pt2) / 2 + 1) * dpi / 72


def pixel_box(bbox: Bbox) -> Box:
    return Box(bbox.x0, bbox.y0, bbox.x1, bbox.y1)


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


@plain_text
def layer_snr_png(model: ModelLayerSNR) -> bytes:
    """Each variant's SNR against fp32 per op output, in execution order, with the divergence threshold and each
    variant's first divergent layer ringed; an output with NaN or Inf as a triangle at the bottom. Variants with the
    same figures at every layer (a sparse variant and its dense one, often) share a line."""
    groups = same_figures(model.variants)
    count = min(model.layer_count, MAX_LAYERS)
    legend_rows = math.ceil((len(groups) + 3) / 2)
    figure = new_figure(WIDTH_IN, 4.6 + 0.22 * legend_rows)
    axes = figure.add_subplot(1, 1, 1)
    at_bottom = blended_transform_factory(axes.transData, axes.transAxes)
    low, high = SNR_SHOWN_DB
    handles: list[Artist] = []
    shown: list[float] = []
    clipped = not_finite = False
    for index, (group, colour) in enumerate(zip(groups, palette(len(groups)))):
        variant = group[0]
        layers = variant.layers[:MAX_LAYERS]
        values = [math.nan if layer.snr_db is None else min(max(layer.snr_db, low), high) for layer in layers]
        shown += [value for value in values if not math.isnan(value)]
        clipped |= any(layer.snr_db is not None and not low <= layer.snr_db <= high for layer in layers)
        marker = VARIANT_MARKERS[index % len(VARIANT_MARKERS)] if len(layers) <= 80 else None
        line, = axes.plot(range(len(layers)), values, color=colour, linewidth=1.4, marker=marker, markersize=4,
                          markerfacecolor="white" if index % 2 else colour, zorder=3, label=group_legend(group))
        handles.append(line)
        missing = [layer_index for layer_index, layer in enumerate(layers) if layer.snr_db is None]
        if missing:
            not_finite = True
            axes.scatter(missing, [NOT_FINITE_Y] * len(missing), transform=at_bottom, marker="v", s=50, color=colour,
                         zorder=4, clip_on=False)
        first = variant.first_divergent
        if first is not None and first < len(layers):
            nan = layers[first].snr_db is None
            axes.scatter(first, NOT_FINITE_Y if nan else values[first], s=RING_SIZE, facecolors="none",
                         edgecolors=colour, linewidths=2, zorder=5, clip_on=False,
                         transform=at_bottom if nan else axes.transData)
    axes.axhline(MIN_LAYER_SNR_DB, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.2, zorder=2)
    bottom, top = min(shown + [MIN_LAYER_SNR_DB]), max(shown + [MIN_LAYER_SNR_DB])
    margin = 0.08 * (top - bottom) or 5.0
    axes.set_ylim(bottom - 2 * margin, top + margin)  # room at the bottom for the NaN/Inf markers
    # The threshold named beside the axes, where no line can cover it, and in the legend.
    axes.text(1.005, MIN_LAYER_SNR_DB, f"{MIN_LAYER_SNR_DB:g} dB", color=THRESHOLD_COLOUR, fontsize=8, ha="left",
              va="center", transform=blended_transform_factory(axes.transAxes, axes.transData))
    handles.append(Line2D([], [], color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.2,
                          label=f"{MIN_LAYER_SNR_DB:g} dB: below it a layer diverges"))
    handles.append(Line2D([], [], linestyle="none", marker="o", markersize=12, markerfacecolor="none",
                          markeredgecolor="#333333", markeredgewidth=2, label="first divergent layer"))
    if not_finite:
        handles.append(Line2D([], [], linestyle="none", marker="v", markersize=7, color="#333333",
                              label="NaN or Inf in the output (drawn at the bottom)"))
    layer_ticks(axes, max((variant.layers for variant in model.variants), key=len)[:count])
    axes.set_xlim(-0.5, count - 0.5)
    axes.set_xlabel("layer (op output, in execution order)")
    axes.set_ylabel("SNR against fp32 (dB)")
    axes.set_title(f"{label(model.model)}: per-layer SNR against fp32", loc="left")
    if clipped:
        axes.set_title(f"SNR outside {low:g} to {high:g} dB drawn at the edge ({SNR_CEILING_DB:g} dB: identical "
                       "outputs)", loc="right", fontsize=8, color="#555555")
    axes.grid(alpha=0.3)
    figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return png(figure)


def same_figures(variants: tuple[VariantLayerSNR, ...]) -> list[list[VariantLayerSNR]]:
    """The variants grouped by their figures at every layer, in manifest order."""
    groups: dict[tuple, list[VariantLayerSNR]] = {}
    for variant in variants:
        key = (variant.first_divergent, tuple((layer.snr_db, layer.cosine) for layer in variant.layers))
        groups.setdefault(key, []).append(variant)
    return list(groups.values())


def group_legend(group: list[VariantLayerSNR]) -> str:
    """``int8, int8-sparse (rejected): first diverges at #10 block4_dw_relu (29.7 dB)``."""
    names = []
    for variant in group:
        notes = [] if variant.valid else ["rejected"]
        if variant.float_layers:
            notes.append(f"{variant.float_layers} layer{'s' if variant.float_layers > 1 else ''} in float")
        names.append(label(variant.variant) + (f" ({', '.join(notes)})" if notes else ""))
    first = group[0].divergent_layer
    if first is None:
        return f"{', '.join(names)}: no layer diverges"
    snr = "NaN/Inf" if first.snr_db is None else f"{snr_text(first.snr_db)} dB"
    return f"{', '.join(names)}: first diverges at #{group[0].first_divergent} {label(first.short_name)} ({snr})"


def layer_ticks(axes: Axes, layers: Sequence[LayerSNR]) -> None:
    """Integer ticks, at most MAX_LAYER_TICKS, each with its layer's short name."""
    positions = [int(tick) for tick in MaxNLocator(nbins=MAX_LAYER_TICKS, integer=True, min_n_ticks=1)
                 .tick_values(0, max(len(layers) - 1, 0)) if 0 <= tick < len(layers)]
    axes.set_xticks(positions, [f"{index} {label(layers[index].short_name)}" for index in positions], rotation=30,
                    ha="right", rotation_mode="anchor", fontsize=8)


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


class PlainLogFormatter(LogFormatter):
    """Labels the ticks a log axis would label, as plain numbers (0.1, not 1e-01): matplotlib's default labels are
    mathtext, which these plots turn off (names from results files must never be read as TeX)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_labels(axis: Axis) -> None:
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
