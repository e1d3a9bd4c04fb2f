"""Load the user's Keras model, whatever it was saved as, and strip tfmot pruning wrappers from it.

Formats: a tf_keras ``.keras`` zip or ``.h5`` file, a tf_keras SavedModel folder, or a Keras 3 ``.keras``
zip. Keras 3 models cannot carry tfmot wrappers (tfmot rejects them), so they never need stripping; they are
loaded with Keras 3 and converted through a SavedModel export.

A model whose config carries Python code (a Lambda layer, a custom object) is refused before Keras reads it,
unless the caller trusts its code: loading would run that code (``carried_code``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import tfenv
from ..errors import ModelLoadError
from ..hashing import file_sha256, tree_sha256
from .carried_code import find_carried_code
from .saved_config import h5_model_config, keras_zip_document, saved_model_documents

log = logging.getLogger(__name__)

KERAS_ZIP = "keras"
KERAS3_ZIP = "keras3"
H5 = "h5"
SAVED_MODEL = "saved_model"


@dataclass
class LoadedModel:
    """A model ready for conversion: stripped of pruning wrappers, with where it came from."""

    path: Path
    format: str
    sha256: str
    model: Any
    stripped: bool
    wrapped_model: Any | None = None

    @property
    def is_keras3(self) -> bool:
        return self.format == KERAS3_ZIP

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return tuple(self.model.inputs[0].shape)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's FIRST output on ``x`` (of a dict output, its first key's), the order ``pair_outputs`` in
        ``model.outputs`` pairs the Keras outputs in; a converted variant need not put it first."""
        return keras_outputs(self.model, x)[0][1]

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "format": self.format, "stripped": self.stripped}


def keras_outputs(model: Any, x: np.ndarray) -> list[tuple[str | None, np.ndarray]]:
    """Every output of a tf_keras or Keras 3 model on ``x``, in the model's own order, with its key when the model
    returns a dict."""
    outputs = model(x, training=False)
    if isinstance(outputs, dict):
        return [(str(key), np.asarray(value, dtype=np.float32)) for key, value in outputs.items()]
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [(None, np.asarray(value, dtype=np.float32)) for value in outputs]


def detect_format(path: Path) -> str:
    if not path.exists():
        raise ModelLoadError(f"model '{path}' does not exist", hint="check the path")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return SAVED_MODEL
        raise ModelLoadError(f"'{path}' is a folder without saved_model.pb", hint="pass a SavedModel folder")
    if not path.is_file():  # a FIFO or device: reading it would block or never end
        raise ModelLoadError(f"model '{path}' is not a regular file", hint="pass a .keras or .h5 file")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return H5
    if suffix == ".keras":
        return _keras_zip_flavour(path)
    if suffix == ".tflite":
        raise ModelLoadError(f"'{path}' is already a TFLite model", hint="export takes the Keras model it came from")
    raise ModelLoadError(
        f"'{path}' is not a Keras model", hint="expected a .keras or .h5 file or a SavedModel folder"
    )


def _keras_zip_flavour(path: Path) -> str:
    metadata = keras_zip_document(path, "metadata.json")
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"'{path}' is not a readable .keras archive (metadata.json is not an object)",
                             hint="re-save the model")
    version = str(metadata.get("keras_version", ""))
    return KERAS3_ZIP if version.startswith("3.") else KERAS_ZIP


def load_model(path: str | Path, *, trust_code: bool = False, compiled: bool = False) -> LoadedModel:
    """``trust_code``: load a model that carries Python code (and so run that code); else it is refused.
    ``compiled``: with the loss and optimizer it was saved with, when Keras can restore them (for training)."""
    path = Path(path)
    model_format = detect_format(path)
    if not trust_code:
        refuse_carried_code(path, model_format)
    sha256 = tree_sha256(path) if path.is_dir() else file_sha256(path)
    if model_format == KERAS3_ZIP:
        return LoadedModel(path, model_format, sha256, _load_keras3(path, trust_code), stripped=False)
    wrapped = _load_tf_keras(path, trust_code, compiled)
    if not _has_pruning_wrappers(wrapped):
        return LoadedModel(path, model_format, sha256, wrapped, stripped=False)
    stripped = tfenv.tfmot().sparsity.keras.strip_pruning(wrapped)
    return LoadedModel(path, model_format, sha256, stripped, stripped=True, wrapped_model=wrapped)


def refuse_carried_code(path: Path, model_format: str) -> None:
    """Read the config the way Keras would find it, as data, and refuse a model that carries code."""
    if model_format == H5:
        documents = [h5_model_config(path)]
    elif model_format == SAVED_MODEL:
        documents = saved_model_documents(path)
    else:
        documents = [keras_zip_document(path, "config.json")]
    for document in documents:
        found = find_carried_code(document)
        if found:
            raise ModelLoadError(f"model '{path}' carries Python code ({found}), which loading it would run",
                                 hint="pass --trust-model-code only if you trust whoever made the model")


def _load_tf_keras(path: Path, trust_code: bool, compiled: bool) -> Any:
    keras = tfenv.tf_keras()
    tfmot = tfenv.tfmot()
    try:
        # prune_scope registers tfmot's wrapper classes so still-wrapped models deserialize. safe_mode guards
        # .keras files a second time; the other formats ignore it.
        with tfmot.sparsity.keras.prune_scope():
            try:
                model = keras.models.load_model(path, compile=compiled, safe_mode=not trust_code)
            except Exception:  # a training config Keras cannot restore (e.g. a custom loss): the model still loads
                if not compiled:
                    raise
                log.debug("'%s': its training config cannot be restored; loading it without", path, exc_info=True)
                model = keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as exc:  # Keras raises many unrelated types for unreadable files
        raise ModelLoadError(
            f"cannot load '{path}' with tf_keras: {_first_line(exc)}",
            hint="save the model with tf_keras (TF_USE_LEGACY_KERAS=1) or pass a Keras 3 .keras file",
        ) from exc
    return _checked_model(model, keras.Model, path)


def _load_keras3(path: Path, trust_code: bool) -> Any:
    tfenv.tensorflow()
    try:
        import keras
    except ImportError as exc:
        raise ModelLoadError(f"'{path}' is a Keras 3 model but Keras 3 is not installed", hint="pip install keras") from exc
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as exc:  # Keras raises many unrelated types for unreadable files
        raise ModelLoadError(f"cannot load Keras 3 model '{path}': {_first_line(exc)}") from exc
    return _checked_model(model, keras.Model, path)


def _checked_model(loaded: Any, model_class: type, path: Path) -> Any:
    """Keras hands back whatever a damaged config deserializes to (a dict, a layer) instead of failing."""
    if not isinstance(loaded, model_class):
        raise ModelLoadError(f"'{path}' does not hold a Keras model (it loads as a {type(loaded).__name__})",
                             hint="re-save the model")
    return loaded


def _has_pruning_wrappers(model: Any) -> bool:
    tfenv.tfmot()
    # tfmot exports no public name for its wrapper class; strip_pruning itself tests against this one.
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    return any(isinstance(layer, PruneLowMagnitude) for layer in _all_layers(model))


def _all_layers(model: Any):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
