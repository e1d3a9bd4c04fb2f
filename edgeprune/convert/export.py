"""``edgeprune export``: a pruned Keras model in, a folder of validated TFLite variants and a manifest out."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__, tfenv
from ..board.runner import RunnerClient, runner_script
from ..data import checked_inputs, read_npz
from ..devices.local import LocalDevice
from ..errors import ConversionError, UsageError
from ..fsutil import nearest_existing, remove_empty_folders, staging_dir_for
from ..hashing import file_sha256
from ..inspection import inspect_loaded_model
from ..model.loading import LoadedModel, detect_format, load_model
from ..model.outputs import ReferenceOutput, reference_outputs
from ..model.tflite_file import sparse_tensor_count
from ..results.manifest import Manifest, VariantRecord
from .converter import Converter
from .output_folder import REJECTED_DIR, check_outdir, publish_export, writing_output
from .validation import validate_variant
from ..variants import VariantSpec, default_variants


VALIDATION_SAMPLES = 32
# The converter sparse-encodes a weight tensor from 30% zeros on; below that no sparse variant differs.
SPARSE_ENCODING_THRESHOLD = 0.3


@dataclass(frozen=True)
class ExportRequest:
    model: Path
    outdir: Path
    variants: list[VariantSpec] | None = None
    calibration: Path | None = None
    random_calibration: bool = False
    trust_model_code: bool = False


Progress = Callable[[str], None]


def export(request: ExportRequest, progress: Progress = lambda message: None) -> Manifest:
    target = check_outdir(request.outdir)
    # Everything that can be checked without TensorFlow is checked before its seconds of loading: the model's
    # format, the calibration file, and (by making the staging folder) that OUTDIR can be written.
    detect_format(request.model)
    calibration_arrays = read_npz(request.calibration) if request.calibration is not None else None
    existing = nearest_existing(target.parent)
    staging = staging_dir_for(target)
    try:
        manifest = build_export(request, calibration_arrays, staging, progress)
        publish_export(staging, target, request.outdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty_folders(target.parent, up_to=existing)  # the parents the staging folder needed
        raise
    manifest.folder = request.outdir
    return manifest


def build_export(request: ExportRequest, calibration_arrays: dict[str, np.ndarray] | None, staging: Path,
                 progress: Progress) -> Manifest:
    """Convert and validate every variant into ``staging``; write its manifest there."""
    loaded = load_model(request.model, trust_code=request.trust_model_code)
    input_shape = model_input_shape(loaded)
    calibration, calibration_info = calibration_for(request, calibration_arrays, input_shape)
    if calibration_info.get("source") == "random":
        progress("warning: full-int8 variants are calibrated on random inputs: their accuracy is meaningless")
    inspection = inspect_loaded_model(loaded)
    most_zeros = max((layer.sparsity or 0.0 for layer in inspection.layers), default=0.0)
    specs = request.variants or default_variants(
        has_sparsity=most_zeros >= SPARSE_ENCODING_THRESHOLD,
        has_calibration=calibration is not None,
    )
    missing_calibration = [spec.name for spec in specs if spec.needs_calibration and calibration is None]
    if missing_calibration:
        raise UsageError(
            f"variant '{missing_calibration[0]}' needs calibration data",
            hint="pass --calibration DATA.npz (array 'x'), or --random-calibration to accept meaningless accuracy",
        )
    samples, real_samples = validation_inputs(calibration, input_shape,
                                              real=calibration_info.get("source") != "random")
    reference = reference_outputs(loaded.model, samples)
    runner = RunnerClient(LocalDevice(), str(runner_script()))
    records = []
    with Converter.for_model(loaded) as converter:
        for spec in specs:
            progress(f"{spec.name}: converting")
            record = build_variant(converter, spec, calibration, staging, samples, reference, real_samples, runner,
                                   request.outdir)
            progress(f"{spec.name}: {'valid' if record.valid else 'rejected (the reason follows the table)'}")
            records.append(record)
    manifest = Manifest(
        source=loaded.describe() | {"path": str(loaded.path.resolve())},
        input={"shape": [None, *input_shape], "dtype": "float32"},
        variants=records,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        edgeprune_version=__version__,
        tensorflow_version=tfenv.tensorflow().__version__,
        calibration=calibration_info or None,
        inspection=inspection.to_json(),
    )
    manifest.write(staging)
    return manifest


def model_input_shape(loaded: LoadedModel) -> tuple[int, ...]:
    shape = loaded.input_shape[1:]
    if any(dim is None for dim in shape):
        raise UsageError(
            f"model '{loaded.path}' has an input with unknown dimensions {list(loaded.input_shape)}",
            hint="give the model a fixed input shape (keras.Input(shape=...)) before exporting",
        )
    return tuple(int(dim) for dim in shape)


def calibration_for(request: ExportRequest, arrays: dict[str, np.ndarray] | None,
                    input_shape: tuple[int, ...]) -> tuple[np.ndarray | None, dict]:
    if request.calibration is not None and arrays is not None:
        x = checked_inputs(request.calibration, arrays, input_shape)
        return x, {"source": str(request.calibration.resolve()), "sha256": file_sha256(request.calibration),
                   "samples": int(len(x))}
    if request.random_calibration:
        rng = np.random.default_rng(0)
        return rng.random((100, *input_shape), dtype=np.float32), {"source": "random", "samples": 100}
    return None, {}


def validation_inputs(
    calibration: np.ndarray | None, input_shape: tuple[int, ...], *, real: bool = True
) -> tuple[np.ndarray, bool]:
    """Inputs to validate on, and whether they are real data (the top-1 agreement floor applies only then).

    A full-int8 variant only represents inputs inside the range it was calibrated on, so with
    ``--random-calibration`` it is validated on those random samples (``real=False``), not on other noise. Without
    calibration data there is no full-int8 variant, and the others are run on standard normal inputs.
    """
    if calibration is not None:
        return calibration[:VALIDATION_SAMPLES].astype(np.float32), real
    rng = np.random.default_rng(0)
    return rng.standard_normal((VALIDATION_SAMPLES, *input_shape)).astype(np.float32), False


def build_variant(
    converter: Converter,
    spec: VariantSpec,
    calibration: np.ndarray | None,
    staging: Path,
    samples: np.ndarray,
    reference: list[ReferenceOutput],
    real_samples: bool,
    runner: RunnerClient,
    outdir: Path,
) -> VariantRecord:
    """Convert, write into ``staging`` and validate one variant; ``outdir`` (for messages) is where it will land."""
    started = time.perf_counter()
    try:
        flatbuffer = converter.convert(spec, calibration)
    except ConversionError as exc:
        return VariantRecord(spec.name, spec.quantization, spec.sparse, None, None, None, None, None,
                             False, exc.message, None, time.perf_counter() - started)
    conversion_seconds = time.perf_counter() - started
    path = staging / f"{spec.name}.tflite"
    writing_output(outdir, lambda: path.write_bytes(flatbuffer))
    validation = validate_variant(path, spec, samples, reference, real_inputs=real_samples, runner=runner)
    record = VariantRecord(
        name=spec.name,
        quantization=spec.quantization,
        sparse=spec.sparse,
        file=path.name,
        size_bytes=len(flatbuffer),
        gzip_bytes=len(gzip.compress(flatbuffer, compresslevel=9, mtime=0)),
        sha256=hashlib.sha256(flatbuffer).hexdigest(),
        sparse_tensors=sparse_tensor_count(flatbuffer),
        valid=validation.valid,
        error=validation.error,
        validation=validation.to_json(),
        conversion_seconds=round(conversion_seconds, 3),
    )
    if not validation.valid:
        # Kept for bug reports, out of the deliverables' way.
        def reject() -> None:
            (staging / REJECTED_DIR).mkdir(exist_ok=True)
            path.rename(staging / REJECTED_DIR / path.name)

        writing_output(outdir, reject)
        record.file = None
        record.rejected_file = f"{REJECTED_DIR}/{path.name}"
    return record
