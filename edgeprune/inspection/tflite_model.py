"""A .tflite file -> per-operator weight statistics and the graph description the XNNPACK verdict reads.

Weights often reach their operator through an unpacking op: DENSIFY expands a sparse-encoded constant, and
DEQUANTIZE widens a float16 constant (fp16 models), sometimes both in a row. Those ops are not rows of their
own: their constant is attributed to the operator that consumes the unpacked tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ..errors import ModelLoadError
from .graph import (
    ADD,
    CONV_2D,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    GRAPH_INPUT,
    MEAN,
    MUL,
    PAD,
    SAME,
    VALID,
    GraphOp,
    ModelGraph,
)
from .report import InspectionReport, LayerStats, Totals, dense_macs
from .tflite_reader import (
    TFLiteFile,
    constant_array,
    count_zeros,
    dtype_name,
    is_constant,
    read_tflite,
    shape_of,
    sparse_encoding,
)
from .xnnpack import xnnpack_sparse_verdict

FORMAT = "tflite"

BUILTIN_NAMES: dict[int, str] = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
UNPACKING_KINDS = frozenset({"DENSIFY", "DEQUANTIZE"})
# Operators whose input at this position is the weight tensor pruning thins out (the bias follows it).
WEIGHT_INPUT = {CONV_2D: 1, DEPTHWISE_CONV_2D: 1, FULLY_CONNECTED: 1, "TRANSPOSE_CONV": 1}
MAC_KINDS = frozenset({CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED})
# Constants of these types are weights; int32/int64 constants elsewhere are shapes, axes or paddings.
WEIGHT_DTYPES = frozenset({"float32", "float16", "bfloat16", "int8", "uint8", "int16", "int4"})
PAD_KINDS = frozenset({PAD, "PADV2"})


def inspect_tflite(path: Path) -> InspectionReport:
    tfl = read_tflite(path)
    try:
        reader = _GraphReader(tfl)
        rows, ops = reader.describe()
        graph = ModelGraph(ops=ops, outputs=reader.output_producers(), is_converted=True)
        totals = Totals.of(rows, model_size_bytes=len(tfl.data))
        verdict = xnnpack_sparse_verdict(graph)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        # The flatbuffer parsed, but its parts do not fit together (an operator without outputs, options of
        # another operator, a shape its buffer cannot hold ...): the converter never writes such a file.
        raise ModelLoadError(
            f"'{path}' is a damaged TFLite file: its graph is inconsistent ({type(exc).__name__}: {str(exc)[:200]})",
            hint="export it again",
        ) from exc
    return InspectionReport(path, FORMAT, rows, totals, verdict)


@dataclass(frozen=True)
class _Weight:
    """The constant tensor behind an operator's weight input, with its statistics."""

    shape: tuple[int, ...]
    zeros: int
    dtype: str
    encoding: str | None

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


