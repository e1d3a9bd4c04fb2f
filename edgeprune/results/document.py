"""The bench results document: a versioned envelope of runs, one per device x model variant x threads x mode.

Schema (version 1) is documented in the README and in ``schemas/results.schema.json``. The writer rewrites the
file atomically after every finished run, so a bench that dies later keeps what it measured.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..errors import UsageError
from ..fsutil import write_json_atomic
from ..parsing import ParseError, parse_json
from .json_types import check_items, check_keys

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
    latency_ms: dict[str, Any] | None = None
    samples_ms: list[float] | None = None
    init_ms: float | None = None
    first_invoke_ms: float | None = None
    peak_rss_mb: float | None = None
    xnnpack_delegate: dict[str, Any] | None = None
    board_state: dict[str, Any] | None = None
    device_info: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    export_manifest: str | None = None
    rounds: dict[str, int] | None = None  # {"done": k, "planned": n}; k < n for a run the bench did not finish

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def key(self) -> tuple[str, str, str, int | None, bool]:
        return (self.device, self.model, self.variant, self.threads, self.xnnpack)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ResultsDocument:
    created: str
    settings: dict[str, Any]
    runs: list[RunRecord] = field(default_factory=list)
    label: str | None = None
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    sparse_inference: list[dict[str, Any]] = field(default_factory=list)
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
        run = RunRecord(**without_non_finite(run.to_json()))  # the history stores it as JSON too
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
    try:
        document = parse_json(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise UsageError(f"results file '{path}' does not exist", hint="run edgeprune bench -o FILE first") from exc
    except OSError as exc:
        raise UsageError(f"results file '{path}' cannot be read ({exc.strerror or type(exc).__name__})") from exc
    except ParseError as exc:
        raise UsageError(f"results file '{path}' is not valid JSON ({exc})") from None
    return results_from_json(document, str(path))


# The JSON types of the keys that readers (tables, reports, the gate) rely on, as in schemas/results.schema.json.
_TOP_KEYS = {"created": "string", "label": "string null", "settings": "object", "devices": "object",
             "sparse_inference": "array", "edgeprune_version": "string"}
_RUN_KEYS = {
    "device": "string", "model": "string", "variant": "string", "model_sha256": "string null",
    "size_bytes": "integer null", "threads": "integer null", "xnnpack": "boolean", "status": "string",
    "error": "string null", "runtime": "object null", "latency_ms": "object null", "samples_ms": "array null",
    "init_ms": "number null", "first_invoke_ms": "number null", "peak_rss_mb": "number null",
    "xnnpack_delegate": "object null", "board_state": "object null", "device_info": "object null",
    "accuracy": "object null", "export_manifest": "string null", "rounds": "object null",
}
_LATENCY_KEYS = {**{key: "number" for key in ("p50", "p90", "p99", "mean", "std", "min", "max")}, "n": "integer"}
_ACCURACY_KEYS = {**{key: "number null" for key in ("top1", "top1_agreement", "max_abs_error", "mean_abs_error",
                                                     "snr_db")}, "n": "integer"}
_VERDICT_KEYS = {"device": "string", "model": "string", "arch": "string null", "applied": "boolean",
                 "reasons": "array"}
# The ranges of the numbers that readers divide, plot, format and store. A NaN, a negative latency or a number
# past float range in a crafted file fails here, naming file, run and key, not deep inside matplotlib or a ratio.
MAX_MEASURE = 1e9  # ms (11.6 days for one invoke) or MB
MAX_COUNT = 2**53  # counts and bytes: exact as floats, and within SQLite's INTEGER
_FLOAT_MAX = sys.float_info.max
_RUN_RANGES = {"size_bytes": (0, MAX_COUNT), "threads": (1, MAX_COUNT), "init_ms": (0, MAX_MEASURE),
               "first_invoke_ms": (0, MAX_MEASURE), "peak_rss_mb": (0, MAX_MEASURE)}
_LATENCY_RANGES = {**dict.fromkeys(("p50", "p90", "p99", "mean", "std", "min", "max"), (0, MAX_MEASURE)),
                   "n": (0, MAX_COUNT)}
_ACCURACY_RANGES = {"top1": (0, 1), "top1_agreement": (0, 1), "max_abs_error": (0, _FLOAT_MAX),
                    "mean_abs_error": (0, _FLOAT_MAX), "snr_db": (-_FLOAT_MAX, _FLOAT_MAX), "n": (0, MAX_COUNT)}
# A sample is one timed invoke: more than 0 (perf_counter_ns, rounded to 1 ns), since speed-ups divide by medians.
_SAMPLE_RANGE = (1e-6, MAX_MEASURE)


def _check_run(run: dict[str, Any], where: str) -> None:
    check_keys(run, _RUN_KEYS, where)
    if run.get("status") not in (STATUS_OK, STATUS_FAILED):
        raise UsageError(f"{where}.status must be '{STATUS_OK}' or '{STATUS_FAILED}', not {run.get('status')!r}")
    if run.get("latency_ms") is not None:
        check_keys(run["latency_ms"], _LATENCY_KEYS, f"{where}.latency_ms")
    if run.get("accuracy") is not None:
        check_keys(run["accuracy"], _ACCURACY_KEYS, f"{where}.accuracy")
    if run.get("samples_ms") is not None:
        check_items(run["samples_ms"], "number", f"{where}.samples_ms")
        low, high = _SAMPLE_RANGE
        if run["samples_ms"] and not low <= min(run["samples_ms"]) <= max(run["samples_ms"]) <= high:
            index, value = next((i, v) for i, v in enumerate(run["samples_ms"]) if not low <= v <= high)
            raise UsageError(f"{where}.samples_ms[{index}] must be a number from {low:g} to {high:g} ms, "
                             f"not {_number(value)}")
    _check_ranges(run, _RUN_RANGES, where)
    _check_ranges(run.get("latency_ms") or {}, _LATENCY_RANGES, f"{where}.latency_ms")
    _check_ranges(run.get("accuracy") or {}, _ACCURACY_RANGES, f"{where}.accuracy")


def _check_ranges(values: dict[str, Any], ranges: dict[str, tuple[float, float]], where: str) -> None:
    """Each number of ``values`` that ``ranges`` bounds (their types are checked already) lies within it."""
    for key, (low, high) in ranges.items():
        value = values.get(key)
        if value is not None and not low <= value <= high:  # NaN compares false: it fails here too
            raise UsageError(f"{where}.{key} must be a number from {low:g} to {high:g}, not {_number(value)}")


def _number(value: float) -> str:
    """A number for a message, even a whole number of 4000 digits."""
    try:
        return f"{value:g}"
    except OverflowError:
        return "a number beyond float range"


def _check_header(document: dict[str, Any], origin: str) -> None:
    check_keys(document, _TOP_KEYS, origin)
    check_keys(document.get("settings", {}), {"devices": "array"}, f"{origin}: settings")
    check_items(document.get("settings", {}).get("devices", []), "string", f"{origin}: settings.devices")
    devices = document.get("devices", {})
    check_keys(devices, dict.fromkeys(devices, "object"), f"{origin}: devices")
    check_items(document.get("sparse_inference", []), "object", f"{origin}: sparse_inference")
    for index, verdict in enumerate(document.get("sparse_inference", [])):
        check_keys(verdict, _VERDICT_KEYS, f"{origin}: sparse_inference[{index}]", required=True)
        check_items(verdict.get("reasons", []), "string", f"{origin}: sparse_inference[{index}].reasons")


def results_from_json(document: Any, origin: str) -> ResultsDocument:
    if not isinstance(document, dict) or document.get("kind") != RESULTS_KIND:
        raise UsageError(f"{origin}: not an edgeprune results document (key 'kind' is not '{RESULTS_KIND}')")
    if document.get("schema_version") != RESULTS_SCHEMA_VERSION:
        raise UsageError(f"{origin}: schema_version {document.get('schema_version')!r} is not supported "
                         f"(this edgeprune reads {RESULTS_SCHEMA_VERSION})")
    runs = document.get("runs")
    if not isinstance(runs, list):
        raise UsageError(f"{origin}: key 'runs' must be a list")
    _check_header(document, origin)
    known = {f.name for f in fields(RunRecord)}
    records = []
    for index, run in enumerate(runs):
        if not isinstance(run, dict):
            raise UsageError(f"{origin}: runs[{index}] is not an object")
        _check_run(run, f"{origin}: runs[{index}]")
        try:
            records.append(RunRecord(**{key: value for key, value in run.items() if key in known}))
        except TypeError as exc:
            raise UsageError(f"{origin}: runs[{index}] is malformed ({exc})") from exc
    top = {key: document[key] for key in ("created", "settings", "label", "devices", "sparse_inference",
                                          "edgeprune_version")
           if key in document}
    top.setdefault("created", "")
    top.setdefault("settings", {})
    return ResultsDocument(runs=records, **top)
