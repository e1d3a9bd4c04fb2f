"""``manifest.json`` of an export folder: what was converted from what, and which variants are deliverable.

Schema (version 1) is documented in the README and in ``schemas/manifest.schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import write_json_atomic

MANIFEST_FILENAME = "manifest.json"
MANIFEST_KIND = "edgeprune.export-manifest"
MANIFEST_SCHEMA_VERSION = 1


@dataclass
class VariantRecord:
    name: str
    quantization: str
    sparse: bool
    file: str | None
    size_bytes: int | None
    gzip_bytes: int | None
    sha256: str | None
    sparse_tensors: int | None
    valid: bool
    error: str | None
    validation: dict[str, Any] | None
    conversion_seconds: float | None
    rejected_file: str | None = None


@dataclass
class Manifest:
    source: dict[str, Any]
    input: dict[str, Any]
    variants: list[VariantRecord]
    created: str
    edgeprune_version: str
    tensorflow_version: str | None
    calibration: dict[str, Any] | None = None
    inspection: dict[str, Any] | None = None
    folder: Path | None = field(default=None, compare=False)
    schema_version: int = MANIFEST_SCHEMA_VERSION
    kind: str = MANIFEST_KIND

    def variant(self, name: str) -> VariantRecord | None:
        return next((record for record in self.variants if record.name == name), None)

    def deliverables(self) -> list[VariantRecord]:
        return [record for record in self.variants if record.valid and record.file]

    def path_of(self, record: VariantRecord) -> Path:
        if self.folder is None or record.file is None:
            raise ValueError(f"variant {record.name} has no file")
        return self.folder / record.file

    def to_json(self) -> dict[str, Any]:
        document = {"schema_version": self.schema_version, "kind": self.kind}
        document.update({f.name: getattr(self, f.name) for f in fields(self) if f.name not in document})
        document.pop("folder")
        document["variants"] = [asdict(record) for record in self.variants]
        return document

    def write(self, folder: Path) -> None:
        write_json_atomic(folder / MANIFEST_FILENAME, self.to_json())


def read_manifest(folder: Path) -> Manifest:
    """Read and check an export folder's manifest; every problem names the file and the key."""
    path = folder / MANIFEST_FILENAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"'{folder}' has no {MANIFEST_FILENAME}", hint="pass an edgeprune export folder") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})", hint="re-run edgeprune export") from exc
    return manifest_from_json(document, path)


def manifest_from_json(document: Any, path: Path) -> Manifest:
    if not isinstance(document, dict) or document.get("kind") != MANIFEST_KIND:
        raise UsageError(f"{path}: not an edgeprune export manifest (key 'kind' is not '{MANIFEST_KIND}')")
    version = document.get("schema_version")
    if version != MANIFEST_SCHEMA_VERSION:
        raise UsageError(
            f"{path}: schema_version {version!r} is not supported (this edgeprune reads {MANIFEST_SCHEMA_VERSION})",
            hint="re-run edgeprune export with this version",
        )
    variants = document.get("variants")
    if not isinstance(variants, list):
        raise UsageError(f"{path}: key 'variants' must be a list")
    try:
        records = [VariantRecord(**record) for record in variants]
        top = {f.name: document[f.name] for f in fields(Manifest) if f.name in document and f.name != "variants"}
        return Manifest(variants=records, folder=path.parent, **top)
    except TypeError as exc:
        raise UsageError(f"{path}: malformed manifest ({exc})", hint="re-run edgeprune export") from exc