class _GraphReader:
    def __init__(self, tfl: TFLiteFile) -> None:
        self.tfl = tfl
        self.graph = tfl.main_graph
        self.tensors = self.graph.tensors or []
        self.operators = self.graph.operators or []
        self.kinds = [self._kind(operator) for operator in self.operators]
        # Unpacked tensor (DENSIFY/DEQUANTIZE output) -> the stored constant it comes from.
        self.constant_source: dict[int, int] = {}
        self._trace_unpacking()
        self.names: dict[int, str] = {}
        self.producer: dict[int, str] = {}
        for index, operator in enumerate(self.operators):
            if self._is_unpacking(index):
                continue
            self.names[index] = self._unique_name(index)
            for tensor in operator.outputs:
                self.producer[int(tensor)] = self.names[index]

    def describe(self) -> tuple[tuple[LayerStats, ...], tuple[GraphOp, ...]]:
        rows, ops = [], []
        for index in self.names:
            row, op = self._describe(index)
            rows.append(row)
            ops.append(op)
        return tuple(rows), tuple(ops)

    def output_producers(self) -> tuple[str, ...]:
        return tuple(self.producer[int(t)] for t in self.graph.outputs if int(t) in self.producer)

    def _kind(self, operator: schema.OperatorT) -> str:
        code = self.tfl.model.operatorCodes[operator.opcodeIndex]
        # Codes above 127 live in builtinCode only; old files fill deprecatedBuiltinCode only.
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            return f"CUSTOM:{(code.customCode or b'?').decode(errors='replace')}"
        return BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")

    def _trace_unpacking(self) -> None:
        # Operators come in execution order, so a DEQUANTIZE after a DENSIFY finds the DENSIFY's source.
        for index, operator in enumerate(self.operators):
            if self.kinds[index] not in UNPACKING_KINDS:
                continue
            origin = self._source_of(int(operator.inputs[0]))
            if origin is not None:
                self.constant_source[int(operator.outputs[0])] = origin

    def _source_of(self, tensor: int) -> int | None:
        """The stored constant behind a tensor, None for one computed from the model input."""
        if tensor < 0:
            return None
        if tensor in self.constant_source:
            return self.constant_source[tensor]
        return tensor if is_constant(self.tfl, self.tensors[tensor]) else None

    def _is_unpacking(self, index: int) -> bool:
        return int(self.operators[index].outputs[0]) in self.constant_source

    def _unique_name(self, index: int) -> str:
        operator = self.operators[index]
        candidates = [self.tensors[int(t)].name for t in operator.outputs]
        weight_position = WEIGHT_INPUT.get(self.kinds[index])
        if weight_position is not None and len(operator.inputs) > weight_position:
            candidates.append(self.tensors[int(operator.inputs[weight_position])].name)
        name = _readable_name(candidates) or f"{self.kinds[index]}#{index}"
        return name if name not in self.names.values() else f"{name}#{index}"

    def _weight(self, index: int) -> _Weight | None:
        position = WEIGHT_INPUT.get(self.kinds[index])
        inputs = self.operators[index].inputs
        if position is None or len(inputs) <= position:
            return None
        origin = self._source_of(int(inputs[position]))
        if origin is None:
            return None
        tensor = self.tensors[origin]
        return _Weight(shape_of(tensor), count_zeros(self.tfl, tensor), dtype_name(tensor), sparse_encoding(tensor))

    def _params(self, index: int) -> int:
        position = WEIGHT_INPUT.get(self.kinds[index])
        total = 0
        for at, tensor in enumerate(self.operators[index].inputs):
            origin = self._source_of(int(tensor))
            if origin is None:
                continue
            constant = self.tensors[origin]
            if (position is not None and at >= position) or dtype_name(constant) in WEIGHT_DTYPES:
                total += math.prod(shape_of(constant))
        return total

    def _describe(self, index: int) -> tuple[LayerStats, GraphOp]:
        operator, kind, name = self.operators[index], self.kinds[index], self.names[index]
        weight = self._weight(index)
        output_shape = shape_of(self.tensors[int(operator.outputs[0])])
        macs = dense_macs(weight.elements, output_shape) if weight is not None and kind in MAC_KINDS else None
        row = LayerStats(
            name=name,
            op=kind,
            weight_shape=weight.shape if weight else None,
            params=self._params(index),
            weights=weight.elements if weight else 0,
            zeros=weight.zeros if weight else 0,
            dense_macs=macs,
            dtype=weight.dtype if weight else None,
            sparse_encoding=weight.encoding if weight else None,
        )
        return row, self._graph_op(index, weight)

    def _graph_op(self, index: int, weight: _Weight | None) -> GraphOp:
        operator, kind = self.operators[index], self.kinds[index]
        activations = [int(t) for t in operator.inputs if int(t) >= 0 and self._source_of(int(t)) is None]
        first = self.tensors[activations[0]] if activations else self.tensors[int(operator.outputs[0])]
        op = GraphOp(
            name=self.names[index],
            kind=kind,
            inputs=tuple(self.producer.get(t, GRAPH_INPUT) for t in activations),
            input_shape=shape_of(first) if activations else None,
            activation_dtype=dtype_name(first),
            weights=weight.elements if weight else 0,
            weight_zeros=weight.zeros if weight else 0,
            weight_dtype=weight.dtype if weight else None,
            sparse_encoding=weight.encoding if weight else None,
        )
        if kind in (CONV_2D, DEPTHWISE_CONV_2D) and weight is not None:
            return self._convolution(op, operator.builtinOptions, weight)
        if kind in PAD_KINDS:
            return replace(op, kind=PAD, pads=self._spatial_zero_pads(operator))
        if kind == MEAN:
            return replace(op, axes=self._mean_axes(operator, len(op.input_shape or ())))
        if kind in (ADD, MUL):
            constants = [int(t) for t in operator.inputs if self._source_of(int(t)) is not None]
            return replace(op, constant_operand_shape=shape_of(self.tensors[constants[0]]) if constants else None)
        return op

    def _convolution(
        self, op: GraphOp, options: schema.Conv2DOptionsT | schema.DepthwiseConv2DOptionsT, weight: _Weight
    ) -> GraphOp:
        in_channels = op.input_shape[-1] if op.input_shape else None
        # Filters: CONV_2D [out, h, w, in/groups]; DEPTHWISE_CONV_2D [1, h, w, in*multiplier].
        per_group = weight.shape[3]
        if op.kind == CONV_2D:
            grouping = {"groups": in_channels // per_group if in_channels and per_group else 1}
        else:
            grouping = {"depth_multiplier": per_group // in_channels if in_channels else 1}
        return replace(
            op,
            kernel=(weight.shape[1], weight.shape[2]),
            stride=(options.strideH, options.strideW),
            dilation=(options.dilationHFactor, options.dilationWFactor),
            padding=SAME if options.padding == schema.Padding.SAME else VALID,
            in_channels=in_channels,
            **grouping,
        )

    def _mean_axes(self, operator: schema.OperatorT, rank: int) -> tuple[int, ...]:
        axes = self._constant_input(operator, 1)
        if axes is None or not rank:
            return ()
        return tuple(sorted(int(axis) % rank for axis in axes.reshape(-1)))  # axes may count from the end

    def _spatial_zero_pads(self, operator: schema.OperatorT) -> tuple[int, int, int, int] | None:
        """(top, bottom, left, right) of a PAD/PADV2 that pads height and width with zeros, else None."""
        paddings = self._constant_input(operator, 1)
        if paddings is None or paddings.shape != (4, 2):
            return None
        fill = self._constant_input(operator, 2)
        if fill is not None and fill.any():
            return None
        (batch_before, batch_after), (top, bottom), (left, right), (channel_before, channel_after) = paddings.tolist()
        if batch_before or batch_after or channel_before or channel_after:
            return None
        return (top, bottom, left, right)

    def _constant_input(self, operator: schema.OperatorT, position: int) -> np.ndarray | None:
        if len(operator.inputs) <= position:
            return None
        origin = self._source_of(int(operator.inputs[position]))
        return constant_array(self.tfl, self.tensors[origin]) if origin is not None else None


# Converter-made names that say nothing about which layer an op came from.
_ANONYMOUS_PREFIXES = ("StatefulPartitionedCall", "arith.constant", "tfl.", "serving_default")


def _readable_name(candidates: list[bytes | None]) -> str | None:
    """The first layer-like part of tensor names: 'model/conv1/Relu' of 'model/conv1/Relu;model/conv1/Conv2D'."""
    for raw in candidates:
        for part in (raw or b"").decode(errors="replace").split(";"):
            if part and not part.startswith(_ANONYMOUS_PREFIXES):
                return part
    return None
