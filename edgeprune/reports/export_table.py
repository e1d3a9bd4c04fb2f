"""The table ``edgeprune export`` prints: what each variant weighs and whether it passed validation."""

from __future__ import annotations

from ..results.manifest import Manifest
from .table import format_table, human_bytes
from .text import shorten


def render_export(manifest: Manifest) -> str:
    fp32 = manifest.variant("fp32")
    fp32_size = fp32.size_bytes if fp32 and fp32.size_bytes else None
    rows = []
    for record in manifest.variants:
        ratio = f"{record.size_bytes / fp32_size:.2f}x" if fp32_size and record.size_bytes else None
        rows.append([
            record.name,
            human_bytes(record.size_bytes),
            ratio,
            human_bytes(record.gzip_bytes),
            record.sparse_tensors,
            "ok" if record.valid else f"invalid: {shorten(record.error or '', 60)}",
        ])
    table = format_table(["variant", "size", "vs fp32", "gzip", "sparse tensors", "validation"], rows)
    return f"{table}\n\nwrote {manifest.folder}/manifest.json"
