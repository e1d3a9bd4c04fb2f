"""The runner's replies as the host accepts them: protocol 1, every field checked before anything uses it.

A board is not trusted to send what ``device_scripts/edgeprune_runner.py`` would: it may run another script, a
damaged or hostile one. So each reply is read field by field into the typed reply of its command, with bounds
that follow from what was asked (a bench of 100 runs in 60 s cannot bring a million samples, nor a sample longer
than the call was allowed to take). Any deviation is a ``FieldError`` naming the field; the runner client turns it
into the run's one-line error. Strings arrive cleaned to one printable line (``json_fields.printable``).
"""

from __future__ import annotations

import re
from typing import TypedDict

from ..json_fields import FieldError, Fields
from ..results.schema import MAX_MEASURE

MAX_REPLY_BYTES = 64 * 2**20
# A bench reply's samples: 4 million 1-microsecond invokes is more than --min-seconds makes of any real model,
# and about 40 MB of JSON.
MAX_SAMPLES = 4_000_000
MAX_LOG_WARNINGS = 10  # the runner keeps the first 10
MAX_RUNTIMES = 10
MAX_OUTPUTS = 1000
MAX_OP_TENSORS = 100_000
MAX_DIMENSIONS = 16
MAX_RSS_MB = MAX_MEASURE  # what the results reader accepts (a petabyte: anything above is no measurement)
MIN_TEMPERATURE_C, MAX_TEMPERATURE_C = -273.15, 1000.0
MAX_CORES = 2**16
MAX_CPU_FEATURES = 1000  # an x86 server lists about 200 flags
MAX_ELEMENTS = 2**40
MAX_OPS_ASKED = 1000  # distinct (op, version) pairs one ``ops`` call asks about
OUTPUT_NAME = re.compile(r"output_[0-9]{1,4}")


class RuntimeInfo(TypedDict):
    name: str
    version: str


class Delegation(TypedDict):
    requested: bool
    delegate_created: bool
    log_warnings: list[str]


class BoardState(TypedDict):
    soc_temp_c: float | None
    throttled: str | None
    cpu_governor: str | None


class ProbeReply(TypedDict):
    hostname: str
    arch: str
    os: str
    kernel: str
    cpu_model: str | None
    cpu_part: str | None
    cpu_features: list[str]
    cpu_cores: int | None
    python: str
    python_executable: str
    libc: str | None
    numpy: str | None
    runtimes_installed: list[str]
    runtime: RuntimeInfo | None
    runtime_error: str | None
    xnnpack_available: bool
    workdir_free_mb: float | None
    soc_temp_c: float | None
    throttled: str | None
    cpu_governor: str | None


class BenchReply(TypedDict):
    runtime: RuntimeInfo
    threads: int | None
    xnnpack: Delegation
    init_ns: int
    first_invoke_ns: int
    warmup: int
    samples_ns: list[int]
    peak_rss_mb: float | None
    state_before: BoardState
    state_after: BoardState


class OpTensor(TypedDict):
    """One op output that ``infer --all-tensors`` kept, as ``tensor_{i}`` of the outputs file."""
    op_index: int
    op: str
    tensor: str
    shape: list[int]
    quantized: bool


class InferReply(TypedDict):
    runtime: RuntimeInfo
    threads: int | None
    xnnpack: Delegation
    n: int
    outputs: str
    output_shapes: dict[str, list[int]]
    tensors: list[OpTensor]


def probe_reply(reply: Fields) -> ProbeReply:
    return {
        "hostname": reply.text("hostname", limit=255),
        "arch": reply.text("arch", limit=64),
        "os": reply.text("os", limit=255),
        "kernel": reply.text("kernel", limit=255),
        "cpu_model": reply.text("cpu_model", null=True, limit=255),
        "cpu_part": reply.text("cpu_part", null=True, limit=16),
        "cpu_features": reply.texts("cpu_features", max_items=MAX_CPU_FEATURES, limit=64),
        "cpu_cores": reply.integer("cpu_cores", low=1, high=MAX_CORES, null=True),
        "python": reply.text("python", limit=64),
        "python_executable": reply.text("python_executable", limit=4096),
        "libc": reply.text("libc", null=True, limit=64),
        "numpy": reply.text("numpy", null=True, limit=64),
        "runtimes_installed": reply.texts("runtimes_installed", max_items=MAX_RUNTIMES, limit=64),
        "runtime": runtime_info(runtime) if (runtime := reply.object("runtime", null=True)) is not None else None,
        "runtime_error": reply.text("runtime_error", null=True),
        "xnnpack_available": reply.flag("xnnpack_available"),
        "workdir_free_mb": reply.number("workdir_free_mb", low=0, null=True),
        **board_state(reply),
    }


