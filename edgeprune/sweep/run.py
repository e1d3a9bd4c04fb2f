"""``edgeprune sweep``: for the unpruned model and each target sparsity, prune and fine-tune, export the validated
variants, bench them on every device with on-device accuracy; then one results file, one sweep document and the
point to ship.

Every step is keyed by what it depends on (``steps``): a rerun with the same inputs reuses finished steps, and an
interrupted sweep continues where it stopped. One failed variant or device fails its points, never the sweep.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from ..bench.plan import BenchPlan
from ..bench.run import BenchRequest, bench
from ..convert.export import ExportRequest, export
from ..data import read_npz
from ..devices.inventory import Inventory
from ..errors import EdgepruneError, UsageError
from ..fsutil import write_json_atomic
from ..parsing import ParseError, parse_json
from ..hashing import file_sha256, tree_sha256
from ..model.loading import detect_format
from ..pruning.run import PruneRequest, check_output, prune, trainable_model
from ..pruning.sensitivity import layer_sensitivity
from ..pruning.settings import PruneSettings
from ..pruning.training_data import read_labelled
from ..results.document import ResultsDocument, read_results
from ..results.manifest import MANIFEST_FILENAME, read_manifest
from ..results.schema import RESULTS_SCHEMA, check_document
from ..results.sweep import LayerSensitivity, Sensitivity, SweepDocument, SweepStep
from ..variants import VariantSpec
from .points import SweptModel, sweep_points
from .recommend import recommend
from .steps import STEPS_DIR, StepStore, step_key

RESULTS_FILENAME = "results.json"
MARKER = ".edgeprune-sweep"
MODELS = "models"  # the pruned models
EXPORTS = "exports"  # one export folder per model
MEASUREMENTS = "measurements"  # each bench's results, each prune's report, the sensitivity ranking
OWN_FOLDERS = (MODELS, EXPORTS, MEASUREMENTS, STEPS_DIR)
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepRequest:
    model: Path
    data: Path
    eval: Path
    outdir: Path
    targets: tuple[float, ...]
    prune: PruneSettings = PruneSettings()
    validation: Path | None = None
    variants: list[VariantSpec] | None = None
    calibration: Path | None = None
    devices: Sequence[str] = ("local",)
    plan: BenchPlan = field(default_factory=BenchPlan)
    max_top1_drop: float = 1.0
    sensitivity: bool = False
    auto_skip: bool = False
    inventory: Path | None = None
    accept_new_host_key: bool = False
    trust_model_code: bool = False


@dataclass(frozen=True)
class StepEvent:
    index: int  # 1-based
    total: int
    step: str
    subject: str
    state: str  # started, done, reused
    seconds: float = 0.0


OnStep = Callable[[StepEvent], None]


def sweep(request: SweepRequest, on_step: OnStep = lambda event: None,
          on_detail: Callable[[str], None] = lambda message: None) -> SweepDocument:
    check_request(request)
    return Sweep(request, on_step, on_detail).run()


def check_request(request: SweepRequest) -> None:
    """Everything that can be checked before TensorFlow's seconds of loading."""
    if not request.targets or any(not 0.0 < target < 1.0 for target in request.targets):
        raise UsageError("--sparsity takes targets between 0 and 1, e.g. 0.5,0.7,0.8,0.9")
    if request.auto_skip and not request.sensitivity:
        raise UsageError("--auto-skip uses the --sensitivity ranking", hint="add --sensitivity")
    detect_format(request.model)
    for path in (request.data, request.eval, request.validation, request.calibration):
        if path is not None:
            read_npz(path)
    outdir = request.outdir
    if outdir.is_symlink() or (outdir.exists() and not outdir.is_dir()):
        raise UsageError(f"sweep folder '{outdir}' is not a folder", hint="choose a new SWEEPDIR")
    if outdir.is_dir() and any(outdir.iterdir()) and not (outdir / MARKER).is_file():
        raise UsageError(f"'{outdir}' holds files and is not a sweep folder (no {MARKER})",
                         hint="choose a new or empty -o folder, or the folder of an earlier sweep to resume it")
    for name in OWN_FOLDERS:
        folder = outdir / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise UsageError(f"'{folder}' is not a folder of this sweep (a link or a file)",
                             hint="remove it, or choose a new -o folder")
    check_output(outdir / MODELS / "check.keras")


