"""``edgeprune bench``: every device at once (one worker each), every variant on each, results kept as they come.

Ctrl-C cancels the workers, kills the runners they started on the devices, and keeps every finished run.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..accuracy.reference import ModelAccuracyPlan, plan_accuracy
from ..devices.base import Device
from ..devices.inventory import LOCAL, Inventory
from ..errors import EdgepruneError, HistoryError, UsageError
from ..history.location import HistoryLocation
from ..image_folder import DEFAULT_IMAGE_RANGE, is_image_folder
from ..results.document import ResultsDocument, ResultsWriter
from ..results.provenance import collect_provenance
from ..results.output_claim import ResultsFileClaim
from .failed_runs import fail_refused, fail_unopened
from .history_recorder import HistoryRecorder
from .plan import BenchPlan
from .progress import Progress
from .session import DeviceBench
from .sparse_verdict import sparse_verdicts
from .targets import BenchTarget, RefusedTarget, collect_targets

INTERRUPT_RETRY_S = 1.0


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C, once every device worker has stopped and what they measured is written."""

    def __init__(self, document: ResultsDocument) -> None:
        super().__init__("interrupted")
        self.document = document


class BenchNotRecorded(HistoryError):
    """The bench is measured and its results file written, but the results history failed to take it."""

    def __init__(self, document: ResultsDocument, error: HistoryError) -> None:
        super().__init__(error.message, hint=error.hint)
        self.document = document


@dataclass(frozen=True)
class BenchRequest:
    paths: Sequence[Path]
    plan: BenchPlan = field(default_factory=BenchPlan)
    variants: frozenset[str] | None = None  # only these variants of the paths (export's names); None: all
    devices: Sequence[str] = ()
    tags: Sequence[str] = ()
    output: Path | None = None
    label: str | None = None
    history: HistoryLocation | None = None
    inventory: Path | None = None
    accept_new_host_key: bool = False
    data: Sequence[Path] = ()
    reference: Path | None = None
    image_range: tuple[float, float] | None = None
    trust_model_code: bool = False


def bench(request: BenchRequest, progress: Progress) -> ResultsDocument:
    """Check every input first (nothing is written for a bad one), then measure and write as results arrive."""
    targets, refused = collect_targets(request.paths, request.variants)
    if request.reference and not request.data:
        raise UsageError("--reference needs --data", hint="pass the evaluation data to compare outputs on")
    if request.image_range and not any(is_image_folder(path) for path in request.data):
        raise UsageError("--image-range scales the images of an image folder, and no --data is a folder",
                         hint="drop --image-range, or pass the image folder with --data")
    inventory = Inventory.load(request.inventory)
    # The results file is this bench's before anything is measured: another bench writing it is refused here.
    claim = ResultsFileClaim.take(request.output) if request.output else contextlib.nullcontext()
    with claim, tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as scratch:
        accuracy_plans = (plan_accuracy(targets, request.data, request.reference, Path(scratch),
                                        request.image_range or DEFAULT_IMAGE_RANGE,
                                        trust_model_code=request.trust_model_code) if request.data else None)
        devices, unopened = open_devices(inventory, request)
        names = [*unopened, *(device.name for device in devices)]
        document = ResultsDocument.new({**request.plan.to_json(), "devices": names}, label=request.label)
        document.provenance = collect_provenance(Path.cwd())
        recorder: HistoryRecorder | None = None
        try:
            # Both outputs open before either records anything: a history folder that cannot be made leaves no
            # results file behind.
            recorder = HistoryRecorder(request.history)
            writer = ResultsWriter(document, request.output, on_run=recorder.add_run)
            recorder.start(document, request.output)
            run_on_devices(targets, devices, request.plan, writer, progress, accuracy_plans, unopened, refused)
        finally:
            if recorder is not None:
                recorder.finish(document)
            for device in devices:
                device.close()
    if recorder.error is not None:
        raise BenchNotRecorded(document, recorder.error)
    return document


def open_devices(inventory: Inventory, request: BenchRequest) -> tuple[list[Device], dict[str, EdgepruneError]]:
    """The devices to measure, and those that cannot even be opened (an unknown name, a farm device without
    labgrid, a missing identity file) with the reason: their runs fail, the others are measured. Only when no
    device can be opened is it an input error."""
    unopened: dict[str, EdgepruneError] = {}
    known = []
    for name in dict.fromkeys(request.devices):
        try:
            inventory.spec(name)
            known.append(name)
        except UsageError as exc:
            unopened[name] = exc
    if unopened and not known:
        raise next(iter(unopened.values()))
    names = inventory.select(known, request.tags) if (known or request.tags) else [LOCAL]
    devices = []
    for name in names:
        try:
            devices.append(inventory.open(name, accept_new_host_key=request.accept_new_host_key))
        except EdgepruneError as exc:
            unopened[name] = exc
    if not devices:
        raise next(iter(unopened.values()))
    return devices, unopened


def run_on_devices(
    targets: Sequence[BenchTarget],
    devices: Sequence[Device],
    plan: BenchPlan,
    writer: ResultsWriter,
    progress: Progress,
    accuracy_plans: dict[str, ModelAccuracyPlan] | None = None,
    unopened: dict[str, EdgepruneError] | None = None,
    refused: Sequence[RefusedTarget] = (),
) -> None:
    unopened_entries = {name: fail_unopened(name, error, targets, plan, writer, progress)
                        for name, error in (unopened or {}).items()}
    fail_refused(refused, devices, list(unopened_entries), plan, writer)
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, len(devices)), thread_name_prefix="edgeprune-device") as pool:
        futures = [pool.submit(DeviceBench(device, targets, plan, writer, progress, accuracy_plans or {}, cancel).run)
                   for device in devices]
        try:
            wait(futures)
        except KeyboardInterrupt:
            cancel.set()
            interrupt_devices(devices)
            # Again until every worker is out: one may have started a runner just before it saw the cancel.
            while wait(futures, timeout=INTERRUPT_RETRY_S).not_done:
                interrupt_devices(devices)
    # A worker that failed unexpectedly (a bug) must not cost the other devices their summaries: conclude, then raise.
    sessions = [future.result() for future in futures if future.exception() is None]
    eligibility = sparse_eligibility(targets)

    def conclude(document: ResultsDocument) -> None:
        document.devices = {**unopened_entries, **{session.device.name: session.summary() for session in sessions}}
        document.sparse_inference = sparse_verdicts(document, eligibility)

    writer.update(conclude)
    for future in futures:
        if (crash := future.exception()) is not None:
            raise crash
    if cancel.is_set():
        raise BenchInterrupted(writer.document)


def interrupt_devices(devices: Sequence[Device]) -> None:
    """Kill what every device is running, all devices at once: one that does not answer must not hold up the rest."""
    threads = [threading.Thread(target=device.interrupt, name=f"edgeprune-interrupt-{device.name}")
               for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def sparse_eligibility(targets: Sequence[BenchTarget]) -> dict[str, dict[str, Any] | None]:
    return {
        target.model: (target.manifest.inspection or {}).get("xnnpack_sparse") if target.manifest else None
        for target in targets
    }
