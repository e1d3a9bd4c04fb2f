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


@dataclass(frozen=True)
class TfliteIO:
    """The first input's and first output's shapes of a .tflite file, without the batch dimension."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def classes(self) -> int | None:
        """The number of classes of a classifier's [N, C] output; None for any other output."""
        return self.output_shape[0] if len(self.output_shape) == 1 and self.output_shape[0] > 1 else None


def tflite_io(path: Path) -> TfliteIO | None:
    """Read with LiteRT; None for a file LiteRT cannot read (its bench reports that, per variant)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError):
        return None
    return TfliteIO(tuple(int(dim) for dim in interpreter.get_input_details()[0]["shape"][1:]),
                    tuple(int(dim) for dim in interpreter.get_output_details()[0]["shape"][1:]))


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
        dataset = fitting_dataset(target, io.input_shape, io.classes, arrays, folders, image_range)
        inputs_file = scratch / f"inputs-{len(plans)}.npy"
        np.save(inputs_file, dataset.x)
        reference, source = reference_outputs(target, dataset, io.output_shape, reference_model)
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


def reference_outputs(
    target: BenchTarget, dataset: Dataset, output_shape: tuple[int, ...], override: Path | None,
) -> tuple[np.ndarray | None, str | None]:
    """The Keras model's outputs on the host: ``--reference`` if given, else the source the export recorded.

    A reference of another model (a wrong ``--reference``, or a source file replaced since the export) is refused
    by its shapes: its inputs must take the data, and its outputs must line up with the variant's, which the
    device pass compares them with.
    """
    if override is not None:
        source = override
        name = f"reference model '{source}'"
        hint = f"pass --reference the Keras model {target.model} was exported from"
    elif target.manifest is not None:
        source = Path(target.manifest.source["path"])
        if not source.exists():
            log.warning("%s: the exported model %s is gone; label-free accuracy figures are skipped", target.model, source)
            return None, None
        name = f"source model '{source}' (recorded in the export manifest of {target.model})"
        hint = "it is not the model that was exported: re-run edgeprune export, or pass --reference MODEL"
    else:
        return None, None
    loaded = load_model(source)
    if override is None and target.manifest is not None and loaded.sha256 != target.manifest.source.get("sha256"):
        log.warning("%s: %s changed since it was exported; comparing against its current contents", target.model, source)
    data_shape = tuple(dataset.x.shape[1:])
    if not fits(data_shape, tuple(loaded.input_shape[1:])):
        raise DataError(f"{name} expects input {batch_shape(loaded.input_shape[1:])}, but {target.label} and "
                        f"--data '{dataset.path}' have {batch_shape(data_shape)}", hint=hint)
    outputs = np.concatenate([loaded.predict(dataset.x[i:i + PREDICT_BATCH])
                              for i in range(0, len(dataset.x), PREDICT_BATCH)])
    if tuple(outputs.shape[1:]) != output_shape:
        raise DataError(f"{name} outputs {batch_shape(outputs.shape[1:])}, but {target.label} outputs "
                        f"{batch_shape(output_shape)}", hint=hint)
    return outputs, str(source)


def fits(shape: tuple[int, ...], model_shape: tuple[int | None, ...]) -> bool:
    """Whether a model input of ``model_shape`` (None: any size) takes an array of ``shape``."""
    return len(shape) == len(model_shape) and all(want in (None, have) for want, have in zip(model_shape, shape))


def batch_shape(shape: Sequence[int | None]) -> str:
    """A shape as messages write it, the batch first: [N, 8, 8, 1]."""
    return f"[{', '.join(['N', *('?' if dim is None else str(dim) for dim in shape)])}]"
