"""edgeprune inspect: layer statistics, MACs, sparse encodings and the XNNPACK sparse verdict.

The verdict's rules are tested on hand-built graphs (no I/O); the readers on real tf_keras models and on
real TFLite conversions of them (fp32, sparse, fp16, dynamic-range int8), converted once per module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeprune import tfenv
from edgeprune.errors import ModelLoadError
from edgeprune.inspection import (
    inspect_loaded_model,
    inspect_path,
    render_inspection,
)
from edgeprune.inspection.graph import GRAPH_INPUT, SAME, VALID, GraphOp, ModelGraph
from edgeprune.inspection.op_kinds import CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MEAN, PAD
from edgeprune.inspection.xnnpack import xnnpack_sparse_verdict
from edgeprune.model.tflite_file import sparse_tensor_count

POINTWISE_ZEROS = 0.9
OTHER_ZEROS = 0.5

# The mobile-style test model (16x16x3 input): layer -> (output positions, kernel elements).
MOBILE_LAYERS = {
    "stem": (8 * 8, 3 * 3 * 3 * 16),
    "dw1": (8 * 8, 3 * 3 * 16),
    "pw1": (8 * 8, 16 * 64),
    "dw2": (4 * 4, 3 * 3 * 64),
    "pw2": (4 * 4, 64 * 32),
    "fc": (1, 32 * 10),
}


# --- the verdict, on hand-built graphs -------------------------------------------------------------


def mobile_graph(
    *,
    stem_padding: str = VALID,
    pointwise: tuple[int, int] = (1000, 900),
    weight_dtype: str = "float32",
    activation_dtype: str = "float32",
    between: GraphOp | None = None,
    encoded: bool = True,
) -> ModelGraph:
    """PAD -> 3x3/2 stem -> depthwise -> [between] -> 1x1 conv -> MEAN -> dense, as TFLite would have it."""
    weights, zeros = pointwise
    dtypes = {"weight_dtype": weight_dtype, "activation_dtype": activation_dtype}
    encoding = "CSR" if encoded else None
    ops = []
    if stem_padding == VALID:
        ops.append(GraphOp("stem_pad", PAD, (GRAPH_INPUT,), pads=(1, 1, 1, 1), activation_dtype=activation_dtype))
    ops += [
        GraphOp("stem", CONV_2D, ("stem_pad",) if stem_padding == VALID else (GRAPH_INPUT,), kernel=(3, 3),
                stride=(2, 2), padding=stem_padding, in_channels=3, weights=432, weight_zeros=200, **dtypes),
        GraphOp("dw", DEPTHWISE_CONV_2D, ("stem",), kernel=(3, 3), padding=SAME, in_channels=16,
                input_shape=(1, 8, 8, 16), weights=144, weight_zeros=70, sparse_encoding=encoding, **dtypes),
    ]
    if between is not None:
        ops.append(between)
    ops += [
        GraphOp("pw", CONV_2D, (between.name if between else "dw",), kernel=(1, 1), in_channels=16,
                input_shape=(1, 8, 8, 16), weights=weights, weight_zeros=zeros, sparse_encoding=encoding, **dtypes),
        GraphOp("gap", MEAN, ("pw",), axes=(1, 2), input_shape=(1, 8, 8, 64), activation_dtype=activation_dtype),
        GraphOp("fc", FULLY_CONNECTED, ("gap",), weights=640, **dtypes),
    ]
    return ModelGraph(ops=tuple(ops), outputs=("fc",), is_converted=True)


def blocking(verdict) -> list[str]:
    return [finding.text for finding in verdict.findings if finding.effect == "blocks"]


def test_verdict_is_eligible_for_a_padded_stem_depthwise_pointwise_mean_graph():
    verdict = xnnpack_sparse_verdict(mobile_graph())

    assert verdict.eligible, verdict.reasons
    assert any(reason.startswith("ok: the stem 'stem'") for reason in verdict.reasons)
    assert any("90.0% of the weights of the 1 1x1 convolution are zero" in reason for reason in verdict.reasons)
    assert any("x86 CPUs with AVX never take the sparse path" in reason for reason in verdict.reasons)


def test_verdict_blocks_a_same_padded_stride_2_stem():
    verdict = xnnpack_sparse_verdict(mobile_graph(stem_padding=SAME))

    assert not verdict.eligible
    assert blocking(verdict) == [
        (
            "the first convolution 'stem' cannot start a sparse subgraph: padding='same' with stride 2, which pads "
            "asymmetrically (more at the bottom and right); use ZeroPadding2D(1) and padding='valid' (in TFLite: a "
            "PAD of 1 on each side, then a VALID convolution)."
        )
    ]


def test_verdict_needs_more_than_two_thirds_zeros_in_1x1_convolutions():
    at_two_thirds = xnnpack_sparse_verdict(mobile_graph(pointwise=(999, 666)))
    just_above = xnnpack_sparse_verdict(mobile_graph(pointwise=(999, 667)))

    assert not at_two_thirds.eligible  # XNNPACK's test is zeros * 3 > params * 2
    assert blocking(at_two_thirds)[0].startswith("only 66.7% of the weights of the 1 1x1 convolution are zero")
    assert just_above.eligible


@pytest.mark.parametrize(
    ("weight_dtype", "activation_dtype", "expected"),
    [("int8", "float32", "dynamic-range quantized"), ("int8", "int8", "integer-quantized")],
)
def test_verdict_blocks_integer_models(weight_dtype, activation_dtype, expected):
    verdict = xnnpack_sparse_verdict(mobile_graph(weight_dtype=weight_dtype, activation_dtype=activation_dtype))

    assert not verdict.eligible
    assert expected in blocking(verdict)[0]


def test_verdict_accepts_float16_weights():
    assert xnnpack_sparse_verdict(mobile_graph(weight_dtype="float16")).eligible


def test_verdict_names_an_unsupported_op_inside_the_subgraph():
    pool = GraphOp("pool", "MAX_POOL_2D", ("dw",), input_shape=(1, 8, 8, 16))

    verdict = xnnpack_sparse_verdict(mobile_graph(between=pool))

    assert blocking(verdict) == [
        (
            "'pool' sits inside the would-be sparse subgraph: MAX_POOL_2D is not an operator XNNPACK can run in its "
            "sparse (NCHW) subgraph."
        )
    ]


def test_verdict_blocks_a_tensor_also_read_outside_the_subgraph():
    graph = mobile_graph()
    side_branch = GraphOp("side", "CONCATENATION", ("dw",))

    verdict = xnnpack_sparse_verdict(ModelGraph(graph.ops + (side_branch,), graph.outputs, is_converted=True))

    assert "'dw' also feeds 'side', outside the sparse subgraph." in blocking(verdict)


def test_verdict_needs_a_sparse_end_and_sparse_stored_weights():
    graph = mobile_graph(encoded=False)
    without_mean = tuple(op for op in graph.ops if op.kind != MEAN)

    unencoded = xnnpack_sparse_verdict(graph)
    endless = xnnpack_sparse_verdict(ModelGraph(without_mean, ("pw",), is_converted=True))

    assert any("no convolution weights are stored sparse (no DENSIFY)" in text for text in blocking(unencoded))
    assert any(text.startswith("no MEAN over height and width") for text in blocking(endless))


# --- real tf_keras models -------------------------------------------------------------------------------


def with_zeros(shape: tuple[int, ...], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Values of magnitude 0.1..1 (none rounds to zero in fp16 or int8), exactly round(fraction * size) zeros."""
    values = rng.uniform(0.1, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    flat = values.reshape(-1)
    flat[rng.permutation(flat.size)[: round(fraction * flat.size)]] = 0.0
    return values.astype(np.float32)


def expected_zeros(layer: str, pointwise_zeros: float = POINTWISE_ZEROS) -> int:
    fraction = pointwise_zeros if layer.startswith("pw") else OTHER_ZEROS
    return round(fraction * MOBILE_LAYERS[layer][1])


def mobile_model(*, stem_padding: str = VALID, pointwise_zeros: float = POINTWISE_ZEROS, pool: bool = False):
    keras = tfenv.tf_keras()
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.ZeroPadding2D(1, name="stem_pad")(inputs) if stem_padding == VALID else inputs
    x = layers.Conv2D(16, 3, strides=2, padding=stem_padding, activation="relu", name="stem")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw1")(x)
    x = layers.Conv2D(64, 1, activation="relu", name="pw1")(x)
    if pool:
        x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool")(x)
    x = layers.ZeroPadding2D(1, name="dw2_pad")(x)
    x = layers.DepthwiseConv2D(3, strides=2, name="dw2")(x)
    x = layers.Conv2D(32, 1, name="pw2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, layers.Dense(10, name="fc")(x))
    rng = np.random.default_rng(7)
    for name in MOBILE_LAYERS:
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        fraction = pointwise_zeros if name.startswith("pw") else OTHER_ZEROS
        bias = rng.uniform(0.1, 1.0, bias.shape).astype(np.float32)
        layer.set_weights([with_zeros(kernel.shape, fraction, rng), bias])
    return model


def save(model, path: Path) -> Path:
    model.save(path)
    return path


@pytest.fixture(scope="module")
def mobile_keras(tmp_path_factory) -> Path:
    return save(mobile_model(), tmp_path_factory.mktemp("keras") / "mobile.keras")


def test_keras_layer_stats_count_the_zeros_set_in_each_kernel(mobile_keras):
    report = inspect_path(mobile_keras)

    assert report.format == "keras"
    for name, (_, kernel_elements) in MOBILE_LAYERS.items():
        layer = report.layer(name)
        assert (layer.weights, layer.zeros) == (kernel_elements, expected_zeros(name)), name
        assert layer.sparsity == pytest.approx(expected_zeros(name) / kernel_elements)
        assert layer.dtype == "float32"
    pw1 = report.layer("pw1")
    assert (pw1.op, pw1.weight_shape, pw1.params) == ("Conv2D", (1, 1, 16, 64), 16 * 64 + 64)
    assert report.layer("gap").weight_shape is None
    assert report.totals.zeros == sum(expected_zeros(name) for name in MOBILE_LAYERS)
    assert report.totals.params == tfenv.tf_keras().models.load_model(mobile_keras).count_params()
    assert report.totals.model_size_bytes == mobile_keras.stat().st_size


def test_keras_macs_are_exact_for_convolutions_depthwise_and_dense(mobile_keras):
    report = inspect_path(mobile_keras)

    assert {name: report.layer(name).dense_macs for name in MOBILE_LAYERS} == {
        "stem": 8 * 8 * 16 * 3 * 3 * 3,  # out_h*out_w*out_c*k_h*k_w*in_c
        "dw1": 8 * 8 * 16 * 1 * 3 * 3,  # out_h*out_w*in_c*mult*k_h*k_w
        "pw1": 8 * 8 * 64 * 16,
        "dw2": 4 * 4 * 64 * 3 * 3,
        "pw2": 4 * 4 * 32 * 64,
        "fc": 32 * 10,  # in*out
    }
    pw1 = report.layer("pw1")
    assert pw1.effective_macs == round(pw1.dense_macs * (1 - pw1.sparsity))
    assert report.totals.dense_macs == sum(positions * elements for positions, elements in MOBILE_LAYERS.values())


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_keras_macs_of_grouped_and_multiplier_convolutions(tmp_path):
    keras = tfenv.tf_keras()
    inputs = keras.Input((10, 12, 4))
    x = keras.layers.Conv2D(6, (3, 1), strides=(1, 2), groups=2, name="grouped")(inputs)  # -> 8x6x6
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="mult")(x)  # -> 8x6x12
    path = save(keras.Model(inputs, x), tmp_path / "macs.h5")

    report = inspect_path(path)

    assert report.format == "h5"
    assert report.layer("grouped").dense_macs == 8 * 6 * 6 * 3 * 1 * 4 // 2
    assert report.layer("mult").dense_macs == 8 * 6 * 6 * 2 * 3 * 3


def test_keras_saved_model_folder_is_inspected(tmp_path):
    keras = tfenv.tf_keras()
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 1, name="pointwise")])
    folder = tmp_path / "saved"
    model.save(folder)

    report = inspect_path(folder)

    assert (report.format, report.totals.params) == ("saved_model", 16)
    assert report.totals.model_size_bytes == sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_keras_mobile_model_is_eligible_and_json_has_the_agreed_shape(mobile_keras):
    report = inspect_path(mobile_keras)
    document = json.loads(json.dumps(report.to_json()))

    assert set(document) == {"path", "format", "layers", "totals", "xnnpack_sparse"}
    assert {"params", "zeros"} <= set(document["totals"])
    assert document["xnnpack_sparse"]["eligible"] is True, document["xnnpack_sparse"]["reasons"]
    assert all(isinstance(reason, str) for reason in document["xnnpack_sparse"]["reasons"])
    assert any("this is a Keras model" in reason for reason in document["xnnpack_sparse"]["reasons"])
    assert document["layers"][0]["name"] == "stem_pad"


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ({"stem_padding": SAME}, "'stem' cannot start a sparse subgraph: padding='same' with stride 2"),
        ({"pointwise_zeros": 0.5}, "only 50.0% of the weights of the 2 1x1 convolutions are zero"),
        ({"pool": True}, "'pool' sits inside the would-be sparse subgraph: MAX_POOL_2D is not an operator"),
    ],
    ids=["same-padded-stem", "too-few-zeros", "max-pool-inside"],
)
def test_keras_models_xnnpack_cannot_run_sparse(tmp_path, variant, expected):
    report = inspect_path(save(mobile_model(**variant), tmp_path / "model.keras"))

    assert not report.xnnpack_sparse.eligible
    blocks = [reason for reason in report.xnnpack_sparse.reasons if reason.startswith("blocks: ")]
    assert len(blocks) == 1 and expected in blocks[0], blocks