def bench_reply(reply: Fields, *, runs: int, warmup: int, min_seconds: float, threads: int | None, xnnpack: bool,
                timeout_s: float) -> BenchReply:
    """``runs`` .. ``timeout_s``: what the runner was asked, which bounds what it can have measured."""
    limit_ns = int(timeout_s * 1e9)
    samples = reply.integers("samples_ns", max_items=MAX_SAMPLES, low=1, high=limit_ns)
    if len(samples) < runs:
        raise FieldError(f"samples_ns has {len(samples)} samples, fewer than the {runs} asked for")
    # The runner times past `runs` only while its loop is younger than `min_seconds`.
    if len(samples) > runs and sum(samples[:-1]) >= int(min_seconds * 1e9):
        raise FieldError(f"samples_ns has {len(samples)} samples, more than the {runs} asked for in "
                         f"{min_seconds:g} s")
    init_ns = reply.integer("init_ns", low=0, high=limit_ns)
    first_invoke_ns = reply.integer("first_invoke_ns", low=0, high=limit_ns)
    if init_ns + first_invoke_ns + sum(samples) > limit_ns:
        raise FieldError(f"init_ns, first_invoke_ns and samples_ns add up to more than the {timeout_s:g} s the "
                         "runner had")
    return {
        "runtime": runtime_info(reply.object("runtime")),
        "threads": echoed(reply, "threads", threads),
        "xnnpack": delegation(reply.object("xnnpack"), xnnpack),
        "init_ns": init_ns,
        "first_invoke_ns": first_invoke_ns,
        "warmup": echoed(reply, "warmup", warmup),
        "samples_ns": samples,
        "peak_rss_mb": reply.number("peak_rss_mb", low=0, high=MAX_RSS_MB, null=True),
        "state_before": board_state(reply.object("state_before")),
        "state_after": board_state(reply.object("state_after")),
    }


def infer_reply(reply: Fields, *, outputs: str, threads: int | None, xnnpack: bool) -> InferReply:
    return {
        "runtime": runtime_info(reply.object("runtime")),
        "threads": echoed(reply, "threads", threads),
        "xnnpack": delegation(reply.object("xnnpack"), xnnpack),
        "n": reply.integer("n", low=0, high=MAX_ELEMENTS),
        "outputs": echoed(reply, "outputs", outputs),
        "output_shapes": output_shapes(reply.object("output_shapes")),
        "tensors": reply.each("tensors", op_tensor, max_items=MAX_OP_TENSORS, optional=True) or [],
    }


def op_tensor(holder: Fields, key: str) -> OpTensor:
    tensor = holder.object(key)
    return {"op_index": tensor.integer("op_index", low=0, high=MAX_OP_TENSORS),
            "op": tensor.text("op", limit=128), "tensor": tensor.text("tensor", limit=4096),
            "shape": tensor.integers("shape", max_items=MAX_DIMENSIONS, low=0, high=MAX_ELEMENTS),
            "quantized": tensor.flag("quantized")}


class OpLoad(TypedDict):
    op: str
    version: int
    loads: bool
    error: str | None


class OpsReply(TypedDict):
    runtime: RuntimeInfo
    ops: list[OpLoad]


def ops_reply(reply: Fields, *, asked: list[tuple[str, int]]) -> OpsReply:
    """``asked``: the (op, version) pairs sent, in order; the reply answers exactly those."""
    ops = reply.each("ops", op_load, max_items=MAX_OPS_ASKED)
    answered = [(op["op"], op["version"]) for op in ops]
    if answered != asked:
        raise FieldError(f"ops answers {len(answered)} op versions, not the {len(asked)} asked, in their order")
    return {"runtime": runtime_info(reply.object("runtime")), "ops": ops}


def op_load(holder: Fields, key: str) -> OpLoad:
    entry = holder.object(key)
    loads = entry.flag("loads")
    return {"op": entry.text("op", limit=128), "version": entry.integer("version", low=1, high=2**31 - 1),
            "loads": loads, "error": entry.text("error", null=loads, limit=1000)}


def output_shapes(shapes: Fields) -> dict[str, list[int]]:
    if len(shapes.value) > MAX_OUTPUTS:
        raise FieldError(f"{shapes.where} has {len(shapes.value)} outputs, more than the {MAX_OUTPUTS} it may have")
    if not all(OUTPUT_NAME.fullmatch(name) for name in shapes.value):
        raise FieldError(f"{shapes.where} has an output that is not named output_N")
    return {name: shapes.integers(name, max_items=MAX_DIMENSIONS, low=0, high=MAX_ELEMENTS) for name in shapes.value}


def runtime_info(runtime: Fields) -> RuntimeInfo:
    return {"name": runtime.text("name", limit=64), "version": runtime.text("version", limit=64)}


def delegation(evidence: Fields, requested: bool) -> Delegation:
    return {
        "requested": echoed(evidence, "requested", requested),
        "delegate_created": evidence.flag("delegate_created"),
        "log_warnings": evidence.texts("log_warnings", max_items=MAX_LOG_WARNINGS),
    }


def board_state(state: Fields) -> BoardState:
    return {
        "soc_temp_c": state.number("soc_temp_c", low=MIN_TEMPERATURE_C, high=MAX_TEMPERATURE_C, null=True),
        "throttled": state.text("throttled", null=True, limit=64),
        "cpu_governor": state.text("cpu_governor", null=True, limit=64),
    }


def echoed(reply: Fields, key: str, asked: object) -> object:
    """A value the runner repeats from its command line: anything else means it did not do what was asked."""
    value = reply.value.get(key)
    if type(value) is not type(asked) or value != asked:
        raise FieldError(f"{reply.key(key)} is not the {asked!r} asked for")
    return value
