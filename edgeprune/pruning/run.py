"""``edgeprune prune``: a trained Keras model and its training data in, a pruned, stripped tf_keras model out.

Inputs and the output path are checked before TensorFlow loads; the model is written beside its final name and
renamed into place, so Ctrl-C or a failure leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..data import read_npz
from ..errors import UsageError
from ..fsutil import WRITABLE_PATH_HINT, current_umask, nearest_existing, os_reason
from ..model.loading import detect_format, load_model
from .prune import PrunedModel, prune_model
from .settings import DEFAULT_VALIDATION_SHARE, PruneSettings
from .training_data import LabelledData, hold_out, read_labelled

MODEL_SUFFIXES = (".keras", ".h5")


@dataclass(frozen=True)
class PruneRequest:
    model: Path
    data: Path
    output: Path
    settings: PruneSettings = PruneSettings()
    validation: Path | None = None  # None: a share of ``data`` held out
    trust_model_code: bool = False


def prune(request: PruneRequest, *, verbose: int = 2,
          on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> PrunedModel:
    check_output(request.output)
    detect_format(request.model)
    read_npz(request.data)  # readable at all, before TensorFlow's seconds of loading
    if request.validation is not None:
        read_npz(request.validation)
    model = trainable_model(request.model, request.trust_model_code)
    train, validation = training_split(model.model, request)
    pruned = prune_model(model.model, train, validation, request.settings, name=request.model.stem,
                         sha256=model.sha256, verbose=verbose, on_epoch=on_epoch)
    save_model_atomic(pruned.model, request.output)
    pruned.report.output = str(request.output)
    return pruned


@dataclass(frozen=True)
class TrainableModel:
    model: Any  # tf_keras, compiled when it was saved with its training config
    sha256: str


def trainable_model(path: Path, trust_model_code: bool) -> TrainableModel:
    from ..model.keras3_convert import to_tf_keras

    loaded = load_model(path, trust_code=trust_model_code, compiled=True)
    if loaded.stripped:
        raise UsageError(f"model '{path}' still holds tfmot pruning wrappers",
                         hint="prune the trained model it came from, or strip_pruning it first")
    model = to_tf_keras(loaded.model, path) if loaded.is_keras3 else loaded.model
    return TrainableModel(model, loaded.sha256)


def training_split(model: Any, request: PruneRequest) -> tuple[LabelledData, LabelledData]:
    input_shape = tuple(int(dim) for dim in model.inputs[0].shape[1:] if dim is not None)
    if len(input_shape) != len(model.inputs[0].shape) - 1:
        raise UsageError(f"model '{request.model}' has an input of unknown size {list(model.inputs[0].shape)}",
                         hint="give the model a fixed input shape (keras.Input(shape=...))")
    outputs = model.outputs[0].shape[-1]
    classes = int(outputs) if outputs is not None and outputs > 1 else None  # one output: binary, labels 0/1
    train = read_labelled(request.data, input_shape, classes)
    if request.validation is None:
        return hold_out(train, DEFAULT_VALIDATION_SHARE)
    return train, read_labelled(request.validation, input_shape, classes)


def check_output(output: Path) -> None:
    if output.suffix not in MODEL_SUFFIXES:
        raise UsageError(f"output '{output}' must end in {' or '.join(MODEL_SUFFIXES)}",
                         hint="e.g. -o pruned.keras")
    if output.is_dir():
        raise UsageError(f"output '{output}' is a folder", hint="name a .keras file")
    ancestor = nearest_existing(output.parent)
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write '{output}': '{ancestor}' is not a writable folder", hint=WRITABLE_PATH_HINT)


def save_model_atomic(model: Any, output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with aside(output) as scratch:
            model.save(scratch)  # stripped models are not compiled: no optimizer state to carry
            scratch.chmod(0o666 & ~current_umask())  # mkstemp's 0600 would hide the model from the team
            os.replace(scratch, output)
    except OSError as exc:
        raise UsageError(f"cannot write '{output}': {os_reason(exc, output.parent)}",
                         hint=WRITABLE_PATH_HINT) from exc


@contextlib.contextmanager
def aside(output: Path) -> Iterator[Path]:
    """A free name beside ``output`` with its suffix (Keras picks the format by it), removed unless renamed."""
    handle, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=output.suffix)
    os.close(handle)
    scratch = Path(name)
    try:
        yield scratch
    finally:
        scratch.unlink(missing_ok=True)