def test_keras_backbone_nested_in_a_classifier_is_followed_through(tmp_path):
    keras = tfenv.tf_keras()
    mobile = mobile_model()
    backbone = keras.Model(mobile.input, mobile.get_layer("pw2").output, name="backbone")
    inputs = keras.Input((16, 16, 3))
    head = keras.layers.GlobalAveragePooling2D(name="head_gap")(backbone(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(3, name="head")(head))

    report = inspect_path(save(classifier, tmp_path / "classifier.keras"))

    assert [layer.name for layer in report.layers][-3:] == ["pw2", "head_gap", "head"]
    assert report.layer("pw2").zeros == expected_zeros("pw2")
    assert report.xnnpack_sparse.eligible, report.xnnpack_sparse.reasons


def test_inspect_loaded_model_gives_what_inspect_path_gives(mobile_keras):
    from edgeprune.model.loading import load_model

    assert inspect_loaded_model(load_model(mobile_keras)).to_json() == inspect_path(mobile_keras).to_json()


def test_wrapped_model_reports_params_with_and_without_pruning_masks(tmp_path):
    model = mobile_model()
    wrapped = tfenv.tfmot().sparsity.keras.prune_low_magnitude(model)
    path = save(wrapped, tmp_path / "wrapped.keras")

    report = inspect_path(path)

    assert report.totals.pruning_wrappers is True
    assert report.totals.params == model.count_params()
    assert report.totals.params_with_pruning_wrappers == wrapped.count_params()
    assert report.totals.params_with_pruning_wrappers > report.totals.params
    assert report.layer("pw1").zeros == expected_zeros("pw1")  # stats come from the stripped model
    assert "still wrapped for pruning" in render_inspection(report)


# --- real TFLite conversions ----------------------------------------------------------------------------


def convert(model, *, sparse: bool = False, quantization: str = "float32") -> bytes:
    tf = tfenv.tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = []
    if quantization in ("float16", "dynamic-int8"):
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    return bytes(converter.convert())


@pytest.fixture(scope="module")
def mobile_tflite(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tflite")
    model = mobile_model()
    variants = {
        "fp32": {},
        "fp32-sparse": {"sparse": True},
        "fp16": {"quantization": "float16"},
        "fp16-sparse": {"quantization": "float16", "sparse": True},
        "int8-dynamic": {"quantization": "dynamic-int8"},
    }
    paths = {}
    for name, settings in variants.items():
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(convert(model, **settings))
    return paths


def tflite_layer(report, keras_name: str):
    """The TFLite op made from a Keras layer: its name holds 'model/<layer>/'."""
    return next(layer for layer in report.layers if f"/{keras_name}/" in f"{layer.name}/")


@pytest.mark.slow
def test_tflite_dense_model_has_the_keras_models_zeros_and_macs(mobile_tflite, mobile_keras):
    report = inspect_path(mobile_tflite["fp32"])
    keras_report = inspect_path(mobile_keras)

    assert report.format == "tflite"
    assert [layer.op for layer in report.layers] == [
        "PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D",
        "PAD", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED",
    ]
    for name in ("stem", "dw1", "pw1", "dw2", "pw2"):
        layer = tflite_layer(report, name)
        assert (layer.zeros, layer.dense_macs) == (expected_zeros(name), keras_report.layer(name).dense_macs), name
        assert (layer.dtype, layer.sparse_encoding) == ("float32", None)
    assert tflite_layer(report, "pw1").weight_shape == (64, 1, 1, 16)
    assert report.totals.params == keras_report.totals.params
    assert report.totals.model_size_bytes == mobile_tflite["fp32"].stat().st_size
    assert [text.split(" (")[0] for text in report.xnnpack_sparse.reasons if text.startswith("blocks")] == [
        "blocks: no convolution weights are stored sparse"
    ]


@pytest.mark.slow
def test_tflite_sparse_model_reports_encoding_and_counts_zeros_through_densify(mobile_tflite):
    report = inspect_path(mobile_tflite["fp32-sparse"])

    assert "DENSIFY" not in [layer.op for layer in report.layers]
    for name in ("stem", "dw1", "pw1", "dw2", "pw2"):
        layer = tflite_layer(report, name)
        assert (layer.zeros, layer.sparse_encoding, layer.dtype) == (expected_zeros(name), "CSR", "float32"), name
    assert report.xnnpack_sparse.eligible, report.xnnpack_sparse.reasons
    assert any("stored sparse (DENSIFY)" in reason for reason in report.xnnpack_sparse.reasons)


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "encoding"), [("fp16", None), ("fp16-sparse", "CSR")])
def test_tflite_fp16_weights_are_attributed_through_dequantize(mobile_tflite, variant, encoding):
    report = inspect_path(mobile_tflite[variant])

    assert not {"DEQUANTIZE", "DENSIFY"} & {layer.op for layer in report.layers}
    for name in ("stem", "pw1", "pw2"):
        layer = tflite_layer(report, name)
        assert (layer.dtype, layer.zeros, layer.sparse_encoding) == ("float16", expected_zeros(name), encoding), name
    assert report.xnnpack_sparse.eligible is (encoding is not None)


