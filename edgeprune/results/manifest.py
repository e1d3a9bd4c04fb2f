"""``manifest.json`` of an export folder: what was converted from what, and which variants are deliverable.

Schema (version 1) is documented in the README and in ``schemas/manifest.schema.json``.
"""

from __future__ import annotations

import re
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..convert.variants import VARIANTS
from ..errors import UsageError
from ..fsutil import write_json_atomic
from ..json_fields import FieldError, Fields
from ..model.loading import H5, KERAS3_ZIP, KERAS_ZIP, SAVED_MODEL
from ..parsing import ParseError, parse_json

MANIFEST_FILENAME = "manifest.json"
MANIFEST_KIND = "edgeprune.export-manifest"
MANIFEST_SCHEMA_VERSION = 1
# Bounds far above what an export writes: a crafted manifest must not make its readers allocate without limit.
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_LAYERS = 100_000
MAX_DIMENSIONS = 16
SOURCE_FORMATS = {KERAS_ZIP, KERAS3_ZIP, H5, SAVED_MODEL}
SHA256 = re.compile(r"[0-9a-f]{64}")


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
                             hint="re-run edgeprune export") from None
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
                             hint="re-run edgeprune export")
        document = parse_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"'{folder}' has no {MANIFEST_FILENAME}", hint="pass an edgeprune export folder") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except ParseError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})", hint="re-run edgeprune export") from exc
    return manifest_from_json(document, path)


def manifest_from_json(document: Any, path: Path) -> Manifest:
    """The manifest, every field its consumers use checked for type and range (``schemas/manifest.schema.json``
    describes the same); a crafted or damaged one is one UsageError naming the file and the key."""
    if not isinstance(document, dict) or document.get("kind") != MANIFEST_KIND:
        raise UsageError(f"{path}: not an edgeprune export manifest (key 'kind' is not '{MANIFEST_KIND}')")
    version = document.get("schema_version")
    if type(version) is not int or version != MANIFEST_SCHEMA_VERSION:
        shown = version if type(version) is int and abs(version) < 1000 else "of another kind"
        raise UsageError(
            f"{path}: schema_version {shown} is not supported (this edgeprune reads {MANIFEST_SCHEMA_VERSION})",
            hint="re-run edgeprune export with this version",
        )
    try:
        return checked_manifest(Fields(document), path.parent)
    except FieldError as exc:
        raise UsageError(f"{path}: {exc}", hint="re-run edgeprune export") from None


def checked_manifest(manifest: Fields, folder: Path) -> Manifest:
    variants = manifest.each("variants", lambda holder, key: checked_variant(holder.object(key)),
                             max_items=len(VARIANTS))
    names = [record.name for record in variants]
    if len(set(names)) != len(names):
        raise FieldError(f"variants lists '{next(n for n in names if names.count(n) > 1)}' twice")
    inspection = manifest.object("inspection", null=True, optional=True)
    return Manifest(
        source=checked_source(manifest.object("source")),
        input=checked_input(manifest.object("input")),
        variants=variants,
        created=manifest.text("created", limit=64),
        edgeprune_version=manifest.text("edgeprune_version", limit=64),
        tensorflow_version=manifest.text("tensorflow_version", null=True, optional=True, limit=64),
        calibration=manifest.raw_object("calibration", null=True, optional=True),
        inspection=None if inspection is None else checked_inspection(inspection),
        folder=folder,
    )


def checked_source(source: Fields) -> dict[str, Any]:
    return {**source.value, "path": source.path("path"), "sha256": sha256_of(source, "sha256"),
            "format": source.choice("format", SOURCE_FORMATS), "stripped": source.flag("stripped")}


def checked_input(model_input: Fields) -> dict[str, Any]:
    shape = model_input.each("shape", lambda holder, key: holder.integer(key, low=0, null=True),
                             max_items=MAX_DIMENSIONS)
    return {**model_input.value, "shape": shape, "dtype": model_input.text("dtype", limit=32)}


def checked_variant(variant: Fields) -> VariantRecord:
    record = VariantRecord(
        name=variant.choice("name", VARIANTS),
        quantization=variant.choice("quantization", {spec.quantization for spec in VARIANTS.values()}),
        sparse=variant.flag("sparse"),
        file=variant.path("file", null=True),
        size_bytes=variant.integer("size_bytes", low=0, null=True),
        gzip_bytes=variant.integer("gzip_bytes", low=0, null=True),
        sha256=sha256_of(variant, "sha256", null=True),
        sparse_tensors=variant.integer("sparse_tensors", low=0, null=True),
        valid=variant.flag("valid"),
        error=variant.text("error", null=True),
        validation=variant.raw_object("validation", null=True),
        conversion_seconds=variant.number("conversion_seconds", low=0, null=True, optional=True),
        rejected_file=variant.path("rejected_file", null=True, optional=True),
    )
    if record.valid and record.file is None:
        raise FieldError(f"{variant.where} is valid but names no file")
    return record


def checked_inspection(inspection: Fields) -> dict[str, Any]:
    totals = inspection.object("totals")
    verdict = inspection.object("xnnpack_sparse")
    return {
        **inspection.value,
        "layers": inspection.each("layers", lambda holder, key: checked_layer(holder.object(key)),
                                  max_items=MAX_LAYERS),
        "totals": {**totals.value, "params": totals.integer("params", low=0), "zeros": totals.integer("zeros", low=0)},
        "xnnpack_sparse": {**verdict.value, "eligible": verdict.flag("eligible"),
                           "reasons": verdict.texts("reasons", max_items=MAX_LAYERS)},
    }


def checked_layer(layer: Fields) -> dict[str, Any]:
    """What the report reads of a layer: its name, op, and how many of its weights are zeros."""
    weights = layer.integer("weights", low=0)
    checked = {"name": layer.text("name", limit=500), "weights": weights,
               "zeros": layer.integer("zeros", low=0, high=weights),
               "op": layer.text("op", null=True, optional=True, limit=100),
               "params": layer.integer("params", low=0, null=True, optional=True),
               "sparsity": layer.number("sparsity", low=0, high=1, null=True, optional=True)}
    return {**layer.value, **{key: value for key, value in checked.items() if key in layer.value}}


def sha256_of(fields: Fields, key: str, *, null: bool = False) -> str | None:
    value = fields.text(key, null=null)
    if value is not None and not SHA256.fullmatch(value):
        raise FieldError(f"{fields.key(key)} must be 64 lowercase hex digits")
    return value
