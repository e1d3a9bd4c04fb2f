"""Known differences between runtimes, said next to the figures they distort instead of left for the reader to
discover (``../docs/runtimes.md``)."""

from __future__ import annotations

from typing import Iterable

from ..results.document import RunRecord

X86 = ("x86_64", "AMD64", "i686")
ARM_32 = ("armv6l", "armv7l", "armv8l")


def runtime_notes(arch: str | None, runtime: str | None, xnnpack_available: bool | None) -> list[str]:
    notes = []
    if runtime == "tflite_runtime" and arch in X86:
        notes.append("tflite-runtime's x86 int8 kernels are an order of magnitude slower than LiteRT's: compare its "
                     "int8 runs only with runs of the same runtime (docs/runtimes.md)")
    if arch in ARM_32 and not xnnpack_available:
        notes.append("32-bit ARM runtime wheels are built without XNNPACK: builtin kernels only, no sparse "
                     "inference (docs/runtimes.md)")
    return notes


def bench_notes(runs: Iterable[RunRecord]) -> list[str]:
    """One line per device and runtime the notes apply to, in the order the runs name them."""
    seen, lines = set(), []
    for run in runs:
        info = run.device_info or {}
        runtime = run.runtime or info.get("runtime") or {}
        key = (run.device, runtime.get("name"), runtime.get("version"))
        if key in seen:
            continue
        seen.add(key)
        for note in runtime_notes(info.get("arch"), runtime.get("name"), info.get("xnnpack_available")):
            lines.append(f"{run.device} ({runtime.get('name')} {runtime.get('version')}): {note}")
    return lines
