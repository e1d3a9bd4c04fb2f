"""``manifest.json`` of an export folder: what was converted from what, and which variants are deliverable.

Schema (version 1): ``schemas/manifest.schema.json``, which the reader checks every manifest against; the dataclasses
here have its keys as their fields.
"""

from __future__ import annotations

import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Collection

from ..errors import UsageError
from ..fsutil import write_json_atomic
from ..text import printable
from ..parsing import ParseError, parse_json
from .schema import MANIFEST_SCHEMA, check_document

MANIFEST_FILENAME = "manifest.json"
REJECTED_DIR = "rejected"  # the variants an export ran and did not ship, kept for bug reports
MANIFEST_KIND = "edgeprune.export-manifest"
MANIFEST_SCHEMA_VERSION = 1
# Far above what an export writes: a crafted manifest must not make its readers allocate without limit.
MAX_MANIFEST_BYTES = 16 * 2**20
REEXPORT = "re-run edgeprune export"


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
    conversion_seconds: float | None = None
    rejected_file: str | None = None


@dataclass
class Manifest:
    source: dict[str, Any]
    input: dict[str, Any]
    variants: list[VariantRecord]
    created: str
    edgeprune_version: str
    tensorflow_version: str | None = None
    calibration: dict[str, Any] | None = None
    inspection: dict[str, Any] | None = None
    folder: Path | None = field(default=None, compare=False)
    schema_version: int = MANIFEST_SCHEMA_VERSION
    kind: str = MANIFEST_KIND

    def variant(self, name: str) -> VariantRecord | None:
        return next((record for record in self.variants if record.name == name), None)

    def deliverables(self) -> list[VariantRecord]:
        return [record for record in self.variants if record.valid and record.file]

    def rejected(self, names: Collection[str]) -> list[VariantRecord]:
        """The variants among ``names`` that the export rejected."""
        return [record for record in self.variants if not record.valid and record.name in names]

    def path_of(self, record: VariantRecord) -> Path:
        """The variant's file, which must resolve inside the export folder: a crafted manifest naming
        ``../../etc/shadow``, an absolute path or a symlink out of the folder must not make bench read a host
        file and upload it to a board. The resolved path is returned, so no symlink is followed later."""
        if self.folder is None or record.file is None:
            raise ValueError(f"variant {record.name} has no file")
        where = f"{self.folder / MANIFEST_FILENAME}: variant '{record.name}' names the file '{record.file}'"
        try:
            folder = self.folder.resolve()
            resolved = (folder / record.file).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
            reason = exc.strerror if isinstance(exc, OSError) else "a symlink loop"
            raise UsageError(f"{where}, which cannot be resolved ({reason}); it was not read",
                             hint=REEXPORT) from None
        if folder not in resolved.parents:
            raise UsageError(f"{where}, which is outside the export folder; it was not read",
                             hint="re-run edgeprune export, or bench only manifests you trust")
        return resolved

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
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path} is not a file", hint="pass an edgeprune export folder")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise UsageError(f"{path}: {info.st_size // 2**20} MB, larger than any manifest edgeprune writes",
                             hint=REEXPORT)
        document = parse_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"'{folder}' has no {MANIFEST_FILENAME}", hint="pass an edgeprune export folder") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except ParseError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})", hint=REEXPORT) from exc
    return manifest_from_json(document, path)


def manifest_from_json(document: Any, path: Path) -> Manifest:
    """The manifest, checked whole against ``schemas/manifest.schema.json`` and for what a schema cannot say; a
    crafted or damaged one is one UsageError naming the file and the key. Its texts come cleaned to one printable
    line, as they end up in terminals and reports."""
    if not isinstance(document, dict) or document.get("kind") != MANIFEST_KIND:
        raise UsageError(f"{path}: not an edgeprune export manifest (key 'kind' is not '{MANIFEST_KIND}')")
    version = document.get("schema_version")
    if type(version) is not int or version != MANIFEST_SCHEMA_VERSION:
        shown = version if type(version) is int and abs(version) < 1000 else "of another kind"
        raise UsageError(
            f"{path}: schema_version {shown} is not supported (this edgeprune reads {MANIFEST_SCHEMA_VERSION})",
            hint=REEXPORT,
        )
    check_document(document, MANIFEST_SCHEMA, str(path), hint=REEXPORT)
    names = [variant["name"] for variant in document["variants"]]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: variants lists '{next(n for n in names if names.count(n) > 1)}' twice",
                         hint=REEXPORT)
    inspection = document.get("inspection")
    for index, layer in enumerate(inspection["layers"] if inspection else []):
        if layer["zeros"] > layer["weights"]:
            raise UsageError(f"{path}: inspection.layers[{index}].zeros must be at most {layer['weights']}, not "
                             f"{layer['zeros']}", hint=REEXPORT)
    tensorflow_version = document.get("tensorflow_version")
    return Manifest(
        source=document["source"],
        input={**document["input"], "dtype": printable(document["input"]["dtype"], 32)},
        variants=[cleaned_variant(variant) for variant in document["variants"]],
        created=printable(document["created"], 64),
        edgeprune_version=printable(document["edgeprune_version"], 64),
        tensorflow_version=None if tensorflow_version is None else printable(tensorflow_version, 64),
        calibration=document.get("calibration"),
        inspection=None if inspection is None else cleaned_inspection(inspection),
        folder=path.parent,
    )


def cleaned_variant(variant: dict[str, Any]) -> VariantRecord:
    known = {f.name for f in fields(VariantRecord)}
    record = VariantRecord(**{key: value for key, value in variant.items() if key in known})
    record.error = None if record.error is None else printable(record.error)
    return record


def cleaned_inspection(inspection: dict[str, Any]) -> dict[str, Any]:
    verdict = inspection["xnnpack_sparse"]
    return {**inspection, "layers": [cleaned_layer(layer) for layer in inspection["layers"]],
            "xnnpack_sparse": {**verdict, "reasons": [printable(reason) for reason in verdict["reasons"]]}}


def cleaned_layer(layer: dict[str, Any]) -> dict[str, Any]:
    cleaned = {**layer, "name": printable(layer["name"], 500)}
    if layer.get("op") is not None:
        cleaned["op"] = printable(layer["op"], 100)
    return cleaned
