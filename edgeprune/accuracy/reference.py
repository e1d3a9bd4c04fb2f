"""The host side of the accuracy pass: which data fits which variant, and the reference outputs to compare with."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from ..data import Dataset, load_dataset, read_npz
from ..errors import DataError
from ..hashing import file_sha256
from ..image_folder import (ImageFolder, feeds, is_image_folder, load_image_folder,
                            scan_image_folder)
from ..model.loading import LoadedModel, load_model
from ..model.outputs import pair_outputs
from ..model.outputs import reference_outputs as keras_outputs
from ..results.manifest import Manifest

log = logging.getLogger(__name__)
PREDICT_BATCH = 256


class MeasuredVariant(Protocol):
    """What the accuracy pass needs of a variant a bench measures (bench's ``BenchTarget`` is one): stated here so
    that accuracy, below bench, does not import it."""

    @property
    def model(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def sha256(self) -> str: ...
    @property
    def manifest(self) -> Manifest | None: ...
    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class ModelAccuracyPlan:
    """Everything the device needs to score one model's variants."""

    dataset: Dataset
    inputs_file: Path
    inputs_sha256: str
    reference: np.ndarray | None
    reference_source: str | None
    # Variant sha256 -> which of its outputs (the runner's ``output_N``) is the Keras model's first output, the one
    # scored. The converter reorders the outputs of a multi-output model; a variant not listed is scored on output 0.
    heads: Mapping[str, int] = field(default_factory=dict)

    def head(self, variant_sha256: str) -> int:
        return self.heads.get(variant_sha256, 0)


@dataclass(frozen=True)
class TfliteIO:
    """The first input's shape and every output's shape (in the runner's ``output_N`` order) of a .tflite file,
    without the batch dimension."""

    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]


def classes_of(output_shape: tuple[int, ...]) -> int | None:
    """The number of classes of a classifier's [N, C] output; None for any other output."""
    return output_shape[0] if len(output_shape) == 1 and output_shape[0] > 1 else None


def tflite_io(path: Path) -> TfliteIO | None:
    """Read with LiteRT; None for a file LiteRT cannot read (its bench reports that, per variant)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError):
        return None
    outputs = interpreter.get_output_details()
    return TfliteIO(tuple(int(dim) for dim in interpreter.get_input_details()[0]["shape"][1:]),
                    tuple(tuple(int(dim) for dim in output["shape"][1:]) for output in outputs))


@dataclass(frozen=True)
class KerasReference:
    """The Keras model a model's variants are compared with, and how a refusal names it."""

    loaded: LoadedModel
    source: Path
    name: str
    hint: str


def plan_accuracy(
    targets: Sequence[MeasuredVariant], data_files: Sequence[Path], reference_model: Path | None, scratch: Path,
    image_range: tuple[float, float], *, trust_model_code: bool = False,
) -> dict[str, ModelAccuracyPlan]:
    """model -> its accuracy plan, on the data set that fits it (see ``fitting_dataset``). A Keras model that
    carries Python code is compared with only under ``trust_model_code`` (see ``load_model``).

    The figures are for the Keras model's first output. A variant with several outputs is scored on the one that
    pairs with it (``pair_outputs``: by signature name, else by shape), which the converter need not put first.
    """
    folder_paths = [path for path in data_files if is_image_folder(path)]
    arrays = {path: read_npz(path) for path in data_files if path not in folder_paths}
    folders = [scan_image_folder(path) for path in folder_paths]
    plans: dict[str, ModelAccuracyPlan] = {}
    for target in targets:
        io = None if target.model in plans else tflite_io(target.path)
        if io is None:
            continue
        keras: KerasReference | None = None
        heads: dict[str, int] = {}
        multi_output = len(io.output_shapes) > 1
        if multi_output:  # which output is scored decides the classes the labels are checked against
            keras = open_reference(target, reference_model, trust_model_code)
            variants = [other for other in targets if other.model == target.model]
            heads = output_heads(target, variants, keras, io.input_shape) if keras is not None else {}
            if keras is None:
                log.warning("%s has %d outputs and no Keras model to tell which is its first: scoring output 0",
                            target.model, len(io.output_shapes))
        output_shape = io.output_shapes[heads.get(target.sha256, 0)]
        # A Keras model that cannot take the input leaves the scored output unknown; it is refused below, naming the
        # data, before any label is checked against a guessed number of classes.
        classes = None if multi_output and keras is not None and not heads else classes_of(output_shape)
        dataset = fitting_dataset(target, io.input_shape, classes, arrays, folders, image_range)
        inputs_file = scratch / f"inputs-{len(plans)}.npy"
        np.save(inputs_file, dataset.x)
        if not multi_output:
            keras = open_reference(target, reference_model, trust_model_code)
        reference, source = reference_outputs(target, dataset, output_shape, keras)
        plans[target.model] = ModelAccuracyPlan(dataset, inputs_file, file_sha256(inputs_file), reference, source,
                                                heads)
    return plans


