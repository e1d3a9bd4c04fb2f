"""A .tflite file -> per-operator weight statistics and the graph description the XNNPACK verdict reads.

Weights often reach their operator through an unpacking op: DENSIFY expands a sparse-encoded constant, and
DEQUANTIZE widens a float16 constant (fp16 models), sometimes both in a row. Those ops are not rows of their
own: their constant is attributed to the operator that consumes the unpacked tensor. A constant is known by its
buffer, so one read by several operators (a bias shared by many convolutions) counts once in the totals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ..errors import ModelLoadError
from ..model.op_codes import BUILTIN_NAMES, builtin_code
from ..model.tflite_file import (
    TFLiteFile,
    constant_array,
    count_zeros,
    dtype_name,
    is_constant,
    read_tflite,
    shape_of,
    sparse_encoding,
)
from .graph import GRAPH_INPUT, SAME, VALID, GraphOp, ModelGraph
from .op_kinds import (
    ADD,
    CONV_2D,
    CONV_2D_KINDS,
    CONV_3D_TRANSPOSE,
    CUSTOM_PREFIX,
    FULLY_CONNECTED,
    MAC_KINDS,
    MEAN,
    MUL,
    OUTPUT_POSITION_MAC_KINDS,
    PAD,
    PAD_KINDS,
    RESHAPE,
    TRANSPOSE_CONV,
    TRANSPOSE_CONV_BIAS,
    UNCOUNTED_MAC_KINDS,
    UNKNOWN_BUILTIN_PREFIX,
    UNPACKING_KINDS,
)
from .report import NO_MAC_FORMULA, UNKNOWN_SIZE, InspectionReport, LayerStats, StoredConstant, Totals, dense_macs
from .xnnpack import xnnpack_sparse_verdict

FORMAT = "tflite"

# The input 1 of an operator of a MAC kind is the weight tensor pruning thins out; the bias, when there is one,
# comes after it. Filters: CONV_2D/TRANSPOSE_CONV/Convolution2DTransposeBias [out, h, w, in], DEPTHWISE_CONV_2D
# [1, h, w, out], CONV_3D [d, h, w, in, out], CONV_3D_TRANSPOSE [d, h, w, out, in], FULLY_CONNECTED [out, in].
WEIGHT_INPUT = 1
# Where the data input is of each of the INPUT_POSITION_MAC_KINDS (transposed convolutions), whose MACs count its
# positions and whose first computed input may be the output shape.
DATA_INPUTS: dict[str, int] = {
    TRANSPOSE_CONV: 2,  # inputs: output shape, filter, input, bias
    CONV_3D_TRANSPOSE: 2,
    TRANSPOSE_CONV_BIAS: 0,  # inputs: input, filter, bias
}
# Constants of these types are weights; int32/int64 constants elsewhere are shapes, axes or paddings.
WEIGHT_DTYPES = frozenset({"float32", "float16", "bfloat16", "int8", "uint8", "int16", "int4"})


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
        # Tensor -> the name of the operator computing it.
        self.producer: dict[int, str] = {}
        for index, operator in enumerate(self.operators):
            if self._is_unpacking(index):
                continue
            self.names[index] = self._unique_name(index)
            for tensor in operator.outputs:
                self.producer[int(tensor)] = self.names[index]
        # Computed tensor -> elements of one sample (batch 1), which a FULLY_CONNECTED's row count needs.
        self.sample_elements: dict[int, int | None] = {}
        self._count_sample_elements()

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
        builtin = builtin_code(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            return CUSTOM_PREFIX + (code.customCode or b"?").decode(errors="replace")
        return BUILTIN_NAMES.get(builtin, f"{UNKNOWN_BUILTIN_PREFIX}{builtin}")

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
        if self.kinds[index] in MAC_KINDS and len(operator.inputs) > WEIGHT_INPUT:
            candidates.append(self.tensors[int(operator.inputs[WEIGHT_INPUT])].name)
        name = _readable_name(candidates) or f"{self.kinds[index]}#{index}"
        return name if name not in self.names.values() else f"{name}#{index}"

    def _weight(self, index: int) -> _Weight | None:
        inputs = self.operators[index].inputs
        if self.kinds[index] not in MAC_KINDS or len(inputs) <= WEIGHT_INPUT:
            return None
        origin = self._source_of(int(inputs[WEIGHT_INPUT]))
        if origin is None:
            return None
        tensor = self.tensors[origin]
        return _Weight(shape_of(tensor), count_zeros(self.tfl, tensor), dtype_name(tensor), sparse_encoding(tensor))

    def _constants(self, index: int, weight: _Weight | None) -> tuple[StoredConstant, ...]:
        """The weights an operator reads, each known by its buffer: from the weight input on (weight, bias), and
        elsewhere constants of a weight type (int32/int64 constants elsewhere are shapes, axes or paddings)."""
        weighted = self.kinds[index] in MAC_KINDS
        constants = []
        for at, tensor in enumerate(self.operators[index].inputs):
            origin = self._source_of(int(tensor))
            if origin is None:
                continue
            constant = self.tensors[origin]
            if (weighted and at >= WEIGHT_INPUT) or dtype_name(constant) in WEIGHT_DTYPES:
                kernel_zeros = weight.zeros if weight is not None and at == WEIGHT_INPUT else None
                constants.append(
                    StoredConstant(("tflite buffer", constant.buffer), math.prod(shape_of(constant)), kernel_zeros)
                )
        return tuple(constants)

    def _macs(self, index: int) -> tuple[int | None, str | None]:
        """(dense MACs, why they are unknown) of an operator."""
        kind, operator = self.kinds[index], self.operators[index]
        if kind not in MAC_KINDS:
            return None, _uncounted_reason(kind)
        # From the weight input's shape, so a weight computed at run time is counted too.
        weight_dims = self._static_dims(int(operator.inputs[WEIGHT_INPUT]))
        if kind == FULLY_CONNECTED:  # its positions are rows
            positions: tuple[int | None, ...] = (self._rows(int(operator.inputs[0]), weight_dims[-1]),)
        elif kind in OUTPUT_POSITION_MAC_KINDS:
            positions = self._static_dims(int(operator.outputs[0]))[1:-1]
        else:
            positions = self._static_dims(int(operator.inputs[DATA_INPUTS[kind]]))[1:-1]
        weight_elements = None if None in weight_dims else math.prod(weight_dims)  # type: ignore[arg-type]
        macs = dense_macs(weight_elements, positions) if weight_elements is not None else None
        return macs, None if macs is not None else UNKNOWN_SIZE

    def _rows(self, tensor: int, in_features: int | None) -> int | None:
        """Rows a FULLY_CONNECTED multiplies in one inference: the elements of one sample of its input over the
        input features (a Dense layer on a sequence multiplies one row per step)."""
        per_sample = self._sample_elements(tensor)
        if per_sample is None or not in_features or per_sample % in_features:
            return None
        return per_sample // in_features

    def _sample_elements(self, tensor: int) -> int | None:
        if tensor not in self.sample_elements:  # a model input
            self.sample_elements[tensor] = self._elements_by_shape(tensor)
        return self.sample_elements[tensor]

    def _elements_by_shape(self, tensor: int) -> int | None:
        dims = self._static_dims(tensor)
        if None in dims[1:]:
            return None
        return math.prod(dims[1:]) if dims and dims[0] is None else math.prod(dims)  # type: ignore[arg-type]

    def _count_sample_elements(self) -> None:
        """Elements of one sample of each computed tensor, in execution order.

        Dimension 0 is the batch, except after a RESHAPE that folds the sample's other dimensions into it: a Dense
        layer on a sequence runs as RESHAPE [-1, features], FULLY_CONNECTED, RESHAPE back. So the count is carried
        through a RESHAPE (it keeps the elements), a FULLY_CONNECTED (rows times units) and any op whose output has
        its input's shape, and read from the shape only where nothing carries it.
        """
        for index in self.names:
            operator, kind = self.operators[index], self.kinds[index]
            for output in (int(t) for t in operator.outputs):
                self.sample_elements[output] = self._carried_elements(operator, kind, output)

    def _carried_elements(self, operator: schema.OperatorT, kind: str, output: int) -> int | None:
        inputs = [int(t) for t in operator.inputs if int(t) >= 0 and self._source_of(int(t)) is None]
        data = int(operator.inputs[0]) if len(operator.inputs) else -1
        if kind == RESHAPE and data in inputs and self._sample_elements(data) is not None:
            return self._sample_elements(data)
        if kind == FULLY_CONNECTED:
            rows = self._rows(int(operator.inputs[0]), self._static_dims(int(operator.inputs[WEIGHT_INPUT]))[-1])
            units = self._static_dims(output)[-1]
            return rows * units if rows is not None and units is not None else None
        same_shape = next((t for t in inputs if self._static_dims(t) == self._static_dims(output)), None)
        if same_shape is not None:
            return self._sample_elements(same_shape)
        return self._elements_by_shape(output)

    def _static_dims(self, tensor: int) -> tuple[int | None, ...]:
        """A tensor's shape with None where it is open: the shape field holds 1 there, its signature -1."""
        item = self.tensors[tensor]
        signature = item.shapeSignature if item.shapeSignature is not None and len(item.shapeSignature) else None
        if signature is None:
            return shape_of(item)
        return tuple(None if int(size) < 0 else int(size) for size in signature)

    def _describe(self, index: int) -> tuple[LayerStats, GraphOp]:
        kind, name = self.kinds[index], self.names[index]
        weight = self._weight(index)
        macs, unknown = self._macs(index)
        row = LayerStats(
            name=name,
            op=kind,
            weight_shape=weight.shape if weight else None,
            constants=self._constants(index, weight),
            dense_macs=macs,
            dtype=weight.dtype if weight else None,
            sparse_encoding=weight.encoding if weight else None,
            macs_unknown=unknown,
        )
        return row, self._graph_op(index, weight)

    def _graph_op(self, index: int, weight: _Weight | None) -> GraphOp:
        operator, kind = self.operators[index], self.kinds[index]
        activations = [int(t) for t in operator.inputs if int(t) >= 0 and self._source_of(int(t)) is None]
        # The data input: a transposed convolution's first computed input may be its output shape.
        data_position = DATA_INPUTS.get(kind)
        if data_position is not None:
            data: int | None = int(operator.inputs[data_position])
        else:
            data = activations[0] if activations else None
        first = self.tensors[data] if data is not None else self.tensors[int(operator.outputs[0])]
        op = GraphOp(
            name=self.names[index],
            kind=kind,
            inputs=tuple(self.producer.get(t, GRAPH_INPUT) for t in activations),
            input_shape=shape_of(first) if data is not None else None,
            activation_dtype=dtype_name(first),
            weights=weight.elements if weight else 0,
            weight_zeros=weight.zeros if weight else 0,
            weight_dtype=weight.dtype if weight else None,
            sparse_encoding=weight.encoding if weight else None,
        )
        if kind in CONV_2D_KINDS and weight is not None:
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


def _uncounted_reason(kind: str) -> str | None:
    """Why the MAC totals leave out an operator that may multiply-accumulate; None for one that does not."""
    if kind.startswith(CUSTOM_PREFIX):
        return "a custom operator unknown to inspect"
    if kind.startswith(UNKNOWN_BUILTIN_PREFIX):
        return "an operator unknown to LiteRT's schema"
    if kind in UNCOUNTED_MAC_KINDS:
        return NO_MAC_FORMULA
    return None


# Converter-made names that say nothing about which layer an op came from.
_ANONYMOUS_PREFIXES = ("StatefulPartitionedCall", "arith.constant", "tfl.", "serving_default")


def _readable_name(candidates: list[bytes | None]) -> str | None:
    """The first layer-like part of tensor names: 'model/conv1/Relu' of 'model/conv1/Relu;model/conv1/Conv2D'."""
    for raw in candidates:
        for part in (raw or b"").decode(errors="replace").split(";"):
            if part and not part.startswith(_ANONYMOUS_PREFIXES):
                return part
    return None
