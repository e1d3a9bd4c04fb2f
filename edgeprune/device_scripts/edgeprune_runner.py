#!/usr/bin/env python3
"""edgeprune's device runner: measures one TFLite model on the machine it runs on.

It is copied to the board and started there. It needs only the standard library, numpy and a TFLite runtime
(ai_edge_litert, tflite_runtime or tensorflow.lite), and never imports edgeprune. It speaks a versioned JSON
protocol: exactly one JSON object on stdout per command, errors included; everything else (runtime logs) goes to
stderr. Two commands live longer and print lines before their final reply (``{"event": ...}`` or replies):
``lock`` holds the board lock for a whole bench, until its stdin closes; ``serve`` imports numpy and the runtime
once, then answers one request per stdin line (``{"id": N, "argv": [...], "timeout_s": S}``, argv as for a
``bench``, ``infer`` or ``ops`` command) with that command's reply plus ``"id"``. Each request is measured in a child
forked for it: a clean process of its own (its own peak RSS, init time and first invoke), without paying the
imports again. A child that crashes or outlives ``timeout_s`` fails that request only; a child never outlives
the server (``PR_SET_PDEATHSIG``).

    edgeprune_runner.py probe [--runtime NAME] [--workdir DIR]
    edgeprune_runner.py bench --model M [--threads N] [--warmup N] [--runs N] [--min-seconds S]
                              [--xnnpack on|off] [--runtime NAME] [--seed N]
    edgeprune_runner.py infer --model M --inputs X.npy --outputs OUT.npz [--threads N] [--xnnpack on|off]
                              [--runtime NAME]
    edgeprune_runner.py ops --bundle OPS.json [--runtime NAME]
    edgeprune_runner.py serve [--runtime NAME]
    edgeprune_runner.py lock --path WORKDIR/bench.lock [--timeout S] [--holder-host NAME] [--holder-pid N]
                             [--heartbeat-timeout S]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime
import functools
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

STARTED_NS = time.perf_counter_ns()
PROTOCOL = 1
EXIT_FAILED = 3
RUNTIME_ORDER = ("ai_edge_litert", "tflite_runtime", "tensorflow")
XNNPACK_CREATED_MARK = "Created TensorFlow Lite XNNPACK delegate"
# Op outputs that carry activations, as floats or quantized (indices, shapes and int32 accumulators do not).
DEQUANTIZABLE = ("float32", "float16", "int8", "uint8", "int16")
LOCK_POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
MAX_REQUEST_BYTES = 1 << 20
MAX_TIMEOUT_S = 7 * 86400  # what bench and sweep accept for --timeout
MAX_OPS_BUNDLE_BYTES = 4 << 20

# A 1 KB Dense(4->3) model: lets `probe` show whether the runtime brings XNNPACK without any upload.
PROBE_MODEL = "".join((
    "HAAAAFRGTDMUACAAHAAYABQAEAAMAAAACAAEABQAAAAcAAAAjAAAAOQAAADYAQAA6AEAALADAAADAAAAAQAAABAAAAAAAAoAEAAM",
    "AAgABAAKAAAADAAAABwAAAA4AAAADwAAAHNlcnZpbmdfZGVmYXVsdAABAAAABAAAAJz///8CAAAABAAAAAUAAABkZW5zZQAAAAEA",
    "AAAEAAAA4v7//wQAAAAHAAAAaW5wdXRfMQACAAAANAAAAAQAAADc////BQAAAAQAAAATAAAAQ09OVkVSU0lPTl9NRVRBREFUQQAI",
    "AAwACAAEAAgAAAAEAAAABAAAABMAAABtaW5fcnVudGltZV92ZXJzaW9uAAYAAADwAAAA6AAAAKgAAACYAAAAdAAAAAQAAABu////",
    "BAAAAGAAAAAQAAAAAAAAAAgADgAIAAQACAAAABAAAAAkAAAAAAAGAAgABAAGAAAABAAAAAAAAAAMABgAFAAQAAwABAAMAAAASnZe",
    "MhRxkusCAAAAAgAAAAQAAAAGAAAAMi4yMS4wAADa////BAAAABAAAAAxLjUuMAAAAAAAAAAAAAAABAAGAAQAAAAAAAYACAAEAAYA",
    "AAAEAAAAMAAAAIUqP7/UmIA+yOVCPigHmz4j01u/mLwVPuwalT4OBAm/QOQeP7K9PD+QDfY94N40Pkz+//9Q/v//DwAAAE1MSVIg",
    "Q29udmVydGVkLgABAAAAFAAAAAAADgAYABQAEAAMAAgABAAOAAAAFAAAABwAAABgAAAAZAAAAGgAAAAEAAAAbWFpbgAAAAABAAAA",
    "FAAAAAAADgAUAAAAEAAMAAsABAAOAAAAEAAAAAAAAAgMAAAAEAAAAND+//8BAAAAAgAAAAMAAAAAAAAAAQAAAP////8BAAAAAgAA",
    "AAEAAAAAAAAAAwAAANgAAAB4AAAABAAAAEr///8AAAABFAAAABwAAAAcAAAAAwAAADQAAAACAAAA/////wMAAAA0////GQAAAFN0",
    "YXRlZnVsUGFydGl0aW9uZWRDYWxsOjAAAAACAAAAAQAAAAMAAAAAABYAGAAUAAAAEAAMAAgAAAAAAAAABwAWAAAAAAAAARAAAAAQ",
    "AAAAAgAAACQAAACU////FwAAAHNlcXVlbnRpYWwvZGVuc2UvTWF0TXVsAAIAAAADAAAABAAAAAAAFgAcABgAAAAUABAADAAAAAAA",
    "CAAHABYAAAAAAAABFAAAACAAAAAgAAAAAQAAADgAAAACAAAA/////wQAAAAEAAQABAAAABkAAABzZXJ2aW5nX2RlZmF1bHRfaW5w",
    "dXRfMTowAAAAAgAAAAEAAAAEAAAAAQAAABAAAAAMAAwACwAAAAAABAAMAAAACQAAAAAAAAk=",
))
# CPU part numbers of the ARM cores found on boards people benchmark on (/proc/cpuinfo "CPU part").
AT_HWCAP = 16
# linux/arch/arm64/include/uapi/asm/hwcap.h, bits 0-31 of AT_HWCAP, as /proc/cpuinfo prints them.
AARCH64_HWCAP_NAMES = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
                       "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
                       "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
                       "paca", "pacg")
ARM_CORES = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0d": "Cortex-A77", "0xd41": "Cortex-A78", "0xc07": "Cortex-A7", "0xc0f": "Cortex-A15"}


class RunnerFailure(Exception):
    """An expected failure, reported as {"ok": false, "error": {"kind", "message"}}."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---------------------------------------------------------------------------------------------- output


