"""The export manifests behind a results document's runs, as the report finds them: per model, its manifest or why
there is none. The report reads the per-layer sparsity and the variants the export rejected from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import UsageError
from ..results.document import RunRecord
from ..results.manifest import Manifest, read_manifest

NO_REASON = "no reason recorded"


@dataclass(frozen=True)
class ModelExport:
    model: str
    manifest: Manifest | None
    problem: str | None = None  # why there is no manifest
    exported: bool = True  # False: benched from a loose .tflite, so no export ever ran


@dataclass(frozen=True)
class RejectedVariant:
    """A variant the export ran before shipping and rejected: it has no deliverable file, so no run measured it."""

    model: str
    variant: str
    reason: str


def model_exports(runs: Sequence[RunRecord], results_dir: Path) -> list[ModelExport]:
    """Per model, in results order, the export of the first run that names one."""
    manifests: dict[str, str | None] = {}
    for run in runs:
        if manifests.get(run.model) is None:
            manifests[run.model] = run.export_manifest
    return [export_of(model, manifest, results_dir) for model, manifest in manifests.items()]


def export_of(model: str, manifest: str | None, results_dir: Path) -> ModelExport:
    if manifest is None:
        return ModelExport(model, None, "benched from a .tflite file, not an export folder: no manifest",
                           exported=False)
    # Bench records the path as given on its command line: relative to where it ran, often the results' folder.
    candidates = [Path(manifest)] if Path(manifest).is_absolute() else [Path(manifest), results_dir / manifest]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        return ModelExport(model, None, f"export manifest {manifest} not found")
    try:
        return ModelExport(model, read_manifest(found.parent))
    except UsageError as exc:
        return ModelExport(model, None, str(exc))


def rejected_variants(exports: Sequence[ModelExport]) -> list[RejectedVariant]:
    return [RejectedVariant(export.model, record.name, record.error or NO_REASON)
            for export in exports if export.manifest for record in export.manifest.variants if not record.valid]
