"""The runs a bench records without measuring them: every run of a device that could not be opened or used, and of
a variant refused before the bench. Each keeps the identity it would have had, so gate and report see what is
missing and why."""

from __future__ import annotations

from typing import Any, Sequence

from ..board.replies import ProbeReply
from ..devices.base import Device
from ..errors import EdgepruneError
from ..results.document import STATUS_FAILED, ResultsWriter, RunRecord
from .plan import BenchPlan
from .progress import Progress
from .targets import BenchTarget, RefusedTarget


def fail_unopened(name: str, error: EdgepruneError, targets: Sequence[BenchTarget], plan: BenchPlan,
                  writer: ResultsWriter, progress: Progress) -> dict[str, Any]:
    """A device that could not even be opened: each of its runs failed with why. Returns its devices entry."""
    progress(name, f"unusable: {error.message}")
    # Its own thread setting is unknown.
    record_failed_runs(writer, name, targets, plan.threads or (None,), plan.xnnpack_modes, str(error), None)
    return device_entry(address="", info=None, error=str(error))


def fail_refused(refused: Sequence[RefusedTarget], devices: Sequence[Device], unopened: Sequence[str],
                 plan: BenchPlan, writer: ResultsWriter) -> None:
    """A variant refused before the bench (its file is not inside its export folder) fails on every device, with
    the runs it would have had there."""
    for target in refused:
        for device in devices:
            record_failed_runs(writer, device.name, [target], plan.thread_counts(device), plan.xnnpack_modes,
                               target.reason, device_summary(device, None))
        for name in unopened:
            record_failed_runs(writer, name, [target], plan.threads or (None,), plan.xnnpack_modes, target.reason,
                               None)


def record_failed_runs(writer: ResultsWriter, device: str, targets: Sequence[BenchTarget | RefusedTarget],
                       threads: Sequence[int | None], xnnpack_modes: Sequence[bool], error: str,
                       device_info: dict[str, Any] | None) -> None:
    for target in targets:
        for thread_count in threads:
            for xnnpack in xnnpack_modes:
                writer.add(RunRecord(**target_identity(device, target, thread_count, xnnpack, device_info),
                                     status=STATUS_FAILED, error=error))


def target_identity(device: str, target: BenchTarget | RefusedTarget, threads: int | None, xnnpack: bool,
                    device_info: dict[str, Any] | None) -> dict[str, Any]:
    """What names a run: device, variant, settings, the device as the run saw it."""
    return {
        "device": device,
        "model": target.model,
        "variant": target.variant,
        "model_sha256": target.sha256,
        "size_bytes": target.size_bytes,
        "threads": threads,
        "xnnpack": xnnpack,
        "device_info": device_info,
        "export_manifest": str(target.manifest.folder / "manifest.json") if target.manifest and target.manifest.folder
        else None,
    }


def device_summary(device: Device, info: ProbeReply | None) -> dict[str, Any]:
    """A run's ``device_info``: where the device is and, once probed, what it is."""
    summary: dict[str, Any] = {"address": device.address, **device.facts()}
    if info:
        for key in ("hostname", "arch", "os", "cpu_model", "cpu_cores", "python", "xnnpack_available", "runtime"):
            summary[key] = info.get(key)
    return summary


def device_entry(*, address: str, info: ProbeReply | None, error: str | None, facts: dict[str, Any] | None = None,
                 uploaded_bytes: int = 0, wall_seconds: float = 0.0, runner_seconds: float = 0.0) -> dict[str, Any]:
    """A device's entry in the results document's ``devices``: what it is and what reaching it cost."""
    return {"address": address, **(facts or {}), "info": info, "error": error, "uploaded_bytes": uploaded_bytes,
            "wall_seconds": round(wall_seconds, 3), "runner_seconds": round(runner_seconds, 3)}
