"""The bench results document: a versioned envelope of runs, one per device x model variant x threads x mode.

Schema (version 1): ``schemas/results.schema.json``, which the reader checks every document against; the dataclasses
here have its keys as their fields. The writer rewrites the file atomically after every finished run, so a bench that
dies later keeps what it measured.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..errors import UsageError
from ..fsutil import write_json_atomic
from ..parsing import read_json_document
from .accuracy_figures import AccuracyFigures
from .latency import Latency
from .schema import RESULTS_SCHEMA, check_document

RESULTS_KIND = "edgeprune.results"
RESULTS_SCHEMA_VERSION = 1
STATUS_OK = "ok"
STATUS_FAILED = "failed"


@dataclass
class RunRecord:
    device: str
    model: str
    variant: str
    model_sha256: str | None
    size_bytes: int | None
    threads: int | None
    xnnpack: bool
    status: str
    error: str | None = None
    runtime: dict[str, Any] | None = None
    latency_ms: Latency | None = None
    samples_ms: list[float] | None = None
    init_ms: float | None = None
    first_invoke_ms: float | None = None
    peak_rss_mb: float | None = None
    xnnpack_delegate: dict[str, Any] | None = None
    board_state: dict[str, Any] | None = None
    device_info: dict[str, Any] | None = None
    accuracy: AccuracyFigures | None = None
    export_manifest: str | None = None
    rounds: dict[str, int] | None = None  # {"done": k, "planned": n}; k < n for a run the bench did not finish

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def key(self) -> tuple[str, str, str, int | None, bool]:
        return (self.device, self.model, self.variant, self.threads, self.xnnpack)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["latency_ms"] = self.latency_ms.to_json() if self.latency_ms else None
        record["accuracy"] = self.accuracy.to_json() if self.accuracy else None
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "RunRecord":
        """From a run of a results document (checked against its schema); keys this edgeprune does not know (a
        later version's) are left out."""
        known = {key: value for key, value in record.items() if key in _RUN_FIELDS}
        if known.get("latency_ms") is not None:
            known["latency_ms"] = Latency.from_json(known["latency_ms"])
        if known.get("accuracy") is not None:
            known["accuracy"] = AccuracyFigures.from_json(known["accuracy"])
        return cls(**known)


_RUN_FIELDS = frozenset(f.name for f in fields(RunRecord))


@dataclass
class ResultsDocument:
    created: str
    settings: dict[str, Any]
    runs: list[RunRecord] = field(default_factory=list)
    label: str | None = None
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    sparse_inference: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, str | None] | None = None  # git commit and branch, CI run, host (provenance.py)
    edgeprune_version: str = __version__
    schema_version: int = RESULTS_SCHEMA_VERSION
    kind: str = RESULTS_KIND

    @classmethod
    def new(cls, settings: dict[str, Any], label: str | None = None) -> "ResultsDocument":
        return cls(created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), settings=settings,
                   label=label)

    def to_json(self) -> dict[str, Any]:
        document = {"schema_version": self.schema_version, "kind": self.kind}
        document.update({f.name: getattr(self, f.name) for f in fields(self) if f.name not in document})
        document["runs"] = [run.to_json() for run in self.runs]
        return document

    def find(self, device: str, model: str, variant: str, threads: int | None, xnnpack: bool) -> RunRecord | None:
        return next((run for run in self.runs if run.key == (device, model, variant, threads, xnnpack)), None)


class ResultsWriter:
    """Collects runs from concurrent device workers; every ``add`` is on disk before it returns."""

    def __init__(self, document: ResultsDocument, path: Path | None,
                 on_run: Callable[[ResultsDocument, RunRecord], None] | None = None) -> None:
        self.document = document
        self.path = path
        self._on_run = on_run
        self._lock = threading.Lock()
        self.flush()

    def add(self, run: RunRecord) -> None:
        """A finished run: replaces its checkpoint if it had one, and goes to the history too."""
        run = RunRecord.from_json(without_non_finite(run.to_json()))  # the history stores it as JSON too
        with self._lock:
            self._put(run)
            self._write()
            if self._on_run:
                self._on_run(self.document, run)

    def checkpoint(self, run: RunRecord) -> None:
        """A run not finished yet, as far as it got: on disk only, so a bench that dies keeps its rounds."""
        with self._lock:
            self._put(run)
            self._write()

    def _put(self, run: RunRecord) -> None:
        for index, existing in enumerate(self.document.runs):
            if existing.key == run.key:
                self.document.runs[index] = run
                return
        self.document.runs.append(run)

    def update(self, mutate: Callable[[ResultsDocument], None]) -> None:
        with self._lock:
            mutate(self.document)
            self._write()

    def flush(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        if self.path is not None:
            write_json_atomic(self.path, without_non_finite(self.document.to_json()), what="results file")


def without_non_finite(value: Any) -> Any:
    """``value`` with every NaN and infinity made null. JSON has neither: ``json.dumps`` would write ``NaN``,
    which strict readers (edgeprune's own among them) reject, and the whole results file with it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: without_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_non_finite(item) for item in value]
    return value


def read_results(path: Path) -> ResultsDocument:
    """Read a results document; every problem names the file and, where it can, the run and key."""
    document = read_json_document(path, "results file", missing_hint="run edgeprune bench -o FILE first")
    return results_from_json(document, str(path))


def results_from_json(document: Any, origin: str) -> ResultsDocument:
    """The document, checked whole against ``schemas/results.schema.json`` first; keys this edgeprune does not know
    (a later version's) are left out."""
    if not isinstance(document, dict) or document.get("kind") != RESULTS_KIND:
        raise UsageError(f"{origin}: not an edgeprune results document (key 'kind' is not '{RESULTS_KIND}')")
    if document.get("schema_version") != RESULTS_SCHEMA_VERSION:
        raise UsageError(f"{origin}: schema_version {document.get('schema_version')!r} is not supported "
                         f"(this edgeprune reads {RESULTS_SCHEMA_VERSION})")
    check_document(document, RESULTS_SCHEMA, origin)
    runs = [RunRecord.from_json(run) for run in document["runs"]]
    header = {f.name for f in fields(ResultsDocument)} - {"runs", "schema_version", "kind"}
    return ResultsDocument(runs=runs, **{key: value for key, value in document.items() if key in header})
