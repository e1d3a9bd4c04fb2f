"""A Keras model -> per-layer weight statistics and the graph description the XNNPACK verdict reads.

The graph describes each layer as the TFLite converter will lower it (Conv2D -> CONV_2D, ZeroPadding2D -> PAD,
GlobalAveragePooling2D -> MEAN, BatchNormalization folded away), so the verdict applies to the model's
float TFLite conversion. Nested models (a backbone inside a classifier) are flattened, as the converter does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..model.loading import LoadedModel, load_model
from .graph import (
    ADD,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    GRAPH_INPUT,
    MEAN,
    MUL,
    PAD,
    RESIZE_BILINEAR,
    SAME,
    VALID,
    GraphOp,
    ModelGraph,
)
from .report import InspectionReport, LayerStats, Totals, dense_macs
from .xnnpack import xnnpack_sparse_verdict

MAC_LAYERS = frozenset({"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"})
# Layers that leave no op behind: inference-time no-ops, and BatchNormalization, which the converter folds
# into the convolution before it (or lowers to a per-channel MUL and ADD, which a sparse subgraph allows).
VANISHING_LAYERS = frozenset(
    {"BatchNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
     "ActivityRegularization", "Identity"}
)
PLAIN_LAYER_KINDS = {
    "Dense": FULLY_CONNECTED,
    "Add": ADD,
    "Multiply": MUL,
    "Subtract": "SUB",
    "Concatenate": "CONCATENATION",
    "Reshape": "RESHAPE",
    "Flatten": "RESHAPE",
    "Softmax": "SOFTMAX",
    "MaxPooling2D": "MAX_POOL_2D",
    "AveragePooling2D": "AVERAGE_POOL_2D",
    "LeakyReLU": "LEAKY_RELU",
    "PReLU": "PRELU",
}
ACTIVATION_KINDS = {
    "relu": "RELU",
    "relu6": "RELU6",
    "sigmoid": "LOGISTIC",
    "tanh": "TANH",
    "elu": "ELU",
    "leaky_relu": "LEAKY_RELU",
    "hard_swish": "HARD_SWISH",
    "hard_silu": "HARD_SWISH",
    # x * sigmoid(x) lowers to LOGISTIC and MUL, which a sparse subgraph takes alike.
    "swish": "LOGISTIC",
    "silu": "LOGISTIC",
    "softmax": "SOFTMAX",
    "gelu": "GELU",
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
    kernels = _kernels(arrays)
    kind = type(layer).__name__
    weights = sum(kernel.size for kernel in kernels)
    _, outputs = _call_tensors(layer)
    macs = dense_macs(weights, _shape(outputs[0])) if kind in MAC_LAYERS and kernels else None
    return LayerStats(
        name=layer.name,
        op=kind,
        weight_shape=tuple(kernels[0].shape) if kernels else None,
        params=sum(array.size for array in arrays),
        weights=weights,
        zeros=sum(int(kernel.size - np.count_nonzero(kernel)) for kernel in kernels),
        dense_macs=macs,
        dtype=kernels[0].dtype.name if kernels else None,
    )


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
            kind=PLAIN_LAYER_KINDS.get(kind, kind),
            inputs=tuple(inputs),
            input_shape=_shape(input_tensor),
            activation_dtype=str(layer.compute_dtype),
            weights=kernels[0].size if kernels else 0,
            weight_zeros=int(kernels[0].size - np.count_nonzero(kernels[0])) if kernels else 0,
            weight_dtype=kernels[0].dtype.name if kernels else None,
        )
        lowering = _LOWERINGS.get(kind)
        ops = lowering(layer, base, kernels) if lowering else [base]
        activation = _activation_name(layer.get_config().get("activation")) if kind in MAC_LAYERS else None
        if activation not in (None, "linear"):
            ops.append(_activation_op(f"{layer.name}/{activation}", activation, ops[-1], _shape(output_tensor)))
        self.ops.extend(ops)
        return ops[-1].name if ops else inputs[0]


def _convolution(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    config = layer.get_config()
    return [
        replace(
            base,
            kind=CONV_2D,
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
            kind=DEPTHWISE_CONV_2D,
            **_window(config),
            in_channels=_channels(base),
            depth_multiplier=int(config.get("depth_multiplier", 1)),
        )
    ]


def _separable(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    """The converter splits SeparableConv2D into a depthwise convolution and a 1x1 convolution."""
    depthwise = _depthwise(layer, base, kernels)[0]
    pointwise_kernel = kernels[1]
    pointwise = replace(
        base,
        name=f"{layer.name}/pointwise",
        kind=CONV_2D,
        inputs=(depthwise.name,),
        kernel=(1, 1),
        in_channels=int(pointwise_kernel.shape[2]),
        weights=pointwise_kernel.size,
        weight_zeros=int(pointwise_kernel.size - np.count_nonzero(pointwise_kernel)),
    )
    return [depthwise, pointwise]


def _zero_padding(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    (top, bottom), (left, right) = layer.get_config()["padding"]
    return [replace(base, kind=PAD, pads=(int(top), int(bottom), int(left), int(right)))]


def _global_average(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    return [replace(base, kind=MEAN, axes=(1, 2))]


def _upsampling(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    bilinear = layer.get_config().get("interpolation") == "bilinear"
    return [replace(base, kind=RESIZE_BILINEAR if bilinear else "RESIZE_NEAREST_NEIGHBOR")]


def _rescaling(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    return [replace(base, kind=MUL, constant_operand_shape=())]


def _activation(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    name = _activation_name(layer.get_config().get("activation"))
    return [] if name == "linear" else [replace(base, kind=_activation_kind(name))]


def _relu(layer: Any, base: GraphOp, kernels: list[np.ndarray]) -> list[GraphOp]:
    config = layer.get_config()
    max_value = config.get("max_value")
    slope = float(config.get("negative_slope", 0.0) or 0.0)
    threshold = float(config.get("threshold", 0.0) or 0.0)
    if threshold == 0.0 and slope == 0.0 and max_value in (None, 6, 6.0):
        return [replace(base, kind="RELU" if max_value is None else "RELU6")]
    if threshold == 0.0 and max_value is None:
        return [replace(base, kind="LEAKY_RELU")]
    return [replace(base, kind="ReLU(custom)")]


_LOWERINGS: dict[str, Callable[[Any, GraphOp, list[np.ndarray]], list[GraphOp]]] = {
    "Conv2D": _convolution,
    "DepthwiseConv2D": _depthwise,
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
    return {
        "kernel": _pair(config["kernel_size"]),
        "stride": _pair(config.get("strides", 1)),
        "dilation": _pair(config.get("dilation_rate", 1)),
        "padding": SAME if str(config.get("padding", VALID)).lower() == SAME else VALID,
    }


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
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