@contextlib.contextmanager
def stdout_reserved_for_protocol():
    """Point fd 1 at stderr while work runs, so native code that prints cannot corrupt the JSON reply."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        yield protocol_fd
    finally:
        sys.stdout.flush()
        os.dup2(protocol_fd, 1)
        os.close(protocol_fd)


@contextlib.contextmanager
def captured_native_stderr(log: list):
    """Collect what native code writes to fd 2 (LiteRT logs delegate decisions there), then pass it on."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            log.extend(line for line in text.splitlines() if line.strip())
            sys.stderr.write(text)


# --------------------------------------------------------------------------------------------- runtime


class Runtime:
    """One TFLite runtime: its Interpreter class, its op resolver enum, its name and version."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "ai_edge_litert":
            module = importlib.import_module("ai_edge_litert.interpreter")
            self.interpreter_class = module.Interpreter
            self.resolver = module.OpResolverType
            self.version = importlib.metadata.version("ai-edge-litert")
        elif name == "tflite_runtime":
            module = importlib.import_module("tflite_runtime.interpreter")
            self.interpreter_class = module.Interpreter
            self.resolver = module.OpResolverType
            self.version = importlib.import_module("tflite_runtime").__version__
        elif name == "tensorflow":
            tf = importlib.import_module("tensorflow")
            self.interpreter_class = tf.lite.Interpreter
            self.resolver = tf.lite.experimental.OpResolverType
            self.version = tf.__version__
        else:
            raise RunnerFailure("usage", f"unknown runtime '{name}' (choose from {', '.join(RUNTIME_ORDER)})")

    def interpreter(self, *, model_path: str | None = None, model_content: bytes | None = None,
                    threads: int | None, xnnpack: bool, all_tensors: bool = False):
        options = {"num_threads": threads}
        if all_tensors:  # intermediate tensors kept readable after invoke (per-layer numerics)
            options["experimental_preserve_all_tensors"] = True
        if not xnnpack:
            options["experimental_op_resolver_type"] = self.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if model_path is not None:
            return self.interpreter_class(model_path=model_path, **options)
        return self.interpreter_class(model_content=model_content, **options)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version}


def runtime_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@functools.lru_cache(maxsize=None)  # serve's children inherit the server's: no import or version lookup per call
def load_runtime(forced: str | None) -> Runtime:
    if forced and forced != "auto":
        if forced not in RUNTIME_ORDER:
            raise RunnerFailure("usage", f"unknown runtime '{forced}' (choose from {', '.join(RUNTIME_ORDER)})")
        if not runtime_installed(forced):
            raise RunnerFailure("runtime-missing", f"runtime '{forced}' is not installed for {sys.executable}")
        return imported_runtime(forced)
    broken = []
    for name in RUNTIME_ORDER:
        if runtime_installed(name):
            try:
                return imported_runtime(name)
            except RunnerFailure as failure:  # installed but unusable: the next one may work
                broken.append(failure.message)
    raise RunnerFailure(
        "runtime-missing",
        "; ".join(broken) if broken else f"no TFLite runtime importable by {sys.executable}: install ai-edge-litert "
        "(pip install ai-edge-litert) or tflite-runtime",
    )


def imported_runtime(name: str) -> Runtime:
    """The runtime once it has built an interpreter, or why an installed one cannot: tflite-runtime beside numpy 2
    imports, then fails in its first interpreter (``_ARRAY_API not found``)."""
    try:
        runtime = Runtime(name)
        runtime.interpreter(model_content=base64.b64decode(PROBE_MODEL), threads=1, xnnpack=False)
        return runtime
    except Exception as exc:  # ImportError, or a SystemError whose cause names what the extension missed
        numpy_version = importlib.metadata.version("numpy") if runtime_installed("numpy") else None
        hint = (f"; it was built against numpy 1.x and this python has numpy {numpy_version}: install numpy<2 "
                "beside it" if name == "tflite_runtime" and numpy_version and not numpy_version.startswith("1.")
                else "")
        raise RunnerFailure("runtime-missing", f"{name} is installed for {sys.executable} but does not work: "
                                               f"{one_line(exc.__cause__ or exc)}{hint}")


def open_model(runtime: Runtime, model: str, threads: int | None, xnnpack: bool, log: list,
               all_tensors: bool = False):
    """Create and allocate an interpreter, keeping the runtime's log lines as evidence of delegation."""
    if not os.path.isfile(model):
        raise RunnerFailure("load", f"model file not found on the device: {model}")
    try:
        with captured_native_stderr(log):
            interpreter = runtime.interpreter(model_path=model, threads=threads, xnnpack=xnnpack,
                                              all_tensors=all_tensors)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise RunnerFailure("load", f"{runtime.name} cannot load {os.path.basename(model)}: {one_line(exc)}")
    return interpreter


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # LiteRT glues its per-node messages together without separators; give each its own clause.
    text = re.sub(r"(?<=\S)(?=failed to delegate|Node number)", "; ", text)
    return text[:500] or type(exc).__name__


