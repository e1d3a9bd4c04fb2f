"""A Keras model -> per-layer weight statistics and the graph description the XNNPACK verdict reads.

The graph describes each layer as the TFLite converter will lower it (Conv2D -> CONV_2D, Conv1D -> a 1xK
CONV_2D, ZeroPadding2D -> PAD, GlobalAveragePooling2D -> MEAN, BatchNormalization folded away), so the verdict
applies to the model's float TFLite conversion. Nested models (a backbone inside a classifier) are flattened, as
the converter does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..model.loading import LoadedModel, load_model
from .graph import GRAPH_INPUT, SAME, VALID, GraphOp, ModelGraph
from .op_kinds import (
    ADD,
    AVERAGE_POOL_2D,
    CONCATENATION,
    CONV_2D,
    CONV_3D,
    CONV_3D_TRANSPOSE,
    DEPTHWISE_CONV_2D,
    ELU,
    FULLY_CONNECTED,
    GELU,
    HARD_SWISH,
    LEAKY_RELU,
    LOGISTIC,
    MAC_KINDS,
    MAX_POOL_2D,
    MEAN,
    MUL,
    OUTPUT_POSITION_MAC_KINDS,
    PAD,
    PRELU,
    RELU,
    RELU6,
    RESHAPE,
    RESIZE_BILINEAR,
    RESIZE_NEAREST_NEIGHBOR,
    SOFTMAX,
    SUB,
    TANH,
    TRANSPOSE_CONV,
)
from .report import NO_MAC_FORMULA, UNKNOWN_SIZE, InspectionReport, LayerStats, StoredConstant, Totals, dense_macs
from .xnnpack import xnnpack_sparse_verdict

# Keras layer -> the op kind the converter lowers it to; the lowerings below add what the verdict needs of it (a
# window, paddings, axes). A layer not listed keeps its class name as its kind, unless its lowering picks a kind by
# its config (UpSampling2D, Activation, ReLU). A layer of one of the MAC_KINDS has its MACs counted as that op's.
LAYER_KINDS = {
    "Conv1D": CONV_2D,  # on a 1-pixel-high image
    "Conv2D": CONV_2D,
    "Conv3D": CONV_3D,
    "DepthwiseConv1D": DEPTHWISE_CONV_2D,
    "DepthwiseConv2D": DEPTHWISE_CONV_2D,
    "SeparableConv1D": DEPTHWISE_CONV_2D,  # then a 1x1 CONV_2D
    "SeparableConv2D": DEPTHWISE_CONV_2D,
    "Conv1DTranspose": TRANSPOSE_CONV,
    "Conv2DTranspose": TRANSPOSE_CONV,
    "Conv3DTranspose": CONV_3D_TRANSPOSE,
    "Dense": FULLY_CONNECTED,
    "ZeroPadding2D": PAD,
    "GlobalAveragePooling2D": MEAN,
    "Rescaling": MUL,
    "Add": ADD,
    "Multiply": MUL,
    "Subtract": SUB,
    "Concatenate": CONCATENATION,
    "Reshape": RESHAPE,
    "Flatten": RESHAPE,
    "Softmax": SOFTMAX,
    "MaxPooling2D": MAX_POOL_2D,
    "AveragePooling2D": AVERAGE_POOL_2D,
    "LeakyReLU": LEAKY_RELU,
    "PReLU": PRELU,
}
# Layers with a kernel-shaped (2-D or more) weight that multiply-accumulate nothing: a table lookup, elementwise
# scales, normalization statistics. Any other layer with a kernel and no MAC formula is named as left out.
KERNEL_LAYERS_WITHOUT_MACS = frozenset({"Embedding", "PReLU", "Normalization", "LayerNormalization"})
# Layers that leave no op behind: inference-time no-ops, and BatchNormalization, which the converter folds
# into the convolution before it (or lowers to a per-channel MUL and ADD, which a sparse subgraph allows).
VANISHING_LAYERS = frozenset(
    {"BatchNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
     "ActivityRegularization", "Identity"}
)
ACTIVATION_KINDS = {
    "relu": RELU,
    "relu6": RELU6,
    "sigmoid": LOGISTIC,
    "tanh": TANH,
    "elu": ELU,
    "leaky_relu": LEAKY_RELU,
    "hard_swish": HARD_SWISH,
    "hard_silu": HARD_SWISH,
    # x * sigmoid(x) lowers to LOGISTIC and MUL, which a sparse subgraph takes alike.
    "swish": LOGISTIC,
    "silu": LOGISTIC,
    "softmax": SOFTMAX,
    "gelu": GELU,
}


def inspect_keras(path: Path, *, trust_code: bool = False) -> InspectionReport:
    return inspect_loaded(load_model(path, trust_code=trust_code))


def inspect_loaded(loaded: LoadedModel) -> InspectionReport:
    """Inspect a model ``load_model`` already loaded (and stripped of pruning wrappers)."""
    layers = [layer for layer in leaf_layers(loaded.model) if type(layer).__name__ != "InputLayer"]
    rows = tuple(layer_stats(layer) for layer in layers)
    wrapped_params = weight_count(loaded.wrapped_model) if loaded.wrapped_model is not None else None
    size = _size_on_disk(loaded.path)
    totals = Totals.of(rows, model_size_bytes=size, params_with_pruning_wrappers=wrapped_params)
    verdict = xnnpack_sparse_verdict(keras_graph(loaded.model))
    return InspectionReport(loaded.path, loaded.format, rows, totals, verdict)


def leaf_layers(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        if _is_model(layer):
            yield from leaf_layers(layer)
        else:
            yield layer


def weight_count(model: Any) -> int:
    return sum(math.prod(weight.shape) for weight in model.weights)


def layer_stats(layer: Any) -> LayerStats:
    arrays = [np.asarray(weight) for weight in layer.weights]
    kind = type(layer).__name__
    # Keyed by the variable itself, as Keras's count_params does, so a weight shared by two layers counts once.
    constants = tuple(
        StoredConstant(("keras variable", id(weight)), array.size, _zeros(array) if array.ndim >= 2 else None)
        for weight, array in zip(layer.weights, arrays)
    )
    kernels = _kernels(arrays)
    macs, unknown = _macs(layer, kind, sum(kernel.size for kernel in kernels)) if kernels else (None, None)
    return LayerStats(
        name=layer.name,
        op=kind,
        weight_shape=tuple(kernels[0].shape) if kernels else None,
        constants=constants,
        dense_macs=macs,
        dtype=kernels[0].dtype.name if kernels else None,
        macs_unknown=unknown,
    )


def _macs(layer: Any, kind: str, kernel_elements: int) -> tuple[int | None, str | None]:
    """(dense MACs, why they are unknown) of a layer with a kernel."""
    if kind in KERNEL_LAYERS_WITHOUT_MACS:
        return None, None
    if not _multiplies(kind):
        return None, NO_MAC_FORMULA
    inputs, outputs = _call_tensors(layer)
    counted = outputs[0] if LAYER_KINDS[kind] in OUTPUT_POSITION_MAC_KINDS else inputs[0]
    macs = dense_macs(kernel_elements, _positions(_shape(counted), layer.get_config().get("data_format")))
    return macs, None if macs is not None else UNKNOWN_SIZE


def _multiplies(kind: str) -> bool:
    """Whether a layer lowers to an op of one of the MAC_KINDS (a convolution or a dense layer)."""
    return LAYER_KINDS.get(kind) in MAC_KINDS


def _positions(shape: tuple[int | None, ...], data_format: str | None) -> tuple[int | None, ...]:
    """The spatial (or, for a dense layer, row) dimensions of a batched tensor."""
    return shape[2:] if data_format == "channels_first" else shape[1:-1]


def _zeros(array: np.ndarray) -> int:
    return int(array.size - np.count_nonzero(array))


def _kernels(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The weights pruning thins out: kernels are at least 2-D; biases and batch-norm statistics are 1-D."""
    return [array for array in arrays if array.ndim >= 2]


