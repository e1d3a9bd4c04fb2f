"""The sweep's plots as PNG bytes, drawn like ``plots`` (Agg canvas, names as plain text): top-1 against target
sparsity, and top-1 against p50 latency per device with its Pareto front, the top-1 floor and the recommended point.
"""

from __future__ import annotations

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .plots import (DOT_SIZE, MAX_PANELS, PARETO_COLOUR, RING_SIZE, WIDTH_IN, label, new_figure, palette, plain_log_labels,
                    plain_text, png)
from .sweep_view import SweepView

# Latencies this many times apart would squash the fast points together on a linear axis.
LOG_SCALE_SPREAD = 10.0
LINE_STYLES = ("-", "--", "-.", ":")  # a variant's lines on several devices or configurations share its colour
FLOOR_COLOUR = "#555555"
RECOMMENDED_COLOUR = "#ffbf00"
STAR_SIZE = 400
PANEL_HEIGHT_IN = 4.8


def variant_colours(view: SweepView) -> dict[str, str]:
    """One colour per variant, the same in both plots."""
    return dict(zip(view.variants, palette(len(view.variants))))


@plain_text
def top1_vs_sparsity_png(view: SweepView) -> bytes | None:
    """One line per variant, device and configuration; None when no point was measured with its top-1."""
    series = view.series()
    if not series:
        return None
    colours = variant_colours(view)
    figure = new_figure(WIDTH_IN, PANEL_HEIGHT_IN)
    axes = figure.add_subplot(1, 1, 1)
    drawn_per_variant: dict[str, int] = {}
    handles: list[Artist] = []
    for line in series:
        count = drawn_per_variant.get(line.variant, 0)
        drawn_per_variant[line.variant] = count + 1
        handles += axes.plot([100 * point.sparsity for point in line.points],
                             [100 * point.top1 for point in line.points], marker="o",
                             linestyle=LINE_STYLES[count % len(LINE_STYLES)], color=colours[line.variant],
                             label=label(line.label))
    floors = sorted({floor for device in view.devices for floor in view.top1_floors(device)})
    handles += floor_lines(axes, floors, view)
    axes.set_xlabel("target sparsity (%)")
    axes.set_ylabel("top-1 (%)")
    axes.set_title("top-1 vs target sparsity", loc="left")
    finish(axes, handles)
    return png(figure)


@plain_text
def top1_vs_latency_png(view: SweepView) -> bytes | None:
    figure = top1_vs_latency_figure(view)
    return None if figure is None else png(figure)


@plain_text
def top1_vs_latency_figure(view: SweepView) -> Figure | None:
    """One panel per device (latencies of different devices do not compare); None when nothing is drawable."""
    devices = view.devices[:MAX_PANELS]
    if not devices:
        return None
    colours = variant_colours(view)
    figure = new_figure(WIDTH_IN, PANEL_HEIGHT_IN * len(devices))
    for index, device in enumerate(devices, 1):
        latency_panel(figure.add_subplot(len(devices), 1, index), view, device, colours)
    return figure


def latency_panel(axes: Axes, view: SweepView, device: str, colours: dict[str, str]) -> None:
    points = view.on_device(device)
    handles: list[Artist] = []
    for variant in dict.fromkeys(point.variant for point in points):
        mine = [point for point in points if point.variant == variant]
        handles.append(axes.scatter([point.p50_ms for point in mine], [100 * point.top1 for point in mine],
                                    s=DOT_SIZE, color=colours[variant], zorder=3, label=label(variant)))
    front = view.front(device)
    # Post steps: at a latency, the best top-1 any point at most that slow reaches; on to the slowest point, so
    # that a front of one point shows too.
    steps_x = [point.p50_ms for point in front] + [max(point.p50_ms for point in points)]
    steps_y = [100 * point.top1 for point in front] + [100 * front[-1].top1]
    handles += axes.step(steps_x, steps_y, where="post", color=PARETO_COLOUR, linewidth=1.5, zorder=2,
                         label="Pareto front (p50, top-1)")
    axes.scatter(steps_x[:-1], steps_y[:-1], s=RING_SIZE, facecolors="none", edgecolors=PARETO_COLOUR, linewidths=2,
                 zorder=4)
    handles += floor_lines(axes, view.top1_floors(device), view)
    recommended = view.recommended
    if recommended is not None and recommended.device == device:
        xy = (recommended.p50_ms, 100 * recommended.top1)
        handles.append(axes.scatter(*xy, marker="*", s=STAR_SIZE, color=RECOMMENDED_COLOUR, edgecolors="black",
                                    linewidths=0.8, zorder=5, label="recommended"))
        axes.annotate(label(f"{view.config_label(recommended)} at sparsity {recommended.sparsity:g}"), xy,
                      xytext=(10, 10), textcoords="offset points", fontsize=8, zorder=6)
    latencies = [point.p50_ms for point in points]
    if min(latencies) > 0 and max(latencies) / min(latencies) > LOG_SCALE_SPREAD:
        axes.set_xscale("log")
        # The log scale's own labels are mathtext, shown as raw '$10^{0}$' with mathtext off: plain numbers.
        plain_log_labels(axes.xaxis)
    axes.set_xlabel("p50 latency (ms)")
    axes.set_ylabel("top-1 (%)")
    axes.set_title(f"{label(device)}: top-1 vs p50 latency", loc="left")
    axes.margins(0.1)  # room for the star and its label
    finish(axes, handles)


def floor_lines(axes: Axes, floors: list[float], view: SweepView) -> list[Artist]:
    """The lowest accepted top-1s, dashed; one legend entry for them all."""
    lines = [axes.axhline(100 * floor, color=FLOOR_COLOUR, linestyle="--", linewidth=1, zorder=1) for floor in floors]
    if not lines:
        return []
    drop = view.max_top1_drop
    lines[0].set_label(f"top-1 floor: unpruned fp32 - {drop:g} point{'' if drop == 1 else 's'}")
    return lines[:1]


def finish(axes: Axes, handles: list[Artist]) -> None:
    axes.grid(alpha=0.3)
    # Beside the axes, not on them: it would cover points, and the handles are explicit so that a name starting
    # with '_' (which matplotlib would hide) still shows.
    axes.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
