"""Read a .tflite flatbuffer with LiteRT's maintained schema module, and decode its constant tensors.

Only what edgeprune needs of a converted model: the unpacked model (its outputs and signature pair a variant's
outputs with Keras's), the bytes behind a tensor, how many of a weight tensor's elements are zero (sparse-encoded
or not), the name of its sparse encoding, and how many tensors are stored sparse (export records it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ..errors import ModelLoadError

TFLITE_IDENTIFIER = b"TFL3"

TYPE_NAMES: dict[int, str] = {
    value: name.lower() for name, value in vars(schema.TensorType).items() if not name.startswith("_")
}
# Types numpy stores as they are; bfloat16 and int4 are decoded by hand below.
_NUMPY_TYPES = frozenset(
    {"float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool"}
)


@dataclass(frozen=True)
class TFLiteFile:
    # Where the bytes came from, for messages: a file path, or a description of an in-memory flatbuffer.
    source: str
    data: bytes
    model: schema.ModelT

    @property
    def main_graph(self) -> schema.SubGraphT:
        return self.model.subgraphs[0]


def read_tflite(path: Path) -> TFLiteFile:
    if not path.exists():
        raise ModelLoadError(f"model '{path}' does not exist", hint="check the path")
    if path.is_dir():
        raise ModelLoadError(f"'{path}' is a folder, not a .tflite file", hint="pass the .tflite file itself")
    return parse_tflite(path.read_bytes(), str(path))


def parse_tflite(data: bytes, source: str) -> TFLiteFile:
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelLoadError(
            f"'{source}' is not a TFLite model (no TFL3 flatbuffer identifier)",
            hint="pass a .tflite file written by the TFLite converter",
        )
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
        _check_references(model, len(data))
    except Exception as exc:  # a damaged flatbuffer fails with IndexError, struct.error, ValueError ...
        raise ModelLoadError(
            f"'{source}' is a damaged TFLite file ({type(exc).__name__}: {str(exc)[:200]})",
            hint="it may be truncated; export it again",
        ) from exc
    return TFLiteFile(source, data, model)


def sparse_tensor_count(flatbuffer: bytes) -> int:
    """How many tensors of a converted model are stored sparse-encoded (the converter's EXPERIMENTAL_SPARSITY)."""
    model = parse_tflite(flatbuffer, "converted flatbuffer").model
    return sum(
        1 for graph in model.subgraphs for tensor in graph.tensors or [] if tensor.sparsity is not None
    )


def _check_references(model: schema.ModelT, file_size: int) -> None:
    """Index checks the schema module does not make, so a damaged file fails here and not mid-report."""
    if not model.subgraphs:
        raise ValueError("the model has no subgraph")
    buffers = model.buffers or []
    for buffer in buffers:
        if buffer.offset > 1 and buffer.offset + buffer.size > file_size:
            raise ValueError("a weight buffer lies past the end of the file")
    graph = model.subgraphs[0]
    tensors = graph.tensors or []
    if any(tensor.buffer >= len(buffers) for tensor in tensors):
        raise ValueError("a tensor refers to a buffer that does not exist")
    for operator in graph.operators or []:
        if operator.opcodeIndex >= len(model.operatorCodes or []):
            raise ValueError("an operator refers to an operator code that does not exist")
        if any(index >= len(tensors) for index in [*operator.inputs, *operator.outputs]):
            raise ValueError("an operator refers to a tensor that does not exist")


def is_constant(tfl: TFLiteFile, tensor: schema.TensorT) -> bool:
    buffer = tfl.model.buffers[tensor.buffer]
    # Models over 2 GB keep their weights after the flatbuffer, at an offset (0 and 1 mean "none").
    return buffer.offset > 1 or (buffer.data is not None and len(buffer.data) > 0)


def _tensor_bytes(tfl: TFLiteFile, tensor: schema.TensorT) -> bytes:
    """The constant data behind a tensor (empty for a tensor computed at run time)."""
    buffer = tfl.model.buffers[tensor.buffer]
    if buffer.offset > 1:
        return tfl.data[buffer.offset : buffer.offset + buffer.size]
    return buffer.data.tobytes() if buffer.data is not None else b""


def dtype_name(tensor: schema.TensorT) -> str:
    return TYPE_NAMES.get(tensor.type, f"type {tensor.type}")


def shape_of(tensor: schema.TensorT) -> tuple[int, ...]:
    return tuple(int(size) for size in (tensor.shape if tensor.shape is not None else ()))


def constant_array(tfl: TFLiteFile, tensor: schema.TensorT) -> np.ndarray:
    """A small dense constant (paddings, axes) as numpy, in its shape."""
    return np.frombuffer(_tensor_bytes(tfl, tensor), dtype=np.dtype(dtype_name(tensor))).reshape(shape_of(tensor))


def count_zeros(tfl: TFLiteFile, tensor: schema.TensorT) -> int:
    """Zero elements of a weight tensor in its dense shape; a sparse tensor stores only (blocks of) non-zeros."""
    stored = _zero_offsets(tfl, tensor)
    if tensor.sparsity is not None:
        return math.prod(shape_of(tensor)) - int(np.count_nonzero(stored))
    return int(stored.size - np.count_nonzero(stored))


def _zero_offsets(tfl: TFLiteFile, tensor: schema.TensorT) -> np.ndarray:
    """The stored values shifted so that a zero weight reads 0 (integer weights: value minus zero point)."""
    raw = _tensor_bytes(tfl, tensor)
    name = dtype_name(tensor)
    if name == "bfloat16":
        return np.frombuffer(raw, dtype=np.uint16) & 0x7FFF  # ignore the sign bit: -0 is zero
    if name == "int4":
        packed = np.frombuffer(raw, dtype=np.uint8)
        values = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(-1)[: math.prod(shape_of(tensor))]
        return values.astype(np.int32) - _zero_point(tensor, dense_shape=None)
    if name not in _NUMPY_TYPES:
        raise ModelLoadError(
            f"'{tfl.source}': cannot read weights of type {name}", hint="inspect reads float and integer weights"
        )
    values = np.frombuffer(raw, dtype=np.dtype(name))
    if name.startswith("float"):
        return values
    dense_shape = shape_of(tensor) if tensor.sparsity is None else None
    if dense_shape is not None:
        values = values.reshape(dense_shape)
    return values.astype(np.int64) - _zero_point(tensor, dense_shape)


def _zero_point(tensor: schema.TensorT, dense_shape: tuple[int, ...] | None) -> np.ndarray | int:
    quantization = tensor.quantization
    zero_points = getattr(quantization, "zeroPoint", None)
    if zero_points is None or len(zero_points) == 0:
        return 0
    zero_points = np.asarray(zero_points, dtype=np.int64)
    if np.all(zero_points == zero_points[0]) or dense_shape is None:
        # Per-channel zero points that differ exist only for dense weights: the converter encodes
        # symmetric (zero point 0) weights alone as sparse.
        return int(zero_points[0])
    broadcast = [1] * len(dense_shape)
    broadcast[quantization.quantizedDimension] = len(zero_points)
    return zero_points.reshape(broadcast)


def sparse_encoding(tensor: schema.TensorT) -> str | None:
    """'CSR' for element-wise sparsity, 'block RxC' for block sparsity, None for a dense tensor.

    The schema lists one DimensionMetadata per traversed dimension: the tensor's own dims first, then one per
    block dimension; ``block_map`` says which original dimension each block dimension splits.
    """
    sparsity = tensor.sparsity
    if sparsity is None:
        return None
    block_map = [int(dim) for dim in (sparsity.blockMap if sparsity.blockMap is not None else ())]
    if not block_map:
        return "CSR"
    rank = len(shape_of(tensor))
    block = [1] * rank
    for position, dim in enumerate(block_map):
        block[dim] = int(sparsity.dimMetadata[rank + position].denseSize)
    return "block " + "x".join(str(size) for size in block[-2:])
