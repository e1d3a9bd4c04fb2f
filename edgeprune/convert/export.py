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
from ..numerics.comparison import LayerComparisons
from ..numerics.inputs import random_calibration, validation_inputs
from ..results.manifest import REJECTED_DIR, Manifest, VariantRecord
from ..variants import FULL_INT8, REFERENCE_VARIANT, VariantSpec, default_variants
from .converter import Converter
from .layer_check import LayerCheck, record_layers
from .output_folder import check_outdir, publish_export, writing_output
from .validation import validate_variant


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
    float_layers: str | None = None  # regex over layer names kept in float in full-int8 variants
    auto_float: bool = False  # keep the layers where an invalid full-int8 variant diverges in float, one at a time
    auto_float_max: int = 3


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
    records = []
    with RunnerClient(LocalDevice(), str(runner_script())) as runner, Converter.for_model(loaded) as converter:
        for spec in specs:
            progress(f"{spec.name}: converting")
            records.append(build_variant(converter, spec, calibration, staging, samples, reference, real_samples,
                                         runner, request.outdir))
        layer_check = LayerCheck(variant_file(staging, records, REFERENCE_VARIANT), samples, runner)
        explicit = layer_check.layer_names(request.float_layers) if request.float_layers else []
        for index, (spec, record) in enumerate(zip(specs, records)):
            if spec.name == REFERENCE_VARIANT:
                continue
            comparisons = layer_check.compare(variant_file(staging, [record], spec.name))
            record_layers(record, comparisons)
            if spec.quantization == FULL_INT8 and (explicit or (request.auto_float and not record.valid)):
                def rebuild(float_layers: list[str]) -> VariantRecord:
                    progress(f"{spec.name}: converting with {len(float_layers)} layer(s) in float")
                    return build_variant(converter, spec, calibration, staging, samples, reference, real_samples,
                                         runner, request.outdir, float_layers)

                records[index] = keep_layers_in_float(record, comparisons, explicit, request, rebuild, layer_check,
                                                      staging)
        for record in records:
            progress(f"{record.name}: {'valid' if record.valid else 'rejected (the reason follows the table)'}")
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
        samples = random_calibration(input_shape)
        return samples, {"source": "random", "samples": len(samples)}
    return None, {}


def variant_file(staging: Path, records: list[VariantRecord], name: str) -> Path | None:
    """Where variant ``name`` was written in ``staging``, shipped or rejected; None when it was never converted."""
    record = next((record for record in records if record.name == name), None)
    if record is None or (record.file or record.rejected_file) is None:
        return None
    return staging / (record.file or record.rejected_file)


def keep_layers_in_float(
    record: VariantRecord, comparisons: LayerComparisons | None, explicit: list[str], request: ExportRequest,
    rebuild: Callable[[list[str]], VariantRecord], layer_check: LayerCheck, staging: Path,
) -> VariantRecord:
    """The variant again with ``--float-layers`` in float, then, with ``--auto-float`` and while it is invalid,
    also the layer where it first diverges, one at a time, up to ``--auto-float-max`` such layers."""
    quantized_size = record.size_bytes
    floated = list(explicit)
    if floated:
        record = rebuild(floated)
        comparisons = layer_check.compare(variant_file(staging, [record], record.name))
        record_layers(record, comparisons)
    added = 0
    while request.auto_float and not record.valid and added < request.auto_float_max:
        divergent = comparisons.divergent_layer if comparisons else None
        if divergent is None or divergent.reference_tensor in floated:
            break  # nothing named, or float already and still diverging: another layer would be a guess
        floated.append(divergent.reference_tensor)
        added += 1
        record = rebuild(floated)
        comparisons = layer_check.compare(variant_file(staging, [record], record.name))
        record_layers(record, comparisons)
    if record.valid:  # an earlier attempt's rejected file is not this variant
        stale = staging / REJECTED_DIR / f"{record.name}.tflite"
        stale.unlink(missing_ok=True)
        remove_empty_folders(stale.parent, up_to=staging)
    if record.validation is not None:
        record.validation["float_layers"] = floated
        record.validation["float_layers_cost_bytes"] = (
            record.size_bytes - quantized_size if record.size_bytes is not None and quantized_size is not None
            else None)
    return record


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
    float_layers: list[str] | None = None,
) -> VariantRecord:
    """Convert, write into ``staging`` and validate one variant; ``outdir`` (for messages) is where it will land."""
    started = time.perf_counter()
    try:
        flatbuffer = converter.convert(spec, calibration, float_layers or ())
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
