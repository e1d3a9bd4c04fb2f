"""Export sizes and conversion times: every variant of the shipped MobileNet sample, through the library API.

Exports ``models/mobilenet_digits.keras`` with all variants (``--variants all``) and
``models/mobilenet_digits_calibration.npz`` into a temporary folder, then prints per variant: size, ratio to
fp32, gzip size, sparse-encoded tensors, valid/invalid (with a short reason) and conversion time (the
manifest's ``conversion_seconds``), plus the wall time of the whole export (loading, conversion, validation).

Run from the repository root:

    .venv/bin/python benchmarks/export_sizes.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from edgeprune.convert.export import ExportRequest, export
from edgeprune.variants import parse_variant_list
from edgeprune.results.manifest import Manifest, VariantRecord

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "mobilenet_digits.keras"
CALIBRATION = REPO / "models" / "mobilenet_digits_calibration.npz"
REASON_WIDTH = 110


def timed_export(outdir: Path) -> tuple[Manifest, float]:
    request = ExportRequest(MODEL, outdir, parse_variant_list("all"), CALIBRATION)
    started = time.perf_counter()
    manifest = export(request, progress=lambda message: print(f"  {message}", file=sys.stderr))
    return manifest, time.perf_counter() - started


def short_reason(error: str | None) -> str:
    # The runner joins LiteRT's per-node messages with "; ": the first one names the failing op.
    text = " ".join((error or "").split()).split("; ")[0]
    return text if len(text) <= REASON_WIDTH else text[:REASON_WIDTH - 3] + "..."


def kib(size: int | None) -> str:
    return f"{size / 1024:.1f}" if size is not None else "-"


def variant_row(record: VariantRecord, fp32_bytes: int | None) -> list[str]:
    ratio = f"{record.size_bytes / fp32_bytes:.3f}" if record.size_bytes and fp32_bytes else "-"
    status = "valid" if record.valid else f"INVALID: {short_reason(record.error)}"
    return [
        record.name,
        kib(record.size_bytes),
        ratio,
        kib(record.gzip_bytes),
        str(record.sparse_tensors) if record.sparse_tensors is not None else "-",
        f"{record.conversion_seconds:.2f}" if record.conversion_seconds is not None else "-",
        status,
    ]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * width for width in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def verdict(manifest: Manifest, wall_seconds: float) -> str:
    valid = [record for record in manifest.variants if record.valid and record.size_bytes]
    fp32 = manifest.variant("fp32")
    conversion = sum(record.conversion_seconds or 0.0 for record in manifest.variants)
    summary = (f"{len(valid)}/{len(manifest.variants)} variants valid; export took {wall_seconds:.1f} s "
               f"({conversion:.1f} s converting)")
    if fp32 and fp32.size_bytes and valid:
        smallest = min(valid, key=lambda record: record.size_bytes)
        summary += f"; smallest valid: {smallest.name} at {smallest.size_bytes / fp32.size_bytes:.1%} of fp32"
    return summary


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgeprune-export-sizes-") as scratch:
        manifest, wall_seconds = timed_export(Path(scratch) / "mobilenet_digits")
    fp32 = manifest.variant("fp32")
    fp32_bytes = fp32.size_bytes if fp32 else None
    print(f"\nExport of {MODEL.name} (calibration: {CALIBRATION.name}), TensorFlow {manifest.tensorflow_version}\n")
    print_table(["variant", "KiB", "vs fp32", "gzip KiB", "sparse tensors", "convert s", "status"],
                [variant_row(record, fp32_bytes) for record in manifest.variants])
    print(f"\nTotal export wall time: {wall_seconds:.2f} s")
    print(f"VERDICT: {verdict(manifest, wall_seconds)}")


if __name__ == "__main__":
    main()