@pytest.mark.slow
def test_tflite_dynamic_range_int8_model_is_never_sparse_eligible(mobile_tflite):
    report = inspect_path(mobile_tflite["int8-dynamic"])

    pw2 = tflite_layer(report, "pw2")
    assert (pw2.dtype, pw2.zeros) == ("int8", expected_zeros("pw2"))  # symmetric int8: zero point 0
    assert not report.xnnpack_sparse.eligible
    assert report.xnnpack_sparse.reasons[0].startswith("blocks: the model is dynamic-range quantized")


@pytest.mark.slow
def test_tflite_block_sparse_fully_connected_reports_1x4_blocks(tmp_path):
    keras = tfenv.tf_keras()
    model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(32, name="fc")])
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.1, 1.0, (32, 64, 4)).astype(np.float32)  # TFLite layout [out, in/4 blocks, 4]
    weights[rng.random((32, 64)) < 0.8] = 0.0  # whole 1x4 blocks of zeros ...
    weights[0, np.flatnonzero(weights[0, :, 0])[0], 1] = 0.0  # ... and one zero inside a stored block
    model.get_layer("fc").set_weights([weights.reshape(32, 256).T.copy(), np.zeros(32, np.float32)])
    path = tmp_path / "block.tflite"
    path.write_bytes(convert(model, sparse=True))

    fc = next(layer for layer in inspect_path(path).layers if layer.op == "FULLY_CONNECTED")

    assert fc.sparse_encoding == "block 1x4"
    assert fc.zeros == int(np.sum(weights == 0.0))
    assert fc.weight_shape == (32, 256)


