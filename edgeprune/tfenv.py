"""Import TensorFlow the one way that works with tfmot: Keras 2 (``tf_keras``), never Keras 3.

``TF_USE_LEGACY_KERAS`` is read once, when TensorFlow is first imported, so every module of edgeprune gets
TensorFlow through here and imports it lazily: commands that need no TensorFlow (bench, gate, report) start
fast and run where TensorFlow is not installed.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

from .nativeio import native_output_to_log

log = logging.getLogger(__name__)


def tensorflow() -> ModuleType:
    if "tensorflow" in sys.modules:
        # Imported already (by a caller of the library): too late to switch Keras versions or hide its logs;
        # loading a model says so if the Keras version matters.
        return sys.modules["tensorflow"]
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow's native libraries log through absl before TF_CPP_MIN_LOG_LEVEL is read (oneDNN, CUDA stubs,
    # and a cuInit error when it first lists its devices): that chatter goes to the debug log, not the user.
    with native_output_to_log("importing TensorFlow"):
        import tensorflow as tf

        tf.config.list_logical_devices()
    if not log.isEnabledFor(logging.DEBUG):
        tf.get_logger().setLevel(logging.ERROR)  # its Python-side advice ("compiled metrics have yet to be built")
    return tf


def tf_keras() -> ModuleType:
    tensorflow()
    import tf_keras as keras

    return keras


def tfmot() -> ModuleType:
    tensorflow()
    import tensorflow_model_optimization as tfmot_module

    return tfmot_module
