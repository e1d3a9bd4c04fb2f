"""edgeprune inspect's figures against counts worked out by hand (issue 13).

Constants shared by several operators count once; MediaPipe's Convolution2DTransposeBias custom op is counted and
any other custom op is named as left out of the MAC totals; every convolution kind and Dense on a sequence gets
its MACs right (or unknown, never wrong), the same from Keras as from its real TFLite conversion. The models are
tiny tf_keras models with random weights, pruned to exactly half zeros, converted with the real converter; the
shared-buffer and custom-op files are converted models edited with TensorFlow's flatbuffer object API, and run
with LiteRT to show the edit is a model the runtime executes as intended.
"""

from __future__ import annotations

import argparse
import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edgeprune import tfenv
from edgeprune.commands import inspect as inspect_command
from edgeprune.inspection import inspect_path, render_inspection

HALF = 0.5
UNKNOWN_SIZE = "its size depends on an input dimension the model leaves open"
# TfLiteTransposeConvParams, the custom options MediaPipe's op reads: padding (1 SAME, 2 VALID), stride w, h.
TFLITE_PADDING_VALID = 2


# --- helpers ---------------------------------------------------------------------------------------------------


def pruned(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Magnitudes 0.1..1 (none rounds to zero in fp16) with exactly half the values zero."""
    values = (rng.uniform(0.1, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)).reshape(-1)
    values[rng.permutation(values.size)[: round(HALF * values.size)]] = 0.0
    return values.reshape(shape).astype(np.float32)


def prune_every_kernel(model, seed: int = 0):
    """Half of each kernel zero; biases non-zero, so the converter keeps them."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights(
                [pruned(w.shape, rng) if w.ndim >= 2 else rng.uniform(0.1, 1.0, w.shape).astype(np.float32)
                 for w in weights]
            )
    return model


def convert(model, *, float16: bool = False) -> bytes:
    tf = tfenv.tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def schema():
    tfenv.tensorflow()
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def unpack(data: bytes):
    return schema().ModelT.InitFromPackedBuf(data, 0)


def pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def operator_names(model) -> list[str]:
    builtin = {value: name for name, value in vars(schema().BuiltinOperator).items() if not name.startswith("_")}
    return [
        builtin[max(model.operatorCodes[op.opcodeIndex].builtinCode,
                    model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
        for op in model.subgraphs[0].operators
    ]


def operators_of(model, name: str) -> list:
    return [op for op, kind in zip(model.subgraphs[0].operators, operator_names(model)) if kind == name]


def run_litert(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def zeros_of(*arrays: np.ndarray) -> int:
    return sum(int(array.size - np.count_nonzero(array)) for array in arrays)


def inspect_cli(path: Path, capsys, *options: str) -> str:
    """What ``edgeprune inspect PATH [OPTIONS]`` prints: its sub-command, parsed and run."""
    parser = argparse.ArgumentParser()
    inspect_command.register(parser.add_subparsers())
    args = parser.parse_args(["inspect", str(path), *options])
    assert args.handler(args) == 0
    return capsys.readouterr().out


# --- a constant read by several operators counts once ----------------------------------------------------------


def twin_layers_model():
    """conv a -> conv b -> depthwise a -> depthwise b on 10x10x8; each pair with one kernel, all four one bias."""
    keras = tfenv.tf_keras()
    layers = keras.layers
    inputs = keras.Input((10, 10, 8))
    x = layers.Conv2D(8, 3, padding="same", name="conv_a")(inputs)
    x = layers.Conv2D(8, 3, padding="same", name="conv_b")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw_a")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw_b")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(1)
    kernel, depthwise_kernel = pruned((3, 3, 8, 8), rng), pruned((3, 3, 8, 1), rng)
    bias = rng.uniform(0.1, 1.0, 8).astype(np.float32)
    for name in ("conv_a", "conv_b"):
        model.get_layer(name).set_weights([kernel, bias])
    for name in ("dw_a", "dw_b"):
        model.get_layer(name).set_weights([depthwise_kernel, bias])
    return model, kernel, depthwise_kernel, bias


@pytest.mark.slow
def test_float16_constants_shared_through_one_dequantize_count_once(tmp_path, capsys):
    # The converter stores equal constants once; in an fp16 model each reaches its readers through one
    # DEQUANTIZE, as the bias of palm_detection_full.tflite reaches 11 depthwise convolutions.
    model, kernel, depthwise_kernel, bias = twin_layers_model()
    path = tmp_path / "twins-fp16.tflite"
    path.write_bytes(convert(model, float16=True))
    flatbuffer = unpack(path.read_bytes())
    convolutions = [*operators_of(flatbuffer, "CONV_2D"), *operators_of(flatbuffer, "DEPTHWISE_CONV_2D")]
    assert len({int(op.inputs[2]) for op in convolutions}) == 1  # one bias tensor for all four
    assert len(operators_of(flatbuffer, "DEQUANTIZE")) == 3  # conv kernel, depthwise kernel, bias

    report = inspect_path(path)

    conv_macs = 10 * 10 * kernel.size  # out_h*out_w * (out_c*k_h*k_w*in_c), once per convolution
    depthwise_macs = 10 * 10 * depthwise_kernel.size
    totals = report.totals
    assert totals.params == kernel.size + depthwise_kernel.size + bias.size  # 656, not 1,328
    assert (totals.weights, totals.zeros) == (kernel.size + depthwise_kernel.size, zeros_of(kernel, depthwise_kernel))
    assert totals.shared_constants == 3
    assert totals.dense_macs == 2 * conv_macs + 2 * depthwise_macs
    assert totals.effective_macs == round(HALF * (2 * conv_macs + 2 * depthwise_macs))
    # Each op still reads its kernel and the bias.
    assert [layer.params for layer in report.layers] == [kernel.size + bias.size] * 2 + [
        depthwise_kernel.size + bias.size
    ] * 2
    unique = kernel.size + depthwise_kernel.size + bias.size
    assert f"totals: {unique} params in 4 layers (3 constants read by several ops counted once);" in inspect_cli(
        path, capsys
    )


@pytest.mark.slow
def test_two_tensors_on_one_buffer_count_it_once(tmp_path):
    model, kernel, depthwise_kernel, bias = twin_layers_model()
    model.get_layer("conv_b").set_weights([pruned(kernel.shape, np.random.default_rng(2)), bias * 2])
    flatbuffer = unpack(convert(model))
    first, second = operators_of(flatbuffer, "CONV_2D")
    tensors, buffers = flatbuffer.subgraphs[0].tensors, flatbuffer.buffers
    # conv_b's filter tensor now reads conv_a's buffer; its own buffer is emptied, as a deduplicating writer leaves it.
    orphan = tensors[int(second.inputs[1])].buffer
    tensors[int(second.inputs[1])].buffer = tensors[int(first.inputs[1])].buffer
    buffers[orphan].data = None
    path = tmp_path / "one-buffer.tflite"
    path.write_bytes(pack(flatbuffer))
    x = np.random.default_rng(3).uniform(size=(1, 10, 10, 8)).astype(np.float32)
    model.get_layer("conv_b").set_weights([kernel, bias * 2])
    np.testing.assert_allclose(run_litert(path.read_bytes(), x), model(x).numpy(), rtol=1e-4, atol=1e-4)

    totals = inspect_path(path).totals

    # Two biases (conv_b's doubled), the depthwise pair's one bias being conv_a's.
    assert totals.params == kernel.size + depthwise_kernel.size + 2 * bias.size
    assert (totals.weights, totals.zeros) == (kernel.size + depthwise_kernel.size, zeros_of(kernel, depthwise_kernel))
    assert totals.dense_macs == 2 * 10 * 10 * kernel.size + 2 * 10 * 10 * depthwise_kernel.size


# --- custom operators -------------------------------------------------------------------------------------------


UP_INPUT = (6, 6, 4)
UP_FILTERS, UP_KERNEL, UP_STRIDE = 3, 2, 2


def upsampler_model():
    """A 2x2 stride-2 Conv2DTranspose (6x6x4 -> 12x12x3), then a 1x1 convolution; batch 1, so the converter
    writes the transposed convolution's output shape as a constant."""
    keras = tfenv.tf_keras()
    inputs = keras.Input(UP_INPUT, batch_size=1)
    x = keras.layers.Conv2DTranspose(UP_FILTERS, UP_KERNEL, strides=UP_STRIDE, name="up")(inputs)
    outputs = keras.layers.Conv2D(2, 1, name="head")(x)
    return prune_every_kernel(keras.Model(inputs, outputs), seed=4)


def as_custom_op(data: bytes, custom_code: str) -> bytes:
    """The converted model with its TRANSPOSE_CONV (inputs: output shape, filter [out, h, w, in], input, bias)
    made a custom op with MediaPipe's Convolution2DTransposeBias operands (input, filter, bias) and options."""
    tflite = schema()
    model = unpack(data)
    (operator,) = operators_of(model, "TRANSPOSE_CONV")
    code = tflite.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tflite.BuiltinOperator.CUSTOM
    code.customCode = custom_code
    code.version = 1
    model.operatorCodes.append(code)
    operator.opcodeIndex = len(model.operatorCodes) - 1
    operator.inputs = [operator.inputs[2], operator.inputs[1], operator.inputs[3]]
    operator.builtinOptionsType, operator.builtinOptions = tflite.BuiltinOptions.NONE, None
    operator.customOptions = list(struct.pack("<iii", TFLITE_PADDING_VALID, UP_STRIDE, UP_STRIDE))
    return pack(model)


def upsampler_macs() -> tuple[int, int]:
    """(transposed convolution, 1x1 head): each input value meets every filter weight, in_h*in_w*in_c*k_h*k_w*out_c."""
    height, width, channels = UP_INPUT
    up = height * width * channels * UP_KERNEL * UP_KERNEL * UP_FILTERS
    head = (height * UP_STRIDE) * (width * UP_STRIDE) * UP_FILTERS * 2
    return up, head


@pytest.mark.slow
def test_mediapipe_transposed_convolution_custom_op_is_counted(tmp_path, capsys):
    model = upsampler_model()
    keras_path = tmp_path / "upsampler.keras"
    model.save(keras_path)
    path = tmp_path / "upsampler-custom.tflite"
    path.write_bytes(as_custom_op(convert(model), "Convolution2DTransposeBias"))
    x = np.random.default_rng(5).uniform(size=(1, *UP_INPUT)).astype(np.float32)
    # LiteRT's XNNPACK delegate runs MediaPipe's op: the edited file computes what the Keras model does.
    np.testing.assert_allclose(run_litert(path.read_bytes(), x), model(x).numpy(), rtol=1e-4, atol=1e-4)
    kernel, bias = model.get_layer("up").get_weights()

    report = inspect_path(path)
    keras_report = inspect_path(keras_path)

    up, head = upsampler_macs()
    custom = next(layer for layer in report.layers if layer.op == "CUSTOM:Convolution2DTransposeBias")
    assert custom.weight_shape == (UP_FILTERS, UP_KERNEL, UP_KERNEL, UP_INPUT[-1])  # [out, h, w, in]
    assert (custom.params, custom.zeros) == (kernel.size + bias.size, zeros_of(kernel))
    assert (custom.dense_macs, custom.effective_macs) == (up, round(HALF * up))
    assert keras_report.layer("up").dense_macs == up
    assert report.totals.dense_macs == keras_report.totals.dense_macs == up + head
    assert report.totals.effective_macs == keras_report.totals.effective_macs == round(HALF * (up + head))
    assert report.totals.macs_left_out == ()
    assert "leave out" not in inspect_cli(path, capsys)


@pytest.mark.slow
def test_unknown_custom_op_is_named_as_left_out_of_the_mac_totals(tmp_path, capsys):
    model = upsampler_model()
    path = tmp_path / "fancy.tflite"
    path.write_bytes(as_custom_op(convert(model), "FancyUpsampler"))
    kernel, bias = model.get_layer("up").get_weights()

    report = inspect_path(path)
    text = inspect_cli(path, capsys)
    document = json.loads(inspect_cli(path, capsys, "--json"))

    up, head = upsampler_macs()
    fancy = next(layer for layer in report.layers if layer.op == "CUSTOM:FancyUpsampler")
    assert (fancy.dense_macs, fancy.macs_unknown) == (None, "a custom operator unknown to inspect")
    assert fancy.params == kernel.size + bias.size  # its weights still count
    assert (report.totals.dense_macs, report.totals.effective_macs) == (head, round(HALF * head))
    assert document["totals"]["macs_left_out"] == [
        {"name": fancy.name, "op": "CUSTOM:FancyUpsampler", "reason": "a custom operator unknown to inspect"}
    ]
    assert document["totals"]["dense_macs"] == head
    row = next(layer for layer in document["layers"] if layer["op"] == "CUSTOM:FancyUpsampler")
    assert (row["dense_macs"], row["macs_unknown"]) == (None, "a custom operator unknown to inspect")
    flat = " ".join(text.split())
    assert (
        "the MAC totals leave out 1 op whose MACs are unknown (marked ?), so they are a lower bound: "
        f"'{fancy.name}' (CUSTOM:FancyUpsampler, a custom operator unknown to inspect)"
    ) in flat
    (table_row,) = [line for line in text.splitlines() if line.split()[1:2] == ["CUSTOM:FancyUpsampler"]]
    assert table_row.split().count("?") == 2  # dense and effective MACs


# --- MACs of every convolution kind, Keras against its conversion -----------------------------------------------


def conv1d(keras):
    inputs = keras.Input((32, 3))
    x = keras.layers.Conv1D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv1D(16, 3, strides=2, name="c2")(x)  # valid: 15 steps
    return keras.Model(inputs, x)


def conv3d(keras):
    inputs = keras.Input((4, 6, 6, 2))
    return keras.Model(inputs, keras.layers.Conv3D(4, 3, padding="same", name="c3")(inputs))


def separable2d(keras):
    inputs = keras.Input((9, 9, 3))
    return keras.Model(inputs, keras.layers.SeparableConv2D(8, 3, strides=2, depth_multiplier=2, name="s2")(inputs))


def separable1d(keras):
    inputs = keras.Input((20, 3))
    return keras.Model(inputs, keras.layers.SeparableConv1D(8, 3, depth_multiplier=2, name="s1")(inputs))


def transposed2d(keras):
    inputs = keras.Input((8, 8, 4))
    return keras.Model(inputs, keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same", name="t2")(inputs))


def depthwise1d(keras):
    inputs = keras.Input((20, 4))
    return keras.Model(inputs, keras.layers.DepthwiseConv1D(3, depth_multiplier=2, name="d1")(inputs))


def depthwise2d(keras):
    inputs = keras.Input((8, 8, 4))
    return keras.Model(inputs, keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="d2")(inputs))


def dense_on_sequence(keras):
    inputs = keras.Input((5, 7))
    x = keras.layers.Dense(6, name="f1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="f2")(x))


STEM_RULE = "(only 1x1 convolutions and the 3x3 stem are allowed)"
DEPTHWISE_RULE = "(only 3x3 and 5x5 are allowed)"
CONVOLUTION_CASES: dict[str, tuple[Callable, dict[str, int], str]] = {
    # model, layer -> MACs worked out by hand, the verdict's sentence on where a sparse subgraph would start.
    "Conv1D": (conv1d, {"c1": 32 * 8 * 3 * 3, "c2": 15 * 16 * 3 * 8},
               f"cannot start a sparse subgraph: 1x3 CONV_2D {STEM_RULE}."),
    "Conv3D": (conv3d, {"c3": 4 * 6 * 6 * (3 * 3 * 3 * 2 * 4)},
               "are CONV_3D, which XNNPACK's sparse subgraph cannot run"),
    "SeparableConv2D": (separable2d, {"s2": 4 * 4 * (3 * 3 * 3 * 2 + 3 * 2 * 8)},
                        "DEPTHWISE_CONV_2D with depth multiplier 2 (needs 1)."),
    "SeparableConv1D": (separable1d, {"s1": 18 * (3 * 3 * 2 + 3 * 2 * 8)}, f"1x3 DEPTHWISE_CONV_2D {DEPTHWISE_RULE}."),
    # A transposed convolution uses each weight once per input position.
    "Conv2DTranspose": (transposed2d, {"t2": 8 * 8 * (3 * 3 * 6 * 4)},
                        "are TRANSPOSE_CONV, which XNNPACK's sparse subgraph cannot run"),
    "DepthwiseConv1D": (depthwise1d, {"d1": 18 * (3 * 4 * 2)}, f"1x3 DEPTHWISE_CONV_2D {DEPTHWISE_RULE}."),
    "DepthwiseConv2D": (depthwise2d, {"d2": 4 * 4 * (3 * 3 * 4)}, "padding='same' with stride 2"),
    # Once per step of the sequence: rows * in * out.
    "Dense on 3-D": (dense_on_sequence, {"f1": 5 * 7 * 6, "f2": 5 * 6 * 2}, "the model has no convolution"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CONVOLUTION_CASES)
def test_macs_of_each_layer_kind_are_exact_and_agree_with_the_conversion(case, tmp_path):
    build, expected, stem_sentence = CONVOLUTION_CASES[case]
    model = prune_every_kernel(build(tfenv.tf_keras()))
    keras_path, tflite_path = tmp_path / "model.keras", tmp_path / "model.tflite"
    model.save(keras_path)
    tflite_path.write_bytes(convert(model))

    keras_report = inspect_path(keras_path)
    tflite_report = inspect_path(tflite_path)

    assert {name: keras_report.layer(name).dense_macs for name in expected} == expected
    dense = sum(expected.values())
    # Every kernel is half zeros, so each op (and so the converted model's split ops) does half its MACs.
    for report in (keras_report, tflite_report):
        assert (report.totals.dense_macs, report.totals.effective_macs) == (dense, round(HALF * dense)), report.format
        assert report.totals.macs_left_out == ()
        blocks = [reason for reason in report.xnnpack_sparse.reasons if reason.startswith("blocks: ")]
        assert any(stem_sentence in reason for reason in blocks), blocks
        claims_none = any("has no convolution" in reason for reason in blocks)
        assert claims_none == ("has no convolution" in stem_sentence), blocks


def test_channels_first_convolutions_count_their_spatial_positions(tmp_path):
    keras = tfenv.tf_keras()
    inputs = keras.Input((3, 8, 8))
    x = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv")(inputs)  # -> 4x6x6
    x = keras.layers.Conv2DTranspose(2, 2, strides=2, data_format="channels_first", name="up")(x)  # -> 2x12x12
    path = tmp_path / "channels-first.keras"
    keras.Model(inputs, x).save(path)

    report = inspect_path(path)

    assert report.layer("conv").dense_macs == 6 * 6 * (4 * 3 * 3 * 3)
    assert report.layer("up").dense_macs == 6 * 6 * (4 * 2 * 2 * 2)  # its input's positions


# --- unknown figures: marked and named, never a wrong number ----------------------------------------------------


def any_size_image(keras):
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs))


def any_length_sequence(keras):
    inputs = keras.Input((None, 7))
    return keras.Model(inputs, keras.layers.Dense(6, name="fc")(inputs))


@pytest.mark.slow
@pytest.mark.parametrize("build", [any_size_image, any_length_sequence], ids=["Conv2D", "Dense"])
def test_macs_of_a_model_for_any_input_size_are_unknown_not_counted_for_one_pixel(build, tmp_path, capsys):
    model = prune_every_kernel(build(tfenv.tf_keras()))
    keras_path, tflite_path = tmp_path / "model.keras", tmp_path / "model.tflite"
    model.save(keras_path)
    tflite_path.write_bytes(convert(model))

    for path in (keras_path, tflite_path):
        report = inspect_path(path)
        (weighted,) = [layer for layer in report.layers if layer.weights]
        assert (weighted.dense_macs, weighted.effective_macs, weighted.macs_unknown) == (None, None, UNKNOWN_SIZE)
        assert report.totals.dense_macs == 0
        assert [left_out.name for left_out in report.totals.macs_left_out] == [weighted.name]
        assert "the MAC totals leave out 1 op whose MACs are unknown" in inspect_cli(path, capsys)


@pytest.mark.slow
def test_layer_without_a_mac_formula_is_named_in_keras_and_tflite(tmp_path):
    keras = tfenv.tf_keras()
    inputs = keras.Input((5, 3), batch_size=1)  # the converter fuses an LSTM of a fixed batch size only
    x = keras.layers.LSTM(4, name="lstm")(inputs)
    model = prune_every_kernel(keras.Model(inputs, keras.layers.Dense(3, name="fc")(x)))
    keras_path, tflite_path = tmp_path / "lstm.keras", tmp_path / "lstm.tflite"
    model.save(keras_path)
    tflite_path.write_bytes(convert(model))

    keras_report = inspect_path(keras_path)
    tflite_report = inspect_path(tflite_path)

    assert [(item.name, item.op) for item in keras_report.totals.macs_left_out] == [("lstm", "LSTM")]
    assert [item.op for item in tflite_report.totals.macs_left_out] == ["UNIDIRECTIONAL_SEQUENCE_LSTM"]
    for report in (keras_report, tflite_report):
        assert report.totals.dense_macs == 4 * 3  # the dense layer alone
        assert report.totals.macs_left_out[0].reason == "no MAC formula in inspect"
        assert "the MAC totals leave out 1 op" in render_inspection(report)
    assert keras_report.totals.effective_macs == tflite_report.totals.effective_macs == round(HALF * 4 * 3)
