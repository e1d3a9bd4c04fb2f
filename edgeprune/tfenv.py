"""Import TensorFlow the one way that works with tfmot: Keras 2 (``tf_keras``), never Keras 3.

``TF_USE_LEGACY_KERAS`` is read once, when TensorFlow is first imported, so every module of edgeprune gets
TensorFlow through here and imports it lazily: commands that need no TensorFlow (bench, gate, report) start
fast and run where TensorFlow is not installed.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def _prepare_environment() -> None:
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        # Too late to switch Keras versions in this process; loading will say so if it matters.
        return
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow() -> ModuleType:
    _prepare_environment()
    import tensorflow as tf

    return tf


def tf_keras() -> ModuleType:
    _prepare_environment()
    import tf_keras as keras

    return keras


def tfmot() -> ModuleType:
    _prepare_environment()
    import tensorflow_model_optimization as tfmot_module

    return tfmot_module