@pytest.mark.slow
def test_sparse_tensor_count_counts_sparse_encoded_weights(mobile_tflite):
    assert sparse_tensor_count(mobile_tflite["fp32"].read_bytes()) == 0
    # All six kernels hold 50-90% zeros, above the converter's 30%.
    assert sparse_tensor_count(mobile_tflite["fp32-sparse"].read_bytes()) == len(MOBILE_LAYERS)


@pytest.mark.slow
def test_render_shows_the_table_totals_and_verdict(mobile_tflite):
    text = render_inspection(inspect_path(mobile_tflite["fp32-sparse"]))

    assert "fp32-sparse.tflite (tflite," in text
    assert "weight shape" in text and "CSR" in text
    assert "totals: " in text
    assert "XNNPACK sparse inference: eligible" in text


# --- unusable inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.tflite", "missing.keras"])
def test_missing_model_is_a_load_error_naming_it(tmp_path, name):
    with pytest.raises(ModelLoadError, match=name):
        inspect_path(tmp_path / name)


def test_text_file_named_tflite_is_a_load_error(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_text("this is not a model\n")

    with pytest.raises(ModelLoadError, match=r"x\.tflite.*not a TFLite model"):
        inspect_path(path)


@pytest.mark.slow
def test_truncated_tflite_is_a_load_error(mobile_tflite, tmp_path):
    data = mobile_tflite["fp32"].read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ModelLoadError, match=r"truncated\.tflite.*damaged"):
        inspect_path(path)