def keras_graph(model: Any) -> ModelGraph:
    builder = _GraphBuilder()
    builder.add_model(model, [GRAPH_INPUT] * len(model.inputs))
    outputs = tuple(builder.producer_of(tensor) for tensor in model.outputs)
    return ModelGraph(ops=tuple(builder.ops), outputs=outputs, is_converted=False)


class _GraphBuilder:
    """Follows Keras tensors from layer to layer.

    ``producers`` maps a tensor's id to the op that computes it; the model holds its tensors, so ids stay unique.
    """

    def __init__(self) -> None:
        self.ops: list[GraphOp] = []
        self.producers: dict[int, str] = {}

    def producer_of(self, tensor: Any) -> str:
        return self.producers.get(id(tensor), GRAPH_INPUT)

    def add_model(self, model: Any, input_producers: list[str]) -> None:
        for tensor, producer in zip(model.inputs, input_producers):
            self.producers[id(tensor)] = producer
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            input_tensors, output_tensors = _call_tensors(layer)
            inputs = [self.producer_of(tensor) for tensor in input_tensors]
            if _is_model(layer):
                self.add_model(layer, inputs)
                results = [self.producer_of(tensor) for tensor in layer.outputs]
            else:
                results = [self._add_layer(layer, inputs, input_tensors[0], output_tensors[0])]
            for tensor, producer in zip(output_tensors, results):
                self.producers[id(tensor)] = producer

    def _add_layer(self, layer: Any, inputs: list[str], input_tensor: Any, output_tensor: Any) -> str:
        """Append the ops a layer lowers to; return the name of the op computing its output."""
        kind = type(layer).__name__
        if kind in VANISHING_LAYERS:
            return inputs[0]
        arrays = [np.asarray(weight) for weight in layer.weights]
        kernels = _kernels(arrays)
        base = GraphOp(
            name=layer.name,
            kind=LAYER_KINDS.get(kind, kind),
            inputs=tuple(inputs),
            input_shape=_shape(input_tensor),
            activation_dtype=str(layer.compute_dtype),
            weights=kernels[0].size if kernels else 0,
            weight_zeros=_zeros(kernels[0]) if kernels else 0,
            weight_dtype=kernels[0].dtype.name if kernels else None,
        )
        lowering = _LOWERINGS.get(kind)
        ops = lowering(layer, base, kernels) if lowering else [base]
        activation = _activation_name(layer.get_config().get("activation")) if _multiplies(kind) else None
        if activation not in (None, "linear"):
            ops.append(_activation_op(f"{layer.name}/{activation}", activation, ops[-1], _shape(output_tensor)))
        self.ops.extend(ops)
        return ops[-1].name if ops else inputs[0]


