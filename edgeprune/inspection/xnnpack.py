"""Will XNNPACK run this model with its sparse kernels? A pure function over a ``ModelGraph``.

Rules, as XNNPACK applies them (google/XNNPACK ``src/subgraph.c``: ``xnn_check_nchw_compatibility`` and
``xnn_subgraph_rewrite_for_nchw``; LiteRT ``tflite/delegates/xnnpack/README.md``, "Sparse Inference"):
the sparse (NCHW) subgraph starts at a 3x3 stride-2 CONV_2D on 3 channels padded by 1 on every side, holds only
1x1 CONV_2D, 3x3/5x5 DEPTHWISE_CONV_2D, ADD/MUL, RESIZE_BILINEAR and simple activations, ends in a spatial MEAN
or DEPTH_TO_SPACE, and more than 2/3 of its 1x1 convolution weights are zero. The delegate asks for it only
when a weight is stored sparse (a DENSIFY input), and only float32/float16 graphs qualify.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .graph import FLOAT_DTYPES, GRAPH_INPUT, GraphOp, ModelGraph, add_pads, resolved_padding
from .op_kinds import (
    ADD,
    CONV_2D,
    CONV_2D_KINDS,
    CONVOLUTION_KINDS,
    DEPTH_TO_SPACE,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MEAN,
    MUL,
    PAD,
    RESIZE_BILINEAR,
    SPARSE_UNARY_KINDS,
)
from .report import Finding, SparseVerdict

STEM = "stem"
BODY = "body"
END = "end"

MAX_LISTED_BREAKS = 3

X86_NOTE = Finding(
    "note",
    "x86 CPUs with AVX never take the sparse path (XNNPACK expects dense to be faster there), so on an x86 host "
    "a sparse model is only smaller; the speed-up needs a 64-bit ARM CPU (32-bit ARM wheels have no XNNPACK).",
)
KERAS_ENCODING_NOTE = Finding(
    "note",
    "this is a Keras model: the verdict is for its float32/float16 TFLite conversion with "
    "tf.lite.Optimize.EXPERIMENTAL_SPARSITY, which stores pruned weights sparse (DENSIFY) and so makes the "
    "XNNPACK delegate try sparse inference.",
)


@dataclass(frozen=True)
class Role:
    """Where an op may sit in a sparse subgraph (``place``), or why it cannot (``problem``)."""

    place: str | None
    problem: str = ""


@dataclass(frozen=True)
class Cluster:
    members: tuple[GraphOp, ...]
    ends: tuple[GraphOp, ...]
    breaks: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return bool(self.ends) and not self.breaks


def xnnpack_sparse_verdict(graph: ModelGraph) -> SparseVerdict:
    ops = fold_zero_padding(graph.ops)
    stem = next((op for op in ops if op.kind in CONV_2D_KINDS), None)
    cluster = trace_cluster(ops, stem, graph.outputs)
    scope = cluster.members if cluster.intact else ops
    findings = [
        dtype_finding(ops),
        stem_finding(stem, ops),
        *cluster_findings(cluster, stem),
        zero_fraction_finding(scope),
        *encoding_findings(graph, ops, scope),
        X86_NOTE,
    ]
    return SparseVerdict(tuple(findings))


def fold_zero_padding(ops: Sequence[GraphOp]) -> tuple[GraphOp, ...]:
    """Fold a zero PAD into the one convolution it feeds, as XNNPACK does before looking for a sparse subgraph."""
    consumers = consumers_of(ops)
    folded: dict[str, GraphOp] = {}
    dropped: set[str] = set()
    by_name = {op.name: op for op in ops}
    for pad in ops:
        if pad.kind != PAD or pad.pads is None or len(consumers[pad.name]) != 1:
            continue
        target = folded.get(consumers[pad.name][0], by_name[consumers[pad.name][0]])
        if target.kind not in CONV_2D_KINDS or resolved_padding(target) is None:
            continue
        inputs = tuple(pad.inputs[0] if name == pad.name else name for name in target.inputs)
        folded[target.name] = replace(target, pads=add_pads(target.pads or (0, 0, 0, 0), pad.pads), inputs=inputs)
        dropped.add(pad.name)
    return tuple(folded.get(op.name, op) for op in ops if op.name not in dropped)


def consumers_of(ops: Iterable[GraphOp]) -> dict[str, list[str]]:
    consumers: dict[str, list[str]] = defaultdict(list)
    for op in ops:
        for name in dict.fromkeys(op.inputs):
            consumers[name].append(op.name)
    return consumers


def sparse_role(op: GraphOp) -> Role:
    if op.kind == CONV_2D:
        return _convolution_role(op)
    if op.kind == DEPTHWISE_CONV_2D:
        return _depthwise_role(op)
    if op.kind in (ADD, MUL):
        return _binary_role(op)
    if op.kind == MEAN:
        if set(op.axes) == {1, 2} and _rank(op) in (4, None):
            return Role(END)
        return Role(None, f"MEAN over axes {list(op.axes)} (only a mean over height and width can end the subgraph)")
    if op.kind == DEPTH_TO_SPACE:
        return Role(END)
    if op.kind == RESIZE_BILINEAR:
        shape = op.input_shape or ()
        if len(shape) == 4 and any(size is not None and size <= 1 for size in shape[1:3]):
            return Role(None, "RESIZE_BILINEAR of a 1-pixel-high or -wide input")
        return Role(BODY)
    if op.kind in SPARSE_UNARY_KINDS:
        if _rank(op) in (4, None):
            return Role(BODY)
        return Role(None, f"{op.kind} on a tensor that is not 4-D")
    return Role(None, f"{op.kind} is not an operator XNNPACK can run in its sparse (NCHW) subgraph")


def _convolution_role(op: GraphOp) -> Role:
    kernel = op.kernel or (0, 0)
    pads = resolved_padding(op)
    if op.groups != 1:
        return Role(None, f"grouped CONV_2D ({op.groups} groups)")
    if op.dilation != (1, 1):
        return Role(None, f"dilated CONV_2D (dilation {_pair(op.dilation)})")
    if kernel == (1, 1):
        if op.stride != (1, 1) or pads != (0, 0, 0, 0):
            return Role(None, f"1x1 CONV_2D with stride {_pair(op.stride)} or padding (needs stride 1, none)")
        return Role(BODY)
    if kernel != (3, 3):
        return Role(None, f"{_pair(kernel)} CONV_2D (only 1x1 convolutions and the 3x3 stem are allowed)")
    if op.stride != (2, 2):
        return Role(None, f"3x3 CONV_2D with stride {_pair(op.stride)} (the stem needs stride 2)")
    if op.in_channels != 3:
        return Role(None, f"3x3 CONV_2D on {op.in_channels} input channels (the stem needs 3)")
    if pads is None:
        return Role(None, _SAME_STRIDE_2)
    if pads != (1, 1, 1, 1):
        return Role(None, f"3x3 CONV_2D padded {_describe_pads(pads)} (needs 1 on each side)")
    return Role(STEM)


def _depthwise_role(op: GraphOp) -> Role:
    kernel = op.kernel or (0, 0)
    pads = resolved_padding(op)
    if kernel not in ((3, 3), (5, 5)):
        return Role(None, f"{_pair(kernel)} DEPTHWISE_CONV_2D (only 3x3 and 5x5 are allowed)")
    if op.stride not in ((1, 1), (2, 2)):
        return Role(None, f"DEPTHWISE_CONV_2D with stride {_pair(op.stride)} (1 or 2 are allowed)")
    if op.dilation != (1, 1):
        return Role(None, f"dilated DEPTHWISE_CONV_2D (dilation {_pair(op.dilation)})")
    if op.depth_multiplier != 1:
        return Role(None, f"DEPTHWISE_CONV_2D with depth multiplier {op.depth_multiplier} (needs 1)")
    if pads is None:
        return Role(None, _SAME_STRIDE_2)
    side = kernel[0] // 2
    if pads != (side,) * 4:
        return Role(
            None, f"{_pair(kernel)} DEPTHWISE_CONV_2D padded {_describe_pads(pads)} (needs {side} on each side)"
        )
    return Role(BODY)


def _binary_role(op: GraphOp) -> Role:
    if _rank(op) not in (4, None):
        return Role(None, f"{op.kind} of tensors that are not 4-D")
    constant = op.constant_operand_shape
    if constant is not None and sum(1 for size in constant if size != 1) > 1:
        return Role(None, f"{op.kind} with a constant of shape {list(constant)} (must be a scalar or a vector)")
    return Role(BODY)


_SAME_STRIDE_2 = (
    "padding='same' with stride 2, which pads asymmetrically (more at the bottom and right); "
    "use ZeroPadding2D(1) and padding='valid' (in TFLite: a PAD of 1 on each side, then a VALID convolution)"
)


def trace_cluster(ops: Sequence[GraphOp], stem: GraphOp | None, outputs: Sequence[str]) -> Cluster:
    """Walk back from each spatial MEAN / DEPTH_TO_SPACE to the stem, collecting every op that breaks the subgraph.

    The walk goes on past a breaking op, so one run names all of them, not only the one nearest the end.
    """
    by_name = {op.name: op for op in ops}
    position = {op.name: index for index, op in enumerate(ops)}
    ends = tuple(op for op in ops if sparse_role(op).place == END)
    members: dict[str, GraphOp] = {}
    breaks: list[tuple[int, str]] = []
    pending = list(ends)
    while pending:
        op = pending.pop()
        if op.name in members:
            continue
        members[op.name] = op
        role = sparse_role(op)
        # The stem is where the subgraph begins; whether it qualifies is stem_finding's sentence.
        if op is stem or role.place == STEM:
            continue
        if role.place is None:
            text = f"'{op.name}' sits inside the would-be sparse subgraph: {role.problem}"
            breaks.append((position[op.name], text))
        for name in op.inputs:
            if name == GRAPH_INPUT:
                text = f"'{op.name}' reads the model input, so no 3x3 stride-2 stem starts the subgraph"
                breaks.append((position[op.name], text))
            else:
                pending.append(by_name[name])
    breaks.extend(_outside_consumers(members, ops, outputs, position))
    ordered = tuple(op for op in ops if op.name in members)
    return Cluster(ordered, ends, tuple(dict.fromkeys(text for _, text in sorted(breaks))))


def _outside_consumers(
    members: dict[str, GraphOp], ops: Sequence[GraphOp], outputs: Sequence[str], position: dict[str, int]
) -> list[tuple[int, str]]:
    """XNNPACK drops the whole subgraph when a tensor inside it is also read outside it."""
    consumers = consumers_of(ops)
    breaks = []
    for member in members.values():
        if sparse_role(member).place == END:
            continue  # the subgraph's own output: read outside by design
        for consumer in consumers[member.name]:
            if consumer not in members:
                text = f"'{member.name}' also feeds '{consumer}', outside the sparse subgraph"
                breaks.append((position[member.name], text))
        if member.name in outputs:
            text = f"'{member.name}' is also a model output, read outside the sparse subgraph"
            breaks.append((position[member.name], text))
    return breaks


def dtype_finding(ops: Sequence[GraphOp]) -> Finding:
    weighted = [op for op in ops if op.weight_dtype is not None]
    if any(op.activation_dtype not in FLOAT_DTYPES for op in weighted):
        return Finding(
            "blocks", "the model is integer-quantized; XNNPACK's sparse path runs float32 and float16 models only."
        )
    weight_dtypes = sorted({op.weight_dtype for op in weighted})
    if any(dtype not in FLOAT_DTYPES for dtype in weight_dtypes):
        return Finding(
            "blocks",
            "the model is dynamic-range quantized (int8 weights, float activations); "
            "XNNPACK's sparse path runs float32 and float16 models only.",
        )
    described = "/".join(weight_dtypes) or "float32"
    return Finding("ok", f"{described} weights: XNNPACK's sparse kernels take float32 and float16 models.")


def stem_finding(stem: GraphOp | None, ops: Sequence[GraphOp]) -> Finding:
    if stem is None:
        others = [op for op in ops if op.kind in CONVOLUTION_KINDS]
        if others:
            kinds = ", ".join(dict.fromkeys(op.kind for op in others))
            return Finding(
                "blocks",
                f"the model's convolutions (the first is '{others[0].name}') are {kinds}, which XNNPACK's sparse "
                "subgraph cannot run: it starts at a 3x3 stride-2 CONV_2D and holds CONV_2D and DEPTHWISE_CONV_2D.",
            )
        return Finding(
            "blocks", "the model has no convolution, so there is no 3x3 stride-2 stem to start a sparse subgraph."
        )
    role = sparse_role(stem)
    if role.place == STEM:
        return Finding(
            "ok", f"the stem '{stem.name}' is a 3x3 stride-2 CONV_2D on 3 channels padded by 1 on each side."
        )
    # A 1x1 convolution or a valid depthwise one has no problem of its own: it just is no stem.
    problem = role.problem or (
        f"it is a {_pair(stem.kernel or (0, 0))} {stem.kind}, not a 3x3 stride-2 CONV_2D on 3 channels"
    )
    return Finding("blocks", f"the first convolution '{stem.name}' cannot start a sparse subgraph: {problem}.")


def cluster_findings(cluster: Cluster, stem: GraphOp | None) -> list[Finding]:
    if not cluster.ends:
        return [
            Finding(
                "blocks",
                "no MEAN over height and width (GlobalAveragePooling2D) or DEPTH_TO_SPACE ends the convolutional "
                "part, so XNNPACK finds no subgraph to run sparse.",
            )
        ]
    if cluster.breaks:
        listed = [Finding("blocks", f"{text}.") for text in cluster.breaks[:MAX_LISTED_BREAKS]]
        hidden = len(cluster.breaks) - MAX_LISTED_BREAKS
        if hidden > 0:
            verb = "breaks" if hidden == 1 else "break"
            listed.append(Finding("blocks", f"{_count(hidden, 'more op')} {verb} the sparse subgraph the same way."))
        return listed
    start = f"'{stem.name}'" if stem is not None else "the stem"
    end = cluster.ends[-1]
    return [
        Finding(
            "ok",
            f"all {len(cluster.members)} ops from {start} to '{end.name}' ({end.kind}) can run in XNNPACK's sparse "
            "subgraph (1x1 convolutions, 3x3/5x5 depthwise convolutions, ADD/MUL, simple activations).",
        )
    ]


def zero_fraction_finding(scope: Sequence[GraphOp]) -> Finding:
    pointwise = [op for op in scope if op.kind == CONV_2D and op.kernel == (1, 1)]
    weights = sum(op.weights for op in pointwise)
    zeros = sum(op.weight_zeros for op in pointwise)
    if not weights:
        return Finding("blocks", "there are no 1x1 convolutions; XNNPACK turns sparse inference off without them.")
    described = f"{zeros / weights:.1%} of the weights of the {_count(len(pointwise), '1x1 convolution')} are zero"
    # XNNPACK's own test: num_zeroes * 3 > num_params * 2.
    if zeros * 3 > weights * 2:
        return Finding("ok", f"{described}; XNNPACK needs more than 2/3 (66.7%).")
    return Finding(
        "blocks",
        f"only {described}; XNNPACK needs more than 2/3 (66.7%). Prune the 1x1 convolutions harder "
        "(tfmot's PruneForLatencyOnXNNPack policy prunes exactly these).",
    )


def encoding_findings(graph: ModelGraph, ops: Sequence[GraphOp], scope: Sequence[GraphOp]) -> list[Finding]:
    if not graph.is_converted:
        return [KERAS_ENCODING_NOTE]
    findings = []
    encoded = [op for op in scope if op.sparse_encoding is not None and op.kind in CONV_2D_KINDS]
    if encoded:
        findings.append(
            Finding(
                "ok",
                f"the weights of {_count(len(encoded), 'convolution')} are stored sparse (DENSIFY), which is what "
                "makes the XNNPACK delegate try sparse inference.",
            )
        )
    else:
        findings.append(
            Finding(
                "blocks",
                "no convolution weights are stored sparse (no DENSIFY), so the XNNPACK delegate never tries sparse "
                "inference; convert with tf.lite.Optimize.EXPERIMENTAL_SPARSITY.",
            )
        )
    for op in ops:
        encoding = op.sparse_encoding or ""
        if op.kind == FULLY_CONNECTED and encoding.startswith("block "):
            findings.append(
                Finding(
                    "note",
                    f"'{op.name}' stores its weights in {encoding.removeprefix('block ')} blocks: "
                    "LiteRT's builtin sparse kernel runs this FULLY_CONNECTED, not XNNPACK.",
                )
            )
    return findings


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _rank(op: GraphOp) -> int | None:
    return len(op.input_shape) if op.input_shape is not None else None


def _pair(values: tuple[int, int]) -> str:
    return f"{values[0]}x{values[1]}"


def _describe_pads(pads: tuple[int, int, int, int]) -> str:
    top, bottom, left, right = pads
    return f"top {top}, bottom {bottom}, left {left}, right {right}"
