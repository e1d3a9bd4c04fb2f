"""Sweep points from a bench's runs: each run with its target sparsity, its file and its top-1 drop against the
unpruned fp32 measured on the same device, threads and XNNPACK mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..results.document import RunRecord
from ..results.manifest import Manifest
from ..results.sweep import SweepPoint
from ..variants import REFERENCE_VARIANT


@dataclass(frozen=True)
class SweptModel:
    """One target's model as the bench names it (its export folder's name)."""
    name: str
    sparsity: float
    manifest: Manifest
    folder: Path  # the export folder, relative to SWEEPDIR

    @property
    def achieved_sparsity(self) -> float | None:
        totals = (self.manifest.inspection or {}).get("totals") or {}
        return totals.get("sparsity")


def sweep_points(runs: Sequence[RunRecord], models: Sequence[SweptModel], baseline: str) -> list[SweepPoint]:
    by_name = {model.name: model for model in models}
    baselines = {(run.device, run.threads, run.xnnpack): run.accuracy.top1 for run in runs
                 if run.model == baseline and run.variant == REFERENCE_VARIANT and run.ok and run.accuracy
                 and run.accuracy.top1 is not None}
    points = []
    for run in runs:
        model = by_name.get(run.model)
        if model is None:
            continue
        record = model.manifest.variant(run.variant)
        top1 = run.accuracy.top1 if run.ok and run.accuracy else None
        reference = baselines.get((run.device, run.threads, run.xnnpack))
        points.append(SweepPoint(
            sparsity=model.sparsity, achieved_sparsity=model.achieved_sparsity, variant=run.variant,
            device=run.device, threads=run.threads, xnnpack=run.xnnpack,
            file=(model.folder / record.file).as_posix() if record and record.file else None,
            size_bytes=run.size_bytes, p50_ms=run.latency_ms.p50 if run.ok and run.latency_ms else None,
            top1=top1, top1_drop=round((reference - top1) * 100, 4) if None not in (reference, top1) else None,
            status=run.status, error=run.error,
        ))
    return points
