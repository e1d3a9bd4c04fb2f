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
from ..image_folder import DEFAULT_IMAGE_RANGE, ImageFolder, feeds, load_image_folder, scan_image_folder
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
    targets: Sequence[BenchTarget], data_files: Sequence[Path], reference_model: Path | None, scratch: Path,
    image_range: tuple[float, float] = DEFAULT_IMAGE_RANGE,
) -> dict[str, ModelAccuracyPlan]:
    """model -> its accuracy plan, on the data set that fits it (see ``fitting_dataset``)."""
    arrays = {path: read_npz(path) for path in data_files if not path.is_dir()}
    folders = [scan_image_folder(path) for path in data_files if path.is_dir()]
    plans: dict[str, ModelAccuracyPlan] = {}
    for target in targets:
        io = None if target.model in plans else tflite_io(target.path)
        if io is None:
            continue
        input_shape, classes = io
        dataset = fitting_dataset(target, input_shape, classes, arrays, folders, image_range)
        inputs_file = scratch / f"inputs-{len(plans)}.npy"
        np.save(inputs_file, dataset.x)
        reference, source = reference_outputs(target, dataset, reference_model)
        plans[target.model] = ModelAccuracyPlan(dataset, inputs_file, file_sha256(inputs_file), reference, source)
    return plans


def fitting_dataset(
    target: BenchTarget, input_shape: tuple[int, ...], classes: int | None, arrays: dict[Path, dict[str, np.ndarray]],
    folders: Sequence[ImageFolder], image_range: tuple[float, float],
) -> Dataset:
    """The first .npz whose ``x`` has exactly the model's input shape; else, for an image model, the first image
    folder (images are resized, so a folder fits every image model and an exact .npz is preferred)."""
    path = next((p for p, a in arrays.items() if "x" in a and tuple(a["x"].shape[1:]) == input_shape), None)
    if path is not None:
        return load_dataset(path, input_shape, classes)
    if folders and feeds(input_shape):
        return load_image_folder(folders[0], input_shape, classes, image_range)
    given = [f"'{p}' (x {list(a['x'].shape) if 'x' in a else 'missing'})" for p, a in arrays.items()]
    given += [f"'{folder.path}' (images, for [N, H, W, 1 or 3] inputs)" for folder in folders]
    raise DataError(f"no --data fits {target.label}: it expects x of shape [N, "
                    f"{', '.join(map(str, input_shape))}], given {', '.join(given)}")


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
