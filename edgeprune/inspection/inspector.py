"""``inspect_path``: the one entry point, choosing the reader by what the path holds."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from .keras_model import inspect_keras
from .report import InspectionReport
from .tflite_model import inspect_tflite


def inspect_path(path: Path) -> InspectionReport:
    """Weight statistics and the XNNPACK sparse verdict of a .tflite file or a Keras model (.keras, .h5, SavedModel)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model '{path}' does not exist", hint="check the path")
    if path.suffix.lower() == ".tflite":
        return inspect_tflite(path)
    return inspect_keras(path)
