"""The table ``edgeprune export`` prints: what each variant weighs and whether it passed validation."""

from __future__ import annotations

from ..results.manifest import Manifest
from ..text import human_bytes, one_line, shorten
from .table import format_table

# A rejection's reason, shortened to one terminal line under the table.
NOTE_WIDTH = 100


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
            "ok" if record.valid else "rejected",
        ])
    table = format_table(["variant", "size", "vs fp32", "gzip", "sparse tensors", "validation"], rows)
    rejected = [record for record in manifest.variants if not record.valid]
    notes = "".join(f"\n  {record.name}: {one_line(shorten(record.error or 'no reason recorded', NOTE_WIDTH))}"
                    for record in rejected)
    if notes:
        notes = (f"\n\nnot shipped (run before shipping and rejected; full reasons in "
                 f"{manifest.folder}/manifest.json):{notes}")
    return f"{table}{notes}\n\nwrote {manifest.folder}/manifest.json"