def delegation_evidence(log: list, xnnpack: bool) -> dict:
    failures = [line for line in log if "failed to" in line.lower() or "error" in line.lower()]
    return {
        "requested": xnnpack,
        "delegate_created": any(XNNPACK_CREATED_MARK in line for line in log),
        "log_warnings": failures[:10],
    }


# ------------------------------------------------------------------------------------------ board state


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def board_state() -> dict:
    """Temperature and throttling: a hot or under-volted Pi silently slows down, so read them around runs."""
    state = {"soc_temp_c": None, "throttled": None, "cpu_governor": None}
    temperature = read_text("/sys/class/thermal/thermal_zone0/temp")
    if temperature and temperature.lstrip("-").isdigit():
        state["soc_temp_c"] = int(temperature) / 1000.0
    state["cpu_governor"] = read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        try:
            reply = subprocess.run([vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=5)
            state["throttled"] = reply.stdout.strip().partition("=")[2] or None
        except (OSError, subprocess.SubprocessError):
            pass
    return state


def peak_rss_mb() -> float | None:
    status = read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return None


def reset_peak_rss() -> bool:
    """Start this process's peak RSS (VmHWM) over from its current RSS (Linux 4.0+): a forked child then reports
    its own peak, not the server's. False where the kernel does not offer it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def cpuinfo_fields() -> dict:
    """/proc/cpuinfo's first value of each key: the first core's (on a big.LITTLE board, its first cluster's part;
    the feature flags the sparse rules read are the ISA's, which all cores share)."""
    fields: dict = {}
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_part(fields: dict) -> str | None:
    """ARM's "CPU part" (0xd08 is a Cortex-A72): XNNPACK's CPU detection knows some cores' features by it."""
    return fields.get("CPU part", "").lower() or None


def cpu_features(fields: dict) -> list:
    """The CPU's feature flags: fphp/asimdhp, avx and the like, from /proc/cpuinfo ("Features" on ARM, "flags" on
    x86); on 64-bit ARM with the hwcaps the kernel hands this process, which XNNPACK's CPU detection reads (they
    differ where /proc/cpuinfo is not the kernel's, as on an emulated board)."""
    listed = set((fields.get("Features") or fields.get("flags") or "").split())
    if platform.machine() in ("aarch64", "arm64") and struct.calcsize("P") == 8:
        listed |= set(hwcap_names(read_bytes("/proc/self/auxv")))
    return sorted(listed)


def hwcap_names(auxv: bytes) -> list:
    """The aarch64 AT_HWCAP bits of a 64-bit auxiliary vector (pairs of little-endian 8-byte words), named as
    the kernel names them."""
    words = struct.unpack(f"<{len(auxv) // 8}Q", auxv[:len(auxv) // 8 * 8])
    hwcap = next((value for key, value in zip(words[::2], words[1::2]) if key == AT_HWCAP), 0)
    return [name for bit, name in enumerate(AARCH64_HWCAP_NAMES) if hwcap >> bit & 1]


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as source:
            return source.read(16 * 1024)
    except OSError:
        return b""


def cpu_model(fields: dict) -> str | None:
    if fields.get("model name"):
        return fields["model name"]
    core = ARM_CORES.get(fields.get("CPU part", "").lower())
    board = fields.get("Model") or fields.get("Hardware")
    parts = [part for part in (board, core) if part]
    return " / ".join(parts) or platform.processor() or None


def libc() -> str | None:
    """e.g. 'glibc-2.36': which manylinux wheels the board can install."""
    name, version = platform.libc_ver()
    return f"{name}-{version}" if name else None


def os_name() -> str:
    release = read_text("/etc/os-release") or ""
    for line in release.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return f"{platform.system()} {platform.release()}"


# ---------------------------------------------------------------------------------------------- inputs


def random_inputs(interpreter, seed: int) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    inputs = []
    for detail in interpreter.get_input_details():
        shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape, dtype=dtype)
        else:
            value = rng.standard_normal(shape).astype(dtype)
        inputs.append((detail["index"], value))
    return inputs


def quantize(values, detail):
    """Float data -> the integer input tensor's domain, with its scale and zero point."""
    import numpy as np

    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    if scale == 0:
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(values, detail):
    import numpy as np

    scale, zero_point = detail["quantization"]
    if np.issubdtype(values.dtype, np.integer) and scale != 0:
        return (values.astype(np.float32) - zero_point) * np.float32(scale)
    return values.astype(np.float32)


# -------------------------------------------------------------------------------------------- commands


def command_probe(args) -> dict:
    cpuinfo = cpuinfo_fields()
    info = {
        "hostname": platform.node(),
        "arch": platform.machine(),
        "os": os_name(),
        "kernel": platform.release(),
        "cpu_model": cpu_model(cpuinfo),
        "cpu_part": cpu_part(cpuinfo),
        "cpu_features": cpu_features(cpuinfo),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "libc": libc(),
        "numpy": importlib.metadata.version("numpy") if runtime_installed("numpy") else None,
        "runtimes_installed": [name for name in RUNTIME_ORDER if runtime_installed(name)],
        "runtime": None,
        "runtime_error": None,
        "xnnpack_available": False,
        "workdir_free_mb": None,
        **board_state(),
    }
    if args.workdir:
        probe_dir = args.workdir
        while probe_dir and not os.path.isdir(probe_dir):
            probe_dir = os.path.dirname(probe_dir)
        if probe_dir:
            info["workdir_free_mb"] = shutil.disk_usage(probe_dir).free / 2**20
    try:
        runtime = load_runtime(args.runtime)
    except RunnerFailure as failure:  # a bare board is still worth describing: that is how setup starts
        info["runtime_error"] = failure.message
        return info
    info["runtime"] = runtime.describe()
    log: list = []
    with captured_native_stderr(log):
        interpreter = runtime.interpreter(model_content=base64.b64decode(PROBE_MODEL), threads=1, xnnpack=True)
        interpreter.allocate_tensors()
        interpreter.invoke()
    info["xnnpack_available"] = delegation_evidence(log, True)["delegate_created"]
    return info


def command_bench(args) -> dict:
    runtime = load_runtime(args.runtime)
    state_before = board_state()
    log: list = []
    started = time.perf_counter_ns()
    interpreter = open_model(runtime, args.model, args.threads, args.xnnpack == "on", log)
    init_ns = time.perf_counter_ns() - started
    for index, value in random_inputs(interpreter, args.seed):
        interpreter.set_tensor(index, value)
    invoke = interpreter.invoke
    try:
        with captured_native_stderr(log):
            started = time.perf_counter_ns()
            invoke()
            first_invoke_ns = time.perf_counter_ns() - started
        for _ in range(args.warmup):
            invoke()
        samples_ns = timed_invokes(invoke, args.runs, args.min_seconds)
    except (RuntimeError, ValueError) as exc:
        raise RunnerFailure("invoke", f"invoke failed for {os.path.basename(args.model)}: {one_line(exc)}")
    return {
        "runtime": runtime.describe(),
        "threads": args.threads,
        "xnnpack": delegation_evidence(log, args.xnnpack == "on"),
        "init_ns": init_ns,
        "first_invoke_ns": first_invoke_ns,
        "warmup": args.warmup,
        "samples_ns": samples_ns,
        "peak_rss_mb": peak_rss_mb(),
        "state_before": state_before,
        "state_after": board_state(),
    }


def timed_invokes(invoke, runs: int, min_seconds: float) -> list:
    """At least ``runs`` invokes and at least ``min_seconds``; only ``invoke`` sits between the clock reads."""
    clock = time.perf_counter_ns
    samples: list = []
    record = samples.append
    min_ns = int(min_seconds * 1e9)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside the loop would land in one sample
    try:
        loop_started = clock()
        while len(samples) < runs or clock() - loop_started < min_ns:
            started = clock()
            invoke()
            record(clock() - started)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def command_infer(args) -> dict:
    import numpy as np

    runtime = load_runtime(args.runtime)
    log: list = []
    if args.all_tensors and args.xnnpack == "on":
        raise RunnerFailure("usage", "--all-tensors needs --xnnpack off: a delegate keeps its nodes' tensors to itself")
    interpreter = open_model(runtime, args.model, args.threads, args.xnnpack == "on", log, args.all_tensors)
    try:
        data = np.load(args.inputs, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RunnerFailure("data", f"cannot read inputs {args.inputs}: {one_line(exc)}")
    input_detail = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()
    model_shape = tuple(int(d) for d in input_detail["shape"])
    batch = model_shape[0] if model_shape else 1
    if data.ndim != len(model_shape) or tuple(data.shape[1:]) != model_shape[1:] or len(data) % max(batch, 1):
        raise RunnerFailure(
            "data", f"inputs have shape {list(data.shape)}; the model expects [N, {', '.join(map(str, model_shape[1:]))}]"
            + (f" with N a multiple of {batch}" if batch > 1 else "")
        )
    outputs: list = [[] for _ in output_details]
    layers = op_outputs(interpreter) if args.all_tensors else []
    intermediates: list = [[] for _ in layers]
    try:
        with captured_native_stderr(log):
            for start in range(0, len(data), batch):
                interpreter.set_tensor(input_detail["index"], quantize(data[start:start + batch], input_detail))
                interpreter.invoke()
                for collected, detail in zip(outputs, output_details):
                    collected.append(dequantize(interpreter.get_tensor(detail["index"]), detail))
                for collected, layer in zip(intermediates, layers):
                    collected.append(dequantize(interpreter.get_tensor(layer["tensor_index"]), layer["detail"]))
    except (RuntimeError, ValueError) as exc:
        raise RunnerFailure("invoke", f"invoke failed for {os.path.basename(args.model)}: {one_line(exc)}")
    arrays = {f"output_{i}": np.concatenate(chunks) for i, chunks in enumerate(outputs)}
    arrays.update({f"tensor_{i}": np.concatenate(chunks) for i, chunks in enumerate(intermediates)})
    partial = args.outputs + ".partial"
    with open(partial, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(partial, args.outputs)
    return {
        "runtime": runtime.describe(),
        "threads": args.threads,
        "xnnpack": delegation_evidence(log, args.xnnpack == "on"),
        "n": int(len(data)),
        "outputs": args.outputs,
        "output_shapes": {name: list(array.shape) for name, array in arrays.items() if name.startswith("output_")},
        "tensors": [{key: layer[key] for key in ("op_index", "op", "tensor", "shape", "quantized")}
                    for layer in layers],
    }


def op_outputs(interpreter) -> list:
    """Every op's float or quantized outputs, in execution order (``tensor_{i}`` of the npz is the i-th)."""
    details = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    layers = []
    for op in interpreter._get_ops_details():  # the runtimes' only route to the graph; stable since TF 2.5
        for index in op["outputs"]:
            detail = details.get(int(index))
            if detail is None or detail["dtype"].__name__ not in DEQUANTIZABLE:
                continue
            layers.append({"op_index": int(op["index"]), "op": str(op["op_name"]), "tensor": str(detail["name"]),
                           "shape": [int(d) for d in detail["shape"]], "tensor_index": int(index),
                           "quantized": bool(detail["quantization"][0]), "detail": detail})
    return layers


def command_ops(args) -> dict:
    """Which (op, version) pairs the runtime resolves: each bundle entry is a model with that one op code and no
    operators, so loading it asks the runtime's op resolver alone (no kernel runs, no tensor is allocated)."""
    runtime = load_runtime(args.runtime)
    entries = read_ops_bundle(args.bundle)
    results = []
    for op, version, model in entries:
        log: list = []
        try:
            with captured_native_stderr(log):
                runtime.interpreter(model_content=model, threads=1, xnnpack=False)
            error = None
        except (RuntimeError, ValueError) as exc:
            error = one_line(exc)
        results.append({"op": op, "version": version, "loads": error is None, "error": error})
    return {"runtime": runtime.describe(), "ops": results}


def read_ops_bundle(path: str) -> list:
    """[(op, version, model bytes)] from the host's bundle: ``{"ops": [{"op", "version", "model": base64}]}``."""
    try:
        with open(path, "rb") as bundle:
            data = bundle.read(MAX_OPS_BUNDLE_BYTES + 1)
        if len(data) > MAX_OPS_BUNDLE_BYTES:
            raise ValueError(f"larger than {MAX_OPS_BUNDLE_BYTES} bytes")
        entries = json.loads(data.decode("utf-8"))["ops"]
        return [(str(entry["op"]), int(entry["version"]), base64.b64decode(entry["model"], validate=True))
                for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunnerFailure("usage", f"unreadable ops bundle {os.path.basename(path)}: {one_line(exc)}")


def command_serve(args) -> dict:
    """Answer requests from stdin, each measured in a child forked for it, until stdin closes."""
    runtime = load_runtime(args.runtime)  # the imports a fresh process per call would pay every time
    import numpy.random  # noqa: F401  (imported once here, shared by every child; random inputs need it)

    args.emit({"event": "ready", "runtime": runtime.describe(), "pid": os.getpid()})
    served = 0
    for request_id, argv, timeout_s in read_requests():
        if argv is None:  # a request that could not be read: answered, the server goes on
            reply = failure_reply(None, RunnerFailure("usage", timeout_s))
        else:
            reply = measured_in_child(argv, timeout_s)
        args.emit({**reply, "id": request_id})
        served += 1
    return {"served": served}


def read_requests():
    """(id, argv, timeout_s) per stdin line, until stdin closes."""
    with os.fdopen(os.dup(0), "rb", buffering=0) as stdin:
        while True:
            line = stdin.readline(MAX_REQUEST_BYTES + 1)
            if not line:
                return
            yield parse_request(line)


def parse_request(line: bytes) -> tuple:
    """(id, argv, timeout_s); for a line that is no request, argv is None and the reason takes timeout_s's place."""
    try:
        request = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        request = None
    request = request if isinstance(request, dict) else {}
    request_id, argv, timeout_s = request.get("id"), request.get("argv"), request.get("timeout_s")
    request_id = request_id if type(request_id) is int else None
    valid = (request_id is not None and isinstance(argv, list) and bool(argv)
             and all(isinstance(arg, str) for arg in argv) and argv[0] in SERVED_COMMANDS
             and type(timeout_s) in (int, float) and 0 < timeout_s <= MAX_TIMEOUT_S)
    if not valid:
        return request_id, None, ("not a request: one JSON line with id, argv (a "
                                  f"{' or '.join(SERVED_COMMANDS)} command) and timeout_s")
    return request_id, argv, float(timeout_s)


def measured_in_child(argv: list, timeout_s: float) -> dict:
    """Run one command in a forked child; its reply, or why it has none (crashed, killed at ``timeout_s``, or
    never started: no process, file or descriptor to spare on the board)."""
    try:
        with tempfile.TemporaryFile() as child_stderr:
            data, timed_out, status = forked(argv, timeout_s, child_stderr.fileno())
            child_stderr.seek(0)
            stderr_text = child_stderr.read()[-65536:].decode("utf-8", "replace")
    except OSError as exc:
        return failure_reply(argv[0], RunnerFailure("crash", f"could not start a measurement: {one_line(exc)}"))
    sys.stderr.write(stderr_text)  # the runtime's logs still reach whoever reads the server's stderr
    sys.stderr.flush()
    if timed_out:
        return failure_reply(argv[0], RunnerFailure("timeout", f"ran longer than {timeout_s:g} s and was killed"))
    try:
        reply = json.loads(data.decode("utf-8"))
        if isinstance(reply, dict):
            return reply
    except (ValueError, UnicodeDecodeError):
        pass
    return failure_reply(argv[0], RunnerFailure("crash", child_death(status, stderr_text)))


def forked(argv: list, timeout_s: float, stderr_fd: int) -> tuple:
    """(reply bytes, whether it was killed at ``timeout_s``, its wait status) of a child that runs ``argv``."""
    reply_read, reply_write = os.pipe()
    try:
        server_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(reply_read)
            run_child(argv, reply_write, stderr_fd, server_pid)
    except OSError:
        os.close(reply_read)
        raise
    finally:
        os.close(reply_write)
    try:
        data, timed_out = read_until_closed(reply_read, timeout_s)
    finally:
        os.close(reply_read)
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return data, timed_out, status


def run_child(argv: list, reply_fd: int, stderr_fd: int, server_pid: int) -> None:
    """The forked child: die with the server, then run the command as a fresh runner would, and exit."""
    started_ns = time.perf_counter_ns()
    code = EXIT_FAILED
    try:
        with contextlib.suppress(OSError, AttributeError):  # not Linux: the server's own kill still reaches it
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != server_pid:  # the server died before the line above took effect
            os._exit(EXIT_FAILED)
        os.dup2(stderr_fd, 1)  # what native code prints goes with the child's logs: its crash message shows it
        os.dup2(stderr_fd, 2)
        reset_peak_rss()
        reply, code = execute(argv, started_ns, emit=None)
        data = json.dumps(reply).encode("utf-8")
        while data:
            data = data[os.write(reply_fd, data):]
    finally:
        os._exit(code)


def read_until_closed(fd: int, timeout_s: float) -> tuple:
    """Everything written to ``fd`` until its writer closes it; (data, True) if ``timeout_s`` passed first."""
    chunks = []
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), True
        readable, _, _ = select.select([fd], [], [], remaining)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)


def child_death(status: int, stderr_text: str) -> str:
    """How a child ended without its reply, in the words the host uses for a runner that died."""
    if os.WIFSIGNALED(status):
        how = f"was killed by signal {os.WTERMSIG(status)}"
    else:
        how = f"exited with code {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status}"
    tail = [line.strip()[:300] for line in stderr_text.splitlines() if line.strip()][-3:]
    return f"runner {how} without a reply" + (f": {' | '.join(tail)}" if tail else "")


def command_lock(args) -> dict:
    """Hold an exclusive flock on ``args.path`` until stdin closes: one bench per board at a time.

    The kernel drops the lock when this process ends, so a bench that dies (or whose SSH session dies) never
    leaves the board locked. Stdin also carries the bench's heartbeat: a bench cut off by the network sends
    none, and the lock is given up after ``--heartbeat-timeout`` seconds instead of when TCP notices.
    """
    import fcntl

    os.makedirs(os.path.dirname(args.path) or ".", mode=0o700, exist_ok=True)
    fd = os.open(args.path, os.O_RDWR | os.O_CREAT, 0o600)  # stays open: the lock lives as long as this fd
    deadline = time.monotonic() + args.timeout
    announced = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = read_lock_holder(fd)
            if holder != announced:
                args.emit({"event": "waiting", "holder": holder})
                announced = holder
            if time.monotonic() >= deadline:
                raise RunnerFailure("lock-timeout", f"{args.path} is still held after {args.timeout:g} s")
            time.sleep(LOCK_POLL_SECONDS)
    acquired = time.monotonic()
    holder = {"host": args.holder_host, "pid": args.holder_pid, "board_pid": os.getpid(),
              "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
    args.emit({"event": "acquired", "holder": holder})
    released_by = wait_for_release(args.heartbeat_timeout)
    return {"released_by": released_by, "held_seconds": round(time.monotonic() - acquired, 3)}


def read_lock_holder(fd: int):
    """Who holds the lock, as its holder wrote it; None while it is being written (or was never)."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def wait_for_release(heartbeat_timeout: float) -> str:
    """Block until stdin closes or stays silent for ``heartbeat_timeout`` seconds; say which."""
    import select

    while True:
        readable, _, _ = select.select([0], [], [], heartbeat_timeout)
        if not readable:
            return "heartbeat-lost"
        if not os.read(0, 4096):
            return "stdin-closed"


# ------------------------------------------------------------------------------------------------ main


class ProtocolArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise RunnerFailure("usage", message)


@functools.lru_cache(maxsize=None)  # built once per serve: argparse's gettext lookups cost ms per call
def build_parser() -> argparse.ArgumentParser:
    parser = ProtocolArgumentParser(prog="edgeprune_runner.py")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ProtocolArgumentParser)

    def model_options(command):
        command.add_argument("--model", required=True)
        command.add_argument("--threads", type=int, default=None)
        command.add_argument("--xnnpack", choices=("on", "off"), default="on")
        command.add_argument("--runtime", default="auto")

    probe = commands.add_parser("probe")
    probe.add_argument("--runtime", default="auto")
    probe.add_argument("--workdir", default=None)
    bench = commands.add_parser("bench")
    model_options(bench)
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--runs", type=int, default=50)
    bench.add_argument("--min-seconds", type=float, default=0.0)
    bench.add_argument("--seed", type=int, default=0)
    infer = commands.add_parser("infer")
    model_options(infer)
    infer.add_argument("--inputs", required=True)
    infer.add_argument("--outputs", required=True)
    infer.add_argument("--all-tensors", action="store_true", help="also every op's outputs (needs --xnnpack off)")
    ops = commands.add_parser("ops")
    ops.add_argument("--bundle", required=True)
    ops.add_argument("--runtime", default="auto")
    serve = commands.add_parser("serve")
    serve.add_argument("--runtime", default="auto")
    lock = commands.add_parser("lock")
    lock.add_argument("--path", required=True)
    lock.add_argument("--timeout", type=float, default=0.0, help="seconds to wait for the lock")
    lock.add_argument("--holder-host", default=None, help="the bench machine, recorded for whoever waits")
    lock.add_argument("--holder-pid", type=int, default=None)
    lock.add_argument("--heartbeat-timeout", type=float, default=120.0)
    return parser


COMMANDS = {"probe": command_probe, "bench": command_bench, "infer": command_infer, "ops": command_ops,
            "serve": command_serve, "lock": command_lock}
SERVED_COMMANDS = ("bench", "infer", "ops")


def failure_reply(command, failure: RunnerFailure) -> dict:
    return {"protocol": PROTOCOL, "ok": False, "command": command,
            "error": {"kind": failure.kind, "message": failure.message}}


def execute(argv, started_ns: int, emit) -> tuple:
    """One command's reply and exit code; ``emit`` writes the lines a long-lived command prints before it."""
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        args.emit = lambda event: emit({"protocol": PROTOCOL, "command": command, **event})
        reply = {"protocol": PROTOCOL, "ok": True, "command": command, **COMMANDS[command](args)}
        exit_code = 0
    except RunnerFailure as failure:
        reply, exit_code = failure_reply(command, failure), EXIT_FAILED
    except ImportError as exc:
        reply, exit_code = failure_reply(command, RunnerFailure("runtime-missing", one_line(exc))), EXIT_FAILED
    except Exception as exc:  # the protocol promises JSON even for bugs: report them, don't crash silently
        reply = failure_reply(command, RunnerFailure("internal", f"{type(exc).__name__}: {one_line(exc)}"))
        exit_code = EXIT_FAILED
    reply["elapsed_ns"] = time.perf_counter_ns() - started_ns
    return reply, exit_code


def main(argv=None) -> int:
    with stdout_reserved_for_protocol() as protocol_fd:
        def emit(line: dict) -> None:
            os.write(protocol_fd, (json.dumps(line) + "\n").encode("utf-8"))

        reply, exit_code = execute(argv, STARTED_NS, emit)
        emit(reply)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