def _convolution(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    config = layer.get_config()
    return [
        replace(
            base,
            **_window(config),
            in_channels=_channels(base),
            groups=int(config.get("groups", 1)),
        )
    ]


def _depthwise(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    config = layer.get_config()
    return [
        replace(
            base,
            **_window(config),
            in_channels=_channels(base),
            depth_multiplier=int(config.get("depth_multiplier", 1)),
        )
    ]


def _separable(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    """The converter splits SeparableConv1D/2D into a depthwise convolution and a 1x1 convolution."""
    depthwise = _depthwise(layer, base, kernels)[0]
    pointwise_kernel = kernels[1]
    pointwise = replace(
        base,
        name=f"{layer.name}/pointwise",
        kind=CONV_2D,
        inputs=(depthwise.name,),
        kernel=(1, 1),
        in_channels=int(pointwise_kernel.shape[-2]),
        weights=pointwise_kernel.size,
        weight_zeros=_zeros(pointwise_kernel),
    )
    return [depthwise, pointwise]


def _zero_padding(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    (top, bottom), (left, right) = layer.get_config()["padding"]
    return [replace(base, pads=(int(top), int(bottom), int(left), int(right)))]


def _global_average(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    return [replace(base, axes=(1, 2))]


def _upsampling(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    bilinear = layer.get_config().get("interpolation") == "bilinear"
    return [replace(base, kind=RESIZE_BILINEAR if bilinear else RESIZE_NEAREST_NEIGHBOR)]


def _rescaling(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    return [replace(base, constant_operand_shape=())]


def _activation(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    name = _activation_name(layer.get_config().get("activation"))
    return [] if name == "linear" else [replace(base, kind=_activation_kind(name))]


def _relu(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    config = layer.get_config()
    max_value = config.get("max_value")
    slope = float(config.get("negative_slope", 0.0) or 0.0)
    threshold = float(config.get("threshold", 0.0) or 0.0)
    if threshold == 0.0 and slope == 0.0 and max_value in (None, 6, 6.0):
        return [replace(base, kind=RELU if max_value is None else RELU6)]
    if threshold == 0.0 and max_value is None:
        return [replace(base, kind=LEAKY_RELU)]
    return [replace(base, kind="ReLU(custom)")]


_LOWERINGS: dict[str, Callable[[Any, GraphOp, list[np.ndarray]], list[GraphOp]]] = {
    "Conv1D": _convolution,
    "Conv2D": _convolution,
    "DepthwiseConv1D": _depthwise,
    "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable,
    "SeparableConv2D": _separable,
    "ZeroPadding2D": _zero_padding,
    "GlobalAveragePooling2D": _global_average,
    "UpSampling2D": _upsampling,
    "Rescaling": _rescaling,
    "Activation": _activation,
    "ReLU": _relu,
}


def _activation_op(
    name: str, activation: str, producer: GraphOp, input_shape: tuple[int | None, ...] | None
) -> GraphOp:
    return GraphOp(
        name=name,
        kind=_activation_kind(activation),
        inputs=(producer.name,),
        input_shape=input_shape,
        activation_dtype=producer.activation_dtype,
    )


def _activation_kind(activation: str | None) -> str:
    return ACTIVATION_KINDS.get(str(activation), f"activation '{activation}'")


def _window(config: dict[str, Any]) -> dict[str, Any]:
    """Kernel, stride, dilation and padding of a 1-D or 2-D convolution as the converter's CONV_2D has them: it
    runs a 1-D convolution on a 1-pixel-high image (a 1xK kernel), and a causal one after a PAD on the left."""
    kernel, stride, dilation = (_pair(config.get(key, 1)) for key in ("kernel_size", "strides", "dilation_rate"))
    padding = str(config.get("padding", VALID)).lower()
    if padding == "causal":
        return {"kernel": kernel, "stride": stride, "dilation": dilation, "padding": VALID,
                "pads": (0, 0, (kernel[1] - 1) * dilation[1], 0)}
    return {"kernel": kernel, "stride": stride, "dilation": dilation, "padding": SAME if padding == SAME else VALID}


def _pair(value: Any) -> tuple[int, int]:
    """(height, width) of a window size: one number is both; a 1-D size is a 1-pixel-high window."""
    if isinstance(value, int):
        return (value, value)
    if len(value) == 1:
        return (1, int(value[0]))
    first, second = value
    return (int(first), int(second))


def _channels(op: GraphOp) -> int | None:
    return op.input_shape[-1] if op.input_shape else None


def _activation_name(activation: Any) -> str | None:
    if activation is None or isinstance(activation, str):
        return activation
    if isinstance(activation, dict):  # a serialized activation: {"class_name": ..., "config": {"name": ...}}
        return str(activation.get("config", {}).get("name") or activation.get("class_name"))
    return getattr(activation, "__name__", str(activation))


def _shape(tensor: Any) -> tuple[int | None, ...]:
    return tuple(None if size is None else int(size) for size in tensor.shape)


def _call_tensors(layer: Any) -> tuple[list[Any], list[Any]]:
    """Input and output tensors of the layer's call in the model holding it (the first call of a shared layer).

    Not ``layer.input``/``layer.output``: for a nested model those are its own inner graph's tensors.
    """
    node = layer._inbound_nodes[0]  # tf_keras and Keras 3 both keep each call as an inbound node
    return _as_list(node.input_tensors), _as_list(node.output_tensors)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())
    return path.stat().st_size
