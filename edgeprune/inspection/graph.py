"""The small graph description the XNNPACK verdict reads: one list of ops, built from Keras or from TFLite.

An op's kind is TFLite's name for the operator (``op_kinds`` defines the ones inspect's rules name), so a Keras
layer is described as what the converter will make of it, and the verdict is written once for both sources.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPH_INPUT = "<model input>"

SAME = "same"
VALID = "valid"

FLOAT_DTYPES = frozenset({"float32", "float16"})


@dataclass(frozen=True)
class GraphOp:
    """One operator as XNNPACK's sparse-inference rules see it."""

    name: str
    kind: str
    # Names of the ops producing this op's non-constant inputs; GRAPH_INPUT for a model input.
    inputs: tuple[str, ...] = ()
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    # VALID or SAME (TensorFlow's rule, which pads asymmetrically when the stride is above 1).
    padding: str = VALID
    # Explicit zero padding (top, bottom, left, right). For a PAD op: its padding, or None when it pads
    # batch/channels or with a non-zero value. For a convolution: padding a PAD in front was folded into.
    pads: tuple[int, int, int, int] | None = (0, 0, 0, 0)
    in_channels: int | None = None
    depth_multiplier: int = 1
    groups: int = 1
    input_shape: tuple[int | None, ...] | None = None
    axes: tuple[int, ...] = ()
    # Shape of a constant operand of ADD/MUL (e.g. a folded scale), None when both operands are computed.
    constant_operand_shape: tuple[int, ...] | None = None
    weights: int = 0
    weight_zeros: int = 0
    weight_dtype: str | None = None
    activation_dtype: str = "float32"
    sparse_encoding: str | None = None


@dataclass(frozen=True)
class ModelGraph:
    ops: tuple[GraphOp, ...]
    # Names of the ops whose results are model outputs.
    outputs: tuple[str, ...]
    # True for a .tflite file, whose weight encoding is final; False for Keras, encoded at conversion.
    is_converted: bool


def resolved_padding(op: GraphOp) -> tuple[int, int, int, int] | None:
    """Padding (top, bottom, left, right) as XNNPACK defines the op, or None when it stays TensorFlow SAME.

    XNNPACK turns SAME padding into explicit numbers only for stride 1 (``xnn_define_convolution_2d``);
    with a larger stride it keeps the run-time rule, which is asymmetric.
    """
    extra = op.pads or (0, 0, 0, 0)
    if op.padding != SAME:
        return extra
    if op.stride != (1, 1) or op.kernel is None:
        return None
    total_h = (op.kernel[0] - 1) * op.dilation[0]
    total_w = (op.kernel[1] - 1) * op.dilation[1]
    same = (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
    return add_pads(same, extra)


def add_pads(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (first[0] + second[0], first[1] + second[1], first[2] + second[2], first[3] + second[3])
