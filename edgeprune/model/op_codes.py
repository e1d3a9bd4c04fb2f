"""The builtin ops, with their versions, that a .tflite asks its runtime for; and models that ask for one each.

A runtime resolves every entry of a model's op-code table when the interpreter is built, before any kernel runs,
and refuses the model when one (op, version) is missing: ``Didn't find op for builtin opcode 'FULLY_CONNECTED'
version '12'``. No runtime lists the pairs it resolves, so a board is asked with models whose op-code table holds
one pair and whose graph holds nothing (a few hundred bytes each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from ..errors import ModelLoadError
from .tflite_file import TFLITE_IDENTIFIER

BUILTIN_NAMES: dict[int, str] = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
# schema.fbs: codes from here on live only in the int32 ``builtin_code``, the byte field then holds this value.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127
TFLITE_SCHEMA_VERSION = 3
MAX_OP_CODES = 10_000  # entries in one model's op-code table; converters write one per (op, version) used


def builtin_code(builtin: int, deprecated: int) -> int:
    """An op-code entry's code: old files fill only the byte field, codes above 127 only the int32 one, so the
    runtime takes the larger (schema_utils.cc GetBuiltinCode)."""
    return max(builtin, deprecated)


@dataclass(frozen=True, order=True)
class OpVersion:
    name: str
    version: int
    code: int

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


def read_op_versions(path: Path) -> tuple[OpVersion, ...]:
    """The builtin (op, version) pairs of ``path``'s op-code table, sorted; custom ops are not versioned builtins
    and are left out. Only the table is decoded, not the weights."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read '{path}': {exc.strerror or exc}", hint="check the path") from None
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelLoadError(f"'{path}' is not a TFLite model (no TFL3 flatbuffer identifier)",
                             hint="pass a .tflite file written by the TFLite converter")
    try:
        model = schema.Model.GetRootAs(data, 0)
        if model.OperatorCodesLength() > MAX_OP_CODES:
            raise ValueError(f"{model.OperatorCodesLength()} op codes, more than any converter writes")
        pairs = set()
        for index in range(model.OperatorCodesLength()):
            entry = model.OperatorCodes(index)
            code = builtin_code(entry.BuiltinCode(), entry.DeprecatedBuiltinCode())
            if code == schema.BuiltinOperator.CUSTOM:
                continue
            if entry.Version() < 1:
                raise ValueError(f"{BUILTIN_NAMES.get(code, code)} has version {entry.Version()}")
            pairs.add(OpVersion(BUILTIN_NAMES.get(code, f"BUILTIN_{code}"), entry.Version(), code))
    except Exception as exc:  # a damaged flatbuffer fails with IndexError, struct.error, ...
        raise ModelLoadError(f"cannot read the op codes of '{path}': {type(exc).__name__}: {exc}",
                             hint="the file is damaged; export it again") from None
    return tuple(sorted(pairs))


def one_op_model(op: OpVersion) -> bytes:
    """A model whose op-code table holds ``op`` alone and whose graph is empty: building an interpreter from it
    succeeds exactly when the runtime resolves ``op``."""
    model = schema.ModelT()
    model.version = TFLITE_SCHEMA_VERSION
    entry = schema.OperatorCodeT()
    entry.builtinCode = op.code
    entry.deprecatedBuiltinCode = min(op.code, PLACEHOLDER_FOR_GREATER_OP_CODES)
    entry.version = op.version
    model.operatorCodes = [entry]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [], [], [], []
    model.subgraphs = [graph]
    model.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel every model starts with
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())
