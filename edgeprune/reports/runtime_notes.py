"""Known differences between runtimes, said next to the figures they distort instead of left for the reader to
discover (``../docs/runtimes.md``)."""

from __future__ import annotations

from typing import Iterable

from ..bench.sparse_verdict import ARM32_ARCHES, X86_ARCHES
from ..results.document import RunRecord
from .device_label import runtime_of


def runtime_notes(arch: str | None, runtime: str | None, xnnpack_available: bool | None) -> list[str]:
    notes = []
    if runtime == "tflite_runtime" and arch in X86_ARCHES:
        notes.append("tflite-runtime's x86 int8 kernels are an order of magnitude slower than LiteRT's: compare its "
                     "int8 runs only with runs of the same runtime (docs/runtimes.md)")
    if arch in ARM32_ARCHES and not xnnpack_available:
        notes.append("32-bit ARM runtime wheels are built without XNNPACK: builtin kernels only, no sparse "
                     "inference (docs/runtimes.md)")
    return notes


def bench_notes(runs: Iterable[RunRecord]) -> list[str]:
    """One line per device and runtime the notes apply to, in the order the runs name them."""
    seen, lines = set(), []
    for run in runs:
        info = run.device_info or {}
        runtime = runtime_of(run) or {}
        key = (run.device, runtime.get("name"), runtime.get("version"))
        if key in seen:
            continue
        seen.add(key)
        for note in runtime_notes(info.get("arch"), runtime.get("name"), info.get("xnnpack_available")):
            lines.append(f"{run.device} ({runtime.get('name')} {runtime.get('version')}): {note}")
    return lines
