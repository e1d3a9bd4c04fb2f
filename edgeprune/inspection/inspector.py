"""Entry points: ``inspect_path`` chooses the reader by what the path holds; ``inspect_loaded_model`` serves
``export``, which has the Keras model loaded already."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from ..model.loading import LoadedModel
from .keras_model import inspect_keras, inspect_loaded
from .report import InspectionReport
from .tflite_model import inspect_tflite


def inspect_path(path: Path, *, trust_model_code: bool = False) -> InspectionReport:
    """Weight statistics and XNNPACK sparse verdict of a .tflite file or a Keras model (.keras, .h5, SavedModel);
    ``trust_model_code`` as for ``load_model``."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model '{path}' does not exist", hint="check the path")
    if path.suffix.lower() == ".tflite":
        return inspect_tflite(path)
    return inspect_keras(path, trust_code=trust_model_code)


def inspect_loaded_model(loaded: LoadedModel) -> InspectionReport:
    """The inspection of an already loaded Keras model, as ``inspect_path`` gives it for the model's file."""
    return inspect_loaded(loaded)
