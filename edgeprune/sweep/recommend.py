"""The point to ship: among the measured points whose top-1 stays within the allowed drop, the fastest, then the
smallest. Pure: points in, one recommendation out."""

from __future__ import annotations

from typing import Sequence

from ..results.sweep import Recommendation, SweepPoint
from ..text import human_bytes


def recommend(points: Sequence[SweepPoint], max_top1_drop: float, device: str) -> Recommendation:
    on_device = [point for point in points if point.device == device]
    measured = [point for point in on_device
                if point.status == "ok" and point.p50_ms is not None and point.top1_drop is not None]
    if not measured:
        return Recommendation(None, f"no point on {device} was measured with its top-1 (every run failed, or the "
                                    "unpruned fp32 has no top-1 to compare with)")
    allowed = f"{max_top1_drop:g} point{'' if max_top1_drop == 1 else 's'}"
    qualifying = [point for point in measured if point.top1_drop <= max_top1_drop]
    if not qualifying:
        least = min(measured, key=lambda point: point.top1_drop)
        return Recommendation(None, f"no point on {device} keeps top-1 within {allowed} of the "
                                    f"unpruned fp32: the least drop is {least.top1_drop:.2f} points "
                                    f"({least.variant} at sparsity {least.sparsity:g})")
    best = min(qualifying, key=lambda point: (point.p50_ms, point.size_bytes or 0))
    return Recommendation(best, (
        f"fastest of the {len(qualifying)} points on {device} within {allowed} of the unpruned "
        f"fp32's top-1 (then smallest): {best.variant} at sparsity {best.sparsity:g}, p50 {best.p50_ms:.4g} ms, "
        f"{human_bytes(best.size_bytes)}, top-1 {best.top1:.1%} ({best.top1_drop:+.2f} points)"))