class Sweep:
    def __init__(self, request: SweepRequest, on_step: OnStep, on_detail: Callable[[str], None]) -> None:
        self.request = request
        self.on_step = on_step
        self.on_detail = on_detail
        self.outdir = request.outdir
        self.store = StepStore(request.outdir)
        self.model_sha256 = tree_sha256(request.model) if request.model.is_dir() else file_sha256(request.model)
        self.training = {"model": self.model_sha256, "data": file_sha256(request.data),
                         "validation": file_sha256(request.validation) if request.validation else None}
        self.eval_sha256 = file_sha256(request.eval)
        self.inventory_sha256 = hashlib.sha256(Inventory.load(request.inventory).text.encode("utf-8")).hexdigest()
        self.steps: list[SweepStep] = []
        self.index = 0
        self.total = (int(request.sensitivity) + len(request.targets) + 2 * (len(request.targets) + 1))
        self.baseline_name = model_name(request.model, 0.0)

    def run(self) -> SweepDocument:
        for folder in (self.outdir, *(self.outdir / name for name in OWN_FOLDERS)):
            folder.mkdir(parents=True, exist_ok=True)
        (self.outdir / MARKER).touch()
        document = SweepDocument.new(self.settings_json())
        settings = self.request.prune
        if self.request.sensitivity:
            document.sensitivity = self.sensitivity()
            if self.request.auto_skip and document.sensitivity.suggested_skip:
                settings = replace(settings, skip_layers=skip_pattern(settings.skip_layers,
                                                                      document.sensitivity.suggested_skip))
                document.settings["prune"] = settings.to_json()
        models = [self.exported(self.request.model, self.baseline_name, 0.0, self.model_sha256)]
        for target in self.request.targets:
            pruned_path, report = self.pruned(settings.with_sparsity(target))
            document.prunes.append(report)
            models.append(self.exported(pruned_path, model_name(self.request.model, target), target,
                                        file_sha256(pruned_path)))
        results = [self.benched(model) for model in models]
        merged = merge_results(results, self.request)
        document.points = sweep_points(merged.runs, models, self.baseline_name)
        document.recommendation = recommend(document.points, self.request.max_top1_drop, self.request.devices[0])
        document.steps = self.steps
        document.write(self.outdir)
        write_results(self.outdir / RESULTS_FILENAME, merged)
        return document

    def settings_json(self) -> dict:
        request = self.request
        return {
            "model": str(request.model), "model_sha256": self.model_sha256,
            "data": str(request.data), "data_sha256": self.training["data"],
            "validation": str(request.validation) if request.validation else None,
            "validation_sha256": self.training["validation"],
            "eval": str(request.eval), "eval_sha256": self.eval_sha256,
            "targets": list(request.targets), "prune": request.prune.to_json(),
            "sensitivity": request.sensitivity, "auto_skip": request.auto_skip,
            "variants": [spec.name for spec in request.variants] if request.variants else None,
            "calibration": str(request.calibration) if request.calibration else None,
            "devices": list(request.devices), "bench": request.plan.to_json(),
            "max_top1_drop": request.max_top1_drop,
        }

    def step(self, step: str, subject: str, key: str, outputs: list[Path], work: Callable[[], bool],
             load: Callable[[], T]) -> T:
        """Reuse a step that finished before, when its outputs are intact and read back; else run ``work``, which
        writes ``outputs`` and says whether they are final (a bench with a failed run is not: it runs again)."""
        self.index += 1
        started = time.perf_counter()
        if self.store.finished(key, outputs):
            try:
                result = load()
            except (EdgepruneError, KeyError, TypeError, ValueError):  # outputs edited into something else
                log.debug("%s %s: its earlier outputs do not read back; running it again", step, subject,
                          exc_info=True)
            else:
                self.record(step, subject, key, started, reused=True)
                return result
        self.on_step(StepEvent(self.index, self.total, step, subject, "started"))
        if work():
            self.store.finish(key, outputs)
        result = load()
        self.record(step, subject, key, started, reused=False)
        return result

    def record(self, step: str, subject: str, key: str, started: float, *, reused: bool) -> None:
        seconds = round(time.perf_counter() - started, 3)
        self.steps.append(SweepStep(step, subject, key, reused, seconds))
        self.on_step(StepEvent(self.index, self.total, step, subject, "reused" if reused else "done", seconds))

    def sensitivity(self) -> Sensitivity:
        target = max(self.request.targets)
        settings = self.request.prune
        key = step_key("sensitivity", model=self.model_sha256, eval=self.eval_sha256, sparsity=target,
                       skip=settings.skip_layers, policy=settings.policy, m_by_n=settings.m_by_n)
        output = self.outdir / MEASUREMENTS / f"sensitivity-{key[:16]}.json"

        def work() -> bool:
            model = trainable_model(self.request.model, self.request.trust_model_code).model
            data = read_labelled(self.request.eval, tuple(model.inputs[0].shape[1:]), model.outputs[0].shape[-1])
            top1, drops = layer_sensitivity(model, data, settings, target)
            ranking = {"sparsity": target, "data": str(self.request.eval), "top1": top1,
                       "layers": [{"layer": name, "kind": kind, "top1_drop": round(drop, 4)}
                                  for name, kind, drop in drops]}
            write_json_atomic(output, ranking, what="sensitivity")
            return True

        def load() -> Sensitivity:
            ranking = read_json(output)
            layers = [LayerSensitivity(**layer) for layer in ranking["layers"]]
            # From the ranking each time: the threshold is not part of the step.
            suggested = [layer.layer for layer in layers if layer.top1_drop > self.request.max_top1_drop]
            return Sensitivity(float(ranking["sparsity"]), str(ranking["data"]), float(ranking["top1"]), layers,
                               suggested)

        return self.step("sensitivity", self.baseline_name, key, [output], work, load)

    def pruned(self, settings: PruneSettings) -> tuple[Path, dict[str, Any]]:
        name = model_name(self.request.model, settings.sparsity)
        output = self.outdir / MODELS / f"{name}.keras"
        report_file = self.outdir / MEASUREMENTS / f"prune-{name}.json"
        key = step_key("prune", **self.training, settings=settings.to_json())

        def work() -> bool:
            pruned = prune(PruneRequest(self.request.model, self.request.data, output, settings,
                                        validation=self.request.validation,
                                        trust_model_code=self.request.trust_model_code), verbose=0,
                           on_epoch=lambda epoch, logs: self.on_detail(
                               f"{name}: epoch {epoch + 1}/{settings.epochs}, loss {logs.get('loss', float('nan')):.4f}"))
            report = pruned.report.to_json() | {"output": self.store.relative(output)}
            write_json_atomic(report_file, report, what="prune report")
            return True

        def load() -> dict[str, Any]:
            report = read_json(report_file)
            if not isinstance(report.get("layers"), list):
                raise ValueError("not a prune report")
            return report

        return output, self.step("prune", name, key, [output, report_file], work, load)

    def exported(self, model: Path, name: str, sparsity: float, model_sha256: str) -> SweptModel:
        folder = self.outdir / EXPORTS / name
        key = step_key("export", model=model_sha256, calibration=file_sha256(self.request.calibration)
                       if self.request.calibration else None,
                       variants=[spec.name for spec in self.request.variants] if self.request.variants else None)

        def work() -> bool:
            export(ExportRequest(model, folder, self.request.variants, self.request.calibration,
                                 trust_model_code=self.request.trust_model_code),
                   progress=lambda message: self.on_detail(f"{name}: {message}"))
            return True

        def load() -> SweptModel:
            manifest = read_manifest(folder)
            for record in manifest.deliverables():  # the variants as exported, or the export runs again
                if file_sha256(folder / record.file) != record.sha256:
                    raise ValueError(f"{record.file} changed since the export")
            return SweptModel(name, sparsity, manifest, folder.relative_to(self.outdir))

        return self.step("export", name, key, [folder / MANIFEST_FILENAME], work, load)

    def benched(self, model: SweptModel) -> ResultsDocument:
        request = self.request
        output = self.outdir / MEASUREMENTS / f"bench-{model.name}.json"
        key = step_key("bench", manifest=file_sha256(self.outdir / model.folder / MANIFEST_FILENAME),
                       eval=self.eval_sha256, devices=list(request.devices), inventory=self.inventory_sha256,
                       plan=request.plan.to_json())

        def work() -> bool:
            document = bench(BenchRequest(
                paths=[self.outdir / model.folder], plan=request.plan, devices=request.devices, output=output,
                inventory=request.inventory, accept_new_host_key=request.accept_new_host_key,
                data=[request.eval], trust_model_code=request.trust_model_code,
            ), lambda device, message: self.on_detail(f"[{device}] {message}"))
            return all(run.ok for run in document.runs)

        return self.step("bench", model.name, key, [output], work, lambda: read_results(output))


def model_name(model: Path, sparsity: float) -> str:
    """The name a target's export folder, and so the bench, gives it: ``digits_cnn_dense-s80``."""
    stem = model.name[: -len(model.suffix)] if model.suffix else model.name
    return f"{stem}-s{sparsity * 100:g}"


def skip_pattern(existing: str | None, layers: Sequence[str]) -> str:
    names = "|".join(re.escape(layer) for layer in layers)
    return f"(?:{existing})|{names}" if existing else names


def merge_results(documents: Sequence[ResultsDocument], request: SweepRequest) -> ResultsDocument:
    merged = ResultsDocument.new({**request.plan.to_json(), "devices": list(request.devices)})
    for document in documents:
        merged.runs.extend(document.runs)
        merged.devices.update(document.devices)
        merged.sparse_inference.extend(document.sparse_inference)
    return merged


def write_results(path: Path, document: ResultsDocument) -> None:
    payload = document.to_json()
    check_document(payload, RESULTS_SCHEMA, str(path))
    write_json_atomic(path, payload, what="results file")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object this sweep wrote; anything else is a ValueError (the step then runs again)."""
    try:
        document = parse_json(path.read_bytes())
    except (OSError, ParseError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a JSON object")
    return document
