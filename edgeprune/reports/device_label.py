"""The device cell of a run: the device's name, and its runtime beside it when runs of the same model ran on
different runtimes (a tflite-runtime board and a LiteRT board are no like-for-like comparison)."""

from __future__ import annotations

from typing import Callable, Iterable

from ..results.document import RunRecord


def runtime_of(run: RunRecord) -> dict | None:
    """The runtime that measured the run, else the one its device reported (a run that failed before measuring)."""
    return run.runtime or (run.device_info or {}).get("runtime")


def run_runtime(run: RunRecord) -> str | None:
    """``tflite_runtime 2.14.0``."""
    runtime = runtime_of(run)
    return f"{runtime['name']} {runtime['version']}" if runtime else None


def device_labeller(runs: Iterable[RunRecord]) -> Callable[[RunRecord], str]:
    runtimes: dict[str, set[str]] = {}
    for run in runs:
        if (runtime := run_runtime(run)) is not None:
            runtimes.setdefault(run.model, set()).add(runtime)
    mixed = {model for model, found in runtimes.items() if len(found) > 1}

    def label(run: RunRecord) -> str:
        runtime = run_runtime(run)
        return f"{run.device} ({runtime})" if run.model in mixed and runtime else run.device

    return label
