"""What a bench measures: the deliverable variants of export folders, or plain ``.tflite`` files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

from ..errors import UsageError
from ..hashing import file_sha256
from ..variants import VARIANTS
from ..results.manifest import MANIFEST_FILENAME, Manifest, VariantRecord, read_manifest

# The variant of a .tflite that is not an export's: measured as it is.
LOOSE_FILE_VARIANT = "as-is"


@dataclass(frozen=True)
class BenchTarget:
    model: str
    variant: str
    path: Path
    sha256: str
    size_bytes: int
    manifest: Manifest | None = None

    @property
    def label(self) -> str:
        return f"{self.model}/{self.variant}"


@dataclass(frozen=True)
class RefusedTarget:
    """A variant whose manifest names a file that does not resolve inside its export folder: never read nor
    uploaded, its runs fail with ``reason`` while the other variants are measured."""

    model: str
    variant: str
    path: Path  # as the manifest names it
    manifest: Manifest
    reason: str
    sha256: None = None
    size_bytes: None = None

    @property
    def label(self) -> str:
        return f"{self.model}/{self.variant}"


def collect_targets(paths: Sequence[Path], variants: Collection[str] | None = None
                    ) -> tuple[list[BenchTarget], list[RefusedTarget]]:
    """What to measure, and the variants refused up front; a UsageError when nothing is left to measure.

    ``variants`` picks variants of export folders (the others are neither read nor hashed); a ``.tflite`` file named
    on its own is always measured: naming it was the choice."""
    if not paths:
        raise UsageError("nothing to bench", hint="pass export folders (from edgeprune export) or .tflite files")
    found: list[BenchTarget | RefusedTarget] = []
    offered: set[str] = set()
    for path in paths:
        found.extend(targets_of(path, variants, offered))
    if not found:
        asked = ",".join(sorted(variants or (), key=variant_order))
        raise UsageError(f"no variant of the given export folders is one of --variants {asked}",
                         hint=f"they offer: {', '.join(sorted(offered, key=variant_order))}")
    targets = [target for target in found if isinstance(target, BenchTarget)]
    refused = [target for target in found if isinstance(target, RefusedTarget)]
    if refused and not targets:
        raise UsageError(refused[0].reason)
    seen: dict[tuple[str, str], Path] = {}
    for target in found:
        if (target.model, target.variant) in seen:
            rename = "one folder" if target.manifest is not None else "one of the files"
            raise UsageError(f"'{target.path}' and '{seen[target.model, target.variant]}' would both be reported as "
                             f"{target.label}", hint=f"bench them separately or rename {rename}")
        seen[target.model, target.variant] = target.path
    return targets, refused


def variant_order(name: str) -> tuple[int, str]:
    """Export's order (fp32 first), other names after it."""
    names = list(VARIANTS)
    return (names.index(name), "") if name in names else (len(names), name)


def targets_of(path: Path, variants: Collection[str] | None = None,
               offered: set[str] | None = None) -> list[BenchTarget | RefusedTarget]:
    """The targets ``path`` holds; of an export folder only the deliverable ``variants`` (all when None), adding
    every deliverable variant's name to ``offered``."""
    if path.is_dir():
        if not (path / MANIFEST_FILENAME).exists():
            raise UsageError(f"folder '{path}' has no {MANIFEST_FILENAME}", hint="pass a folder made by edgeprune export")
        manifest = read_manifest(path)
        deliverables = manifest.deliverables()
        if not deliverables:
            raise UsageError(f"export '{path}' has no valid variant to bench", hint="see its manifest.json errors")
        if offered is not None:
            offered.update(record.name for record in deliverables)
        model = path.resolve().name
        return [export_target(manifest, record, model) for record in deliverables
                if variants is None or record.name in variants]
    if path.suffix == ".tflite" and path.is_file():
        return [single_file_target(path)]
    if not path.exists():
        raise UsageError(f"'{path}' does not exist", hint="pass export folders or .tflite files")
    raise UsageError(f"'{path}' is neither an export folder nor a .tflite file")


def export_target(manifest: Manifest, record: VariantRecord, model: str) -> BenchTarget | RefusedTarget:
    try:
        path = manifest.path_of(record)
    except UsageError as exc:  # not inside the export folder: refused, not read
        return RefusedTarget(model, record.name, Path(manifest.folder or ".") / (record.file or ""), manifest,
                             str(exc))
    return file_target(path, model, record.name, manifest, record.sha256)


def single_file_target(path: Path) -> BenchTarget:
    """A lone .tflite; one that sits in an export folder keeps its manifest (source model, eligibility). Without
    one it is its own model, named by its file; a file named as an export names a variant (``fp32.tflite``, e.g.
    copied out of an export) is that variant of the model its folder is named after."""
    folder = path.resolve().parent
    if (folder / MANIFEST_FILENAME).exists():
        manifest = read_manifest(folder)
        record = next((r for r in manifest.variants if r.file == path.name), None)
        if record is not None:
            return file_target(path, folder.name, record.name, manifest, record.sha256)
    if path.stem in VARIANTS:
        return file_target(path, folder.name, path.stem, None, None)
    return file_target(path, path.stem, LOOSE_FILE_VARIANT, None, None)


def file_target(path: Path, model: str, variant: str, manifest: Manifest | None, sha256: str | None) -> BenchTarget:
    if not path.is_file():
        raise UsageError(f"'{path}' is listed in its manifest but missing", hint="re-run edgeprune export")
    actual = file_sha256(path)
    if sha256 and actual != sha256:
        raise UsageError(f"'{path}' does not match the sha256 in its manifest", hint="re-run edgeprune export")
    return BenchTarget(model, variant, path, actual, path.stat().st_size, manifest)
