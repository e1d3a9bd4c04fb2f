"""``edgeprune bench``: every device at once (one worker each), every variant on each, results kept as they come."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from ..devices.base import Device
from ..results.document import ResultsWriter
from .session import BenchPlan, DeviceSession, Progress, bench_device
from .sparse_verdict import sparse_verdicts
from .targets import BenchTarget


def run_bench(
    targets: Sequence[BenchTarget],
    devices: Sequence[Device],
    plan: BenchPlan,
    writer: ResultsWriter,
    progress: Progress,
) -> list[DeviceSession]:
    with ThreadPoolExecutor(max_workers=max(1, len(devices)), thread_name_prefix="edgeprune-device") as pool:
        futures = [pool.submit(bench_device, device, targets, plan, writer, progress) for device in devices]
        sessions = [future.result() for future in futures]
    eligibility = sparse_eligibility(targets)
    writer.update(lambda document: setattr(document, "sparse_inference", sparse_verdicts(document, eligibility)))
    return sessions


def sparse_eligibility(targets: Sequence[BenchTarget]) -> dict[str, dict[str, Any] | None]:
    return {
        target.model: (target.manifest.inspection or {}).get("xnnpack_sparse") if target.manifest else None
        for target in targets
    }
