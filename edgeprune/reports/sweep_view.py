"""What the report shows of a sweep (``SWEEPDIR/sweep.json`` beside the results): the measured points, the Pareto
front of p50 latency against top-1 per device, the top-1 floor the sweep allowed and the point it recommends.

Pure: no matplotlib, no files. Shares stay shares (0..1) here; the plots and tables turn them into percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..results.sweep import Recommendation, SweepDocument, SweepPoint
from ..text import human_bytes
from ..variants import REFERENCE_VARIANT
from ..text import percent
from .bench_table import ms

SWEEP_PARETO_MEANING = ("The Pareto front, per device: no other point on that device is both as fast (p50) and as "
                        "accurate (top-1), and better in one of them.")
Config = tuple[str, str, int | None, bool]  # variant, device, threads, XNNPACK: one line across the sparsities


def drawable(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The points a plot can place: measured, with both a p50 and a top-1."""
    return [point for point in points if point.status == "ok" and point.p50_ms is not None and point.top1 is not None]


def dominates(a: SweepPoint, b: SweepPoint) -> bool:
    """``a`` is as fast and as accurate as ``b``, and better in one."""
    return (a.p50_ms <= b.p50_ms and a.top1 >= b.top1) and (a.p50_ms < b.p50_ms or a.top1 > b.top1)


def pareto_front(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """The drawable points no other drawable point dominates, fastest first (so top-1 rises along it)."""
    measured = drawable(points)
    front = [point for point in measured if not any(dominates(other, point) for other in measured)]
    return sorted(front, key=lambda point: (point.p50_ms, -point.top1))


@dataclass(frozen=True)
class Series:
    """One variant in one configuration on one device, across the target sparsities."""

    label: str
    variant: str
    points: tuple[SweepPoint, ...]  # by target sparsity


@dataclass(frozen=True)
class SweepView:
    document: SweepDocument

    @property
    def recommendation(self) -> Recommendation:
        return self.document.recommendation

    @property
    def recommended(self) -> SweepPoint | None:
        """The recommended point, when there is one a plot can place."""
        point = self.recommendation.point
        return point if point is not None and drawable([point]) else None

    @property
    def headline(self) -> str:
        prefix = "Recommendation" if self.recommendation.point else "No recommendation"
        return f"{prefix}: {self.recommendation.reason}"

    @property
    def points(self) -> list[SweepPoint]:
        return drawable(self.document.points)

    @property
    def devices(self) -> list[str]:
        return list(dict.fromkeys(point.device for point in self.points))

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(point.variant for point in self.points))

    def on_device(self, device: str) -> list[SweepPoint]:
        return [point for point in self.points if point.device == device]

    def front(self, device: str) -> list[SweepPoint]:
        return pareto_front(self.on_device(device))

    def config_label(self, point: SweepPoint) -> str:
        """The variant, with threads and mode only where the points differ in them."""
        points = self.document.points
        parts = [point.variant]
        parts += [f"t{point.threads}"] if len({other.threads for other in points}) > 1 else []
        parts += ["no-xnnpack"] if not point.xnnpack and any(other.xnnpack for other in points) else []
        return " ".join(parts)

    def series(self) -> list[Series]:
        """One line per variant, device (when several), threads and mode (when several), in the document's order."""
        by_config: dict[Config, list[SweepPoint]] = {}
        for point in self.points:
            by_config.setdefault((point.variant, point.device, point.threads, point.xnnpack), []).append(point)
        several_devices = len(self.devices) > 1
        lines = []
        for (variant, device, _, _), points in by_config.items():
            name = self.config_label(points[0]) + (f" on {device}" if several_devices else "")
            lines.append(Series(name, variant, tuple(sorted(points, key=lambda point: point.sparsity))))
        return lines

    def top1_floors(self, device: str) -> list[float]:
        """The lowest top-1 the sweep accepted on ``device`` (--max-top1-drop points below the unpruned fp32), one
        per distinct unpruned fp32 top-1 there (threads and modes may differ); none without that baseline."""
        max_drop = self.max_top1_drop
        if max_drop is None:
            return []
        baselines = {round(point.top1, 9) for point in self.on_device(device)
                     if point.sparsity == 0 and point.variant == REFERENCE_VARIANT}
        return sorted(baseline - max_drop / 100 for baseline in baselines)

    @property
    def max_top1_drop(self) -> float | None:
        """Percentage points; None when the settings hold no number (a document built in code is not checked)."""
        value = self.document.settings.get("max_top1_drop")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def pareto_table(self) -> tuple[list[str], list[list[Any]]]:
        headers = ["device", "sparsity", "variant", "threads", "xnnpack", "p50 ms", "size", "top-1", "drop (pts)",
                   "recommended"]
        rows = [[point.device, f"{point.sparsity:g}", point.variant, point.threads, "on" if point.xnnpack else "off",
                 ms(point.p50_ms), human_bytes(point.size_bytes), percent(point.top1),
                 f"{point.top1_drop:+.2f}" if point.top1_drop is not None else None,
                 "★" if point == self.recommendation.point else ""]
                for device in self.devices for point in self.front(device)]
        return headers, rows
