"""Keras model -> TFLite flatbuffer for one variant, with the converter settings that variant means."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .. import tfenv
from ..errors import ConversionError
from ..model.loading import LoadedModel
from ..nativeio import native_output_to_log
from ..variants import DYNAMIC_RANGE_INT8, FLOAT16, FULL_INT8, VariantSpec

CALIBRATION_SAMPLES = 200


class Converter:
    """Builds a fresh ``TFLiteConverter`` per variant (converters keep state) from one loaded model."""

    def __init__(self, loaded: LoadedModel, saved_model_dir: Path | None) -> None:
        self._loaded = loaded
        self._saved_model_dir = saved_model_dir

    @classmethod
    @contextlib.contextmanager
    def for_model(cls, loaded: LoadedModel) -> Iterator["Converter"]:
        if not loaded.is_keras3:
            yield cls(loaded, None)
            return
        # The TF converter understands Keras 2 objects only; a Keras 3 model goes through a SavedModel.
        with tempfile.TemporaryDirectory(prefix="edgeprune-savedmodel-") as folder:
            try:
                loaded.model.export(folder, format="tf_saved_model", verbose=False)
            except Exception as exc:  # Keras raises many unrelated types
                raise ConversionError(f"cannot export Keras 3 model '{loaded.path}' to a SavedModel: {exc}") from exc
            yield cls(loaded, Path(folder))

    def convert(self, spec: VariantSpec, calibration: np.ndarray | None, float_layers: Sequence[str] = ()) -> bytes:
        """The variant's flatbuffer; ``float_layers`` (op output names, full-int8 variants only) stay in float."""
        tf = tfenv.tensorflow()
        converter = self._new_converter(tf)
        configure(converter, tf, spec, calibration)
        try:
            with native_output_to_log(f"converter ({spec.name})"), warnings.catch_warnings():
                # int8 input/output types are set on purpose; TF warns about their missing statistics anyway.
                warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
                # The QuantizationDebugger (float layers) runs the calibrated model in TF's own interpreter.
                warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
                if float_layers:
                    return with_float_layers(converter, tf, calibration, float_layers)
                return bytes(converter.convert())
        except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError ...
            raise ConversionError(f"{spec.name}: the TFLite converter failed: {first_line(exc)}") from exc

    def _new_converter(self, tf: Any) -> Any:
        if self._saved_model_dir is not None:
            return tf.lite.TFLiteConverter.from_saved_model(str(self._saved_model_dir))
        return tf.lite.TFLiteConverter.from_keras_model(self._loaded.model)


def configure(converter: Any, tf: Any, spec: VariantSpec, calibration: np.ndarray | None) -> None:
    optimizations = []
    if spec.quantization in (FLOAT16, DYNAMIC_RANGE_INT8, FULL_INT8):
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if spec.sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if spec.quantization == FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    if spec.quantization == FULL_INT8:
        if calibration is None:
            raise ConversionError(f"{spec.name}: full integer quantization needs calibration data")
        converter.representative_dataset = representative_dataset(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


def with_float_layers(converter: Any, tf: Any, calibration: np.ndarray | None, layers: Sequence[str]) -> bytes:
    """Full-int8 with ``layers`` left in float, through the converter's QuantizationDebugger denylist (its supported
    route: calibrate, then quantize all but the denylisted nodes). Float kernels must be allowed for them, and the
    model's inputs and outputs stay float, as that route makes them."""
    if calibration is None:
        raise ValueError("layers can be kept in float only in full-int8 variants, which need calibration data")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(layers))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=representative_dataset(calibration), debug_options=options)
    return bytes(debugger.get_nondebug_quantized_model())


def representative_dataset(calibration: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    def samples() -> Iterator[list[np.ndarray]]:
        for sample in calibration[:CALIBRATION_SAMPLES]:
            yield [sample[np.newaxis].astype(np.float32)]

    return samples


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # TF's converter errors start with a location line; the reason is usually the first 'error:' line.
    reason = next((line for line in lines if "error:" in line), lines[0] if lines else type(exc).__name__)
    return reason[:300]