def fitting_dataset(
    target: MeasuredVariant, input_shape: tuple[int, ...], classes: int | None, arrays: dict[Path, dict[str, np.ndarray]],
    folders: Sequence[ImageFolder], image_range: tuple[float, float],
) -> Dataset:
    """The first .npz whose ``x`` has exactly the model's input shape; else, for an image model, the first image
    folder (images are resized, so a folder fits every image model and an exact .npz is preferred)."""
    path = next((p for p, a in arrays.items() if "x" in a and tuple(a["x"].shape[1:]) == input_shape), None)
    if path is not None:
        return load_dataset(path, arrays[path], input_shape, classes)
    if folders and feeds(input_shape):
        return load_image_folder(folders[0], input_shape, classes, image_range)
    given = [f"'{p}' (x {list(a['x'].shape) if 'x' in a else 'missing'})" for p, a in arrays.items()]
    given += [f"'{folder.path}' (images, for [N, H, W, 1 or 3] inputs)" for folder in folders]
    raise DataError(f"no --data fits {target.label}: it expects x of shape [N, "
                    f"{', '.join(map(str, input_shape))}], given {', '.join(given)}")


def open_reference(target: MeasuredVariant, override: Path | None, trust_code: bool = False) -> KerasReference | None:
    """The Keras model to compare ``target``'s variants with: ``--reference`` if given, else the source the export
    recorded; None when there is neither."""
    if override is not None:
        source = override
        name = f"reference model '{source}'"
        hint = f"pass --reference the Keras model {target.model} was exported from"
    elif target.manifest is not None:
        source = Path(target.manifest.source["path"])
        if not source.exists():
            log.warning("%s: the exported model %s is gone; label-free accuracy figures are skipped", target.model, source)
            return None
        name = f"source model '{source}' (recorded in the export manifest of {target.model})"
        hint = "it is not the model that was exported: re-run edgeprune export, or pass --reference MODEL"
    else:
        return None
    loaded = load_model(source, trust_code=trust_code)
    if override is None and target.manifest is not None and loaded.sha256 != target.manifest.source.get("sha256"):
        log.warning("%s: %s changed since it was exported; comparing against its current contents", target.model, source)
    return KerasReference(loaded, source, name, hint)


def output_heads(
    target: MeasuredVariant, variants: Sequence[MeasuredVariant], keras: KerasReference, input_shape: tuple[int, ...],
) -> dict[str, int]:
    """Variant sha256 -> the position of its output that is the Keras model's first, for ``target`` (whose
    outputs must pair with the Keras model's, or it is refused) and the other variants of its model.

    Empty when the Keras model cannot take the variant's input: ``reference_outputs`` refuses it, naming the data.
    """
    if not fits(input_shape, tuple(keras.loaded.input_shape[1:])):
        return {}
    probe = keras_outputs(keras.loaded.model, np.zeros((1, *input_shape), dtype=np.float32))
    heads: dict[str, int] = {}
    for variant in variants:
        pairing = pair_outputs(variant.path, probe)
        if isinstance(pairing, str):
            if variant is target:
                raise DataError(f"{keras.name} does not match {target.label}: {pairing}", hint=keras.hint)
            log.warning("%s: %s; scoring its output 0", variant.label, pairing)
            continue
        heads[variant.sha256] = pairing[0]
    return heads


def reference_outputs(
    target: MeasuredVariant, dataset: Dataset, output_shape: tuple[int, ...], keras: KerasReference | None,
) -> tuple[np.ndarray | None, str | None]:
    """The Keras model's first output on the host (None without a Keras model), and where that model is.

    A reference of another model (a wrong ``--reference``, or a source file replaced since the export) is refused
    by its shapes: its inputs must take the data, and its first output must have the shape of the variant's output
    the device pass compares it with (``output_shape``).
    """
    if keras is None:
        return None, None
    loaded, name, hint = keras.loaded, keras.name, keras.hint
    data_shape = tuple(dataset.x.shape[1:])
    if not fits(data_shape, tuple(loaded.input_shape[1:])):
        raise DataError(f"{name} expects input {batch_shape(loaded.input_shape[1:])}, but {target.label} and "
                        f"--data '{dataset.path}' have {batch_shape(data_shape)}", hint=hint)
    outputs = np.concatenate([loaded.predict(dataset.x[i:i + PREDICT_BATCH])
                              for i in range(0, len(dataset.x), PREDICT_BATCH)])
    if tuple(outputs.shape[1:]) != output_shape:
        raise DataError(f"{name} outputs {batch_shape(outputs.shape[1:])}, but {target.label} outputs "
                        f"{batch_shape(output_shape)}", hint=hint)
    return outputs, str(keras.source)


def fits(shape: tuple[int, ...], model_shape: tuple[int | None, ...]) -> bool:
    """Whether a model input of ``model_shape`` (None: any size) takes an array of ``shape``."""
    return len(shape) == len(model_shape) and all(want in (None, have) for want, have in zip(model_shape, shape))


def batch_shape(shape: Sequence[int | None]) -> str:
    """A shape as messages write it, the batch first: [N, 8, 8, 1]."""
    return f"[{', '.join(['N', *('?' if dim is None else str(dim) for dim in shape)])}]"
