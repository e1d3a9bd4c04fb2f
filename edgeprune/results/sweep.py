"""The sweep document, ``SWEEPDIR/sweep.json``: one point per sparsity x variant x device (x threads x XNNPACK mode)
and the point to ship.

Schema (version 1): ``schemas/sweep.schema.json``, which the reader checks every document against; the dataclasses
here have its keys as their fields.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..errors import UsageError
from ..fsutil import write_json_atomic
from ..parsing import read_json_document
from .schema import SWEEP_SCHEMA, check_document

SWEEP_KIND = "edgeprune.sweep"
SWEEP_SCHEMA_VERSION = 1
SWEEP_FILENAME = "sweep.json"


@dataclass(frozen=True)
class SweepPoint:
    sparsity: float  # the target; 0.0 for the unpruned model
    achieved_sparsity: float | None  # zeros over all the model's weights (inspect's total)
    variant: str
    device: str
    threads: int | None
    xnnpack: bool
    file: str | None  # the .tflite, relative to SWEEPDIR
    size_bytes: int | None
    p50_ms: float | None
    top1: float | None  # share, 0..1
    top1_drop: float | None  # points against the unpruned fp32 on the same device, threads and mode
    status: str
    error: str | None = None


@dataclass(frozen=True)
class Recommendation:
    point: SweepPoint | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"point": asdict(self.point) if self.point else None, "reason": self.reason}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "Recommendation":
        return cls(known(SweepPoint, record["point"]) if record["point"] else None, record["reason"])


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    kind: str
    top1_drop: float  # points, pruning this layer alone


@dataclass(frozen=True)
class Sensitivity:
    sparsity: float
    data: str
    top1: float  # the unpruned model's, on ``data``
    layers: list[LayerSensitivity]  # most sensitive first
    suggested_skip: list[str]  # drop above --max-top1-drop

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "Sensitivity":
        return known(cls, {**record, "layers": [known(LayerSensitivity, layer) for layer in record["layers"]]})


@dataclass(frozen=True)
class SweepStep:
    step: str  # sensitivity, prune, export or bench
    subject: str  # the model the step made or measured
    key: str  # sha256 of what the step depends on
    reused: bool
    seconds: float


@dataclass
class SweepDocument:
    created: str
    settings: dict[str, Any]
    points: list[SweepPoint] = field(default_factory=list)
    recommendation: Recommendation = field(default_factory=lambda: Recommendation(None, "nothing measured"))
    prunes: list[dict[str, Any]] = field(default_factory=list)  # prune's --json report, per target
    sensitivity: Sensitivity | None = None
    steps: list[SweepStep] = field(default_factory=list)
    edgeprune_version: str = __version__
    schema_version: int = SWEEP_SCHEMA_VERSION
    kind: str = SWEEP_KIND

    @classmethod
    def new(cls, settings: dict[str, Any]) -> "SweepDocument":
        return cls(created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), settings=settings)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"schema_version": self.schema_version, "kind": self.kind}
        for item in fields(self):
            if item.name not in document:
                document[item.name] = getattr(self, item.name)
        document["points"] = [asdict(point) for point in self.points]
        document["recommendation"] = self.recommendation.to_json()
        document["sensitivity"] = self.sensitivity.to_json() if self.sensitivity else None
        document["steps"] = [asdict(step) for step in self.steps]
        return document

    def write(self, folder: Path) -> Path:
        path = folder / SWEEP_FILENAME
        document = self.to_json()
        check_document(document, SWEEP_SCHEMA, str(path))  # never write what the reader would refuse
        write_json_atomic(path, document, what="sweep document")
        return path


def read_sweep(path: Path) -> SweepDocument:
    document = read_json_document(path, "sweep document", missing_hint="run edgeprune sweep first")
    if not isinstance(document, dict) or document.get("kind") != SWEEP_KIND:
        raise UsageError(f"{path}: not an edgeprune sweep document (key 'kind' is not '{SWEEP_KIND}')")
    if document.get("schema_version") != SWEEP_SCHEMA_VERSION:
        raise UsageError(f"{path}: schema_version {document.get('schema_version')!r} is not supported "
                         f"(this edgeprune reads {SWEEP_SCHEMA_VERSION})")
    check_document(document, SWEEP_SCHEMA, str(path))
    header = {item.name for item in fields(SweepDocument)}
    values = {key: value for key, value in document.items() if key in header}
    values["points"] = [known(SweepPoint, point) for point in document["points"]]
    values["recommendation"] = Recommendation.from_json(document["recommendation"])
    values["sensitivity"] = Sensitivity.from_json(document["sensitivity"]) if document["sensitivity"] else None
    values["steps"] = [known(SweepStep, step) for step in document["steps"]]
    return SweepDocument(**values)


T = TypeVar("T")


def known(record_class: type[T], record: dict[str, Any]) -> T:
    """The record's keys this edgeprune knows (a later version may add others; the schema checked the rest)."""
    names = {item.name for item in fields(record_class)}  # type: ignore[arg-type]
    return record_class(**{key: value for key, value in record.items() if key in names})
