"""What a bench measures: the deliverable variants of export folders, or plain ``.tflite`` files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import UsageError
from ..hashing import file_sha256
from ..results.manifest import MANIFEST_FILENAME, Manifest, read_manifest


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


def collect_targets(paths: Sequence[Path]) -> list[BenchTarget]:
    if not paths:
        raise UsageError("nothing to bench", hint="pass export folders (from edgeprune export) or .tflite files")
    targets: list[BenchTarget] = []
    for path in paths:
        targets.extend(targets_of(path))
    seen: dict[tuple[str, str], Path] = {}
    for target in targets:
        if (target.model, target.variant) in seen:
            raise UsageError(f"'{target.path}' and '{seen[target.model, target.variant]}' would both be reported as "
                             f"{target.label}", hint="bench them separately or rename one folder")
        seen[target.model, target.variant] = target.path
    return targets


def targets_of(path: Path) -> list[BenchTarget]:
    if path.is_dir():
        if not (path / MANIFEST_FILENAME).exists():
            raise UsageError(f"folder '{path}' has no {MANIFEST_FILENAME}", hint="pass a folder made by edgeprune export")
        manifest = read_manifest(path)
        deliverables = manifest.deliverables()
        if not deliverables:
            raise UsageError(f"export '{path}' has no valid variant to bench", hint="see its manifest.json errors")
        model = path.resolve().name
        return [file_target(manifest.path_of(record), model, record.name, manifest, record.sha256)
                for record in deliverables]
    if path.suffix == ".tflite" and path.is_file():
        return [single_file_target(path)]
    if not path.exists():
        raise UsageError(f"'{path}' does not exist", hint="pass export folders or .tflite files")
    raise UsageError(f"'{path}' is neither an export folder nor a .tflite file")


def single_file_target(path: Path) -> BenchTarget:
    """A lone .tflite; one that sits in an export folder keeps its manifest (source model, eligibility)."""
    folder = path.resolve().parent
    if (folder / MANIFEST_FILENAME).exists():
        manifest = read_manifest(folder)
        record = next((r for r in manifest.variants if r.file == path.name), None)
        if record is not None:
            return file_target(path, folder.name, record.name, manifest, record.sha256)
    return file_target(path, folder.name, path.stem, None, None)


def file_target(path: Path, model: str, variant: str, manifest: Manifest | None, sha256: str | None) -> BenchTarget:
    if not path.is_file():
        raise UsageError(f"'{path}' is listed in its manifest but missing", hint="re-run edgeprune export")
    actual = file_sha256(path)
    if sha256 and actual != sha256:
        raise UsageError(f"'{path}' does not match the sha256 in its manifest", hint="re-run edgeprune export")
    return BenchTarget(model, variant, path, actual, path.stat().st_size, manifest)
