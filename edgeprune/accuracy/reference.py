"""The host side of the accuracy pass: which data fits which variant, and the reference outputs to compare with."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bench.targets import BenchTarget
from ..data import Dataset, load_dataset, read_npz
from ..errors import DataError
from ..hashing import file_sha256
from ..model.loading import load_model

log = logging.getLogger(__name__)
PREDICT_BATCH = 256


@dataclass(frozen=True)
class ModelAccuracyPlan:
    """Everything the device needs to score one model's variants."""

    dataset: Dataset
    inputs_file: Path
    inputs_sha256: str
    reference: np.ndarray | None
    reference_source: str | None


def tflite_io(path: Path) -> tuple[tuple[int, ...], int | None] | None:
    """(input shape without batch, number of output classes or None) of a .tflite file, read with LiteRT;
    None for a file LiteRT cannot read (its bench reports that, per variant)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError):
        return None
    shape = tuple(int(dim) for dim in interpreter.get_input_details()[0]["shape"][1:])
    output_shape = interpreter.get_output_details()[0]["shape"]
    classes = int(output_shape[-1]) if len(output_shape) == 2 and output_shape[-1] > 1 else None
    return shape, classes


def plan_accuracy(
    targets: Sequence[BenchTarget], data_files: Sequence[Path], reference_model: Path | None, scratch: Path
) -> dict[str, ModelAccuracyPlan]:
    """model -> its accuracy plan; each model takes the first data file whose ``x`` fits its input."""
    arrays = {path: read_npz(path) for path in data_files}
    plans: dict[str, ModelAccuracyPlan] = {}
    for target in targets:
        io = None if target.model in plans else tflite_io(target.path)
        if io is None:
            continue
        input_shape, classes = io
        path = next((p for p, a in arrays.items() if "x" in a and tuple(a["x"].shape[1:]) == input_shape), None)
        if path is None:
            files = ", ".join(f"'{p}' (x {list(a['x'].shape) if 'x' in a else 'missing'})" for p, a in arrays.items())
            raise DataError(f"no --data fits {target.label}: it expects x of shape [N, "
                            f"{', '.join(map(str, input_shape))}], given {files}")
        dataset = load_dataset(path, input_shape, classes)
        inputs_file = scratch / f"inputs-{len(plans)}.npy"
        np.save(inputs_file, dataset.x)
        reference, source = reference_outputs(target, dataset, reference_model)
        plans[target.model] = ModelAccuracyPlan(dataset, inputs_file, file_sha256(inputs_file), reference, source)
    return plans


def reference_outputs(target: BenchTarget, dataset: Dataset, override: Path | None) -> tuple[np.ndarray | None, str | None]:
    """The Keras model's outputs on the host: ``--reference`` if given, else the source the export recorded."""
    source = override
    if source is None and target.manifest is not None:
        source = Path(target.manifest.source["path"])
        if not source.exists():
            log.warning("%s: the exported model %s is gone; label-free accuracy figures are skipped", target.model, source)
            return None, None
    if source is None:
        return None, None
    loaded = load_model(source)
    if override is None and target.manifest is not None and loaded.sha256 != target.manifest.source.get("sha256"):
        log.warning("%s: %s changed since it was exported; comparing against its current contents", target.model, source)
    outputs = np.concatenate([loaded.predict(dataset.x[i:i + PREDICT_BATCH])
                              for i in range(0, len(dataset.x), PREDICT_BATCH)])
    return outputs, str(source)
