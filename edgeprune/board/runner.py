"""The host side of the device runner's JSON protocol (``device_scripts/edgeprune_runner.py``); what a reply
must hold is in ``replies``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypeVar

from ..devices.base import CommandResult, Device
from ..errors import RunnerError
from ..json_fields import FieldError, Fields
from ..text import printable
from ..parsing import ParseError, parse_json
from .replies import MAX_REPLY_BYTES, BenchReply, InferReply, ProbeReply, bench_reply, infer_reply, probe_reply

PROTOCOL = 1
RUNNER_FILENAME = "edgeprune_runner.py"
PROBE_TIMEOUT_S = 120.0
RUNNER_EXIT_CODES = (0, 3)  # the runner's own: 0 with an ok reply, 3 (its EXIT_FAILED) with an error reply
T = TypeVar("T")


def runner_script() -> Path:
    """The runner shipped with this edgeprune (packaged as ``edgeprune.device_scripts``)."""
    packaged = resources.files("edgeprune.device_scripts").joinpath(RUNNER_FILENAME)
    return Path(str(packaged))


@dataclass(frozen=True)
class BenchSettings:
    threads: int | None
    warmup: int
    runs: int
    min_seconds: float
    xnnpack: bool
    runtime: str = "auto"
    timeout_s: float = 600.0


class RunnerClient:
    """Starts the runner on a device, one fresh process per call, and checks its single JSON reply."""

    def __init__(self, device: Device, runner_path: str) -> None:
        self.device = device
        self.runner_path = runner_path
        self.device_seconds = 0.0  # time the runner processes report for themselves, start to reply

    def probe(self, *, runtime: str = "auto") -> ProbeReply:
        return self._call(["probe", "--runtime", runtime, "--workdir", self.device.workdir], PROBE_TIMEOUT_S,
                          probe_reply)

    def bench(self, model: str, settings: BenchSettings) -> BenchReply:
        argv = ["bench", "--model", model, *model_options(settings.threads, settings.xnnpack, settings.runtime)]
        argv += ["--warmup", str(settings.warmup), "--runs", str(settings.runs)]
        argv += ["--min-seconds", repr(settings.min_seconds)]
        return self._call(argv, settings.timeout_s, lambda reply: bench_reply(
            reply, runs=settings.runs, warmup=settings.warmup, min_seconds=settings.min_seconds,
            threads=settings.threads or None, xnnpack=settings.xnnpack, timeout_s=settings.timeout_s))

    def infer(
        self, model: str, inputs: str, outputs: str, *, threads: int | None, xnnpack: bool,
        runtime: str = "auto", timeout_s: float = 600.0, all_tensors: bool = False,
    ) -> InferReply:
        """The outputs on ``inputs``; with ``all_tensors`` (builtin kernels only) every op's outputs too."""
        argv = ["infer", "--model", model, "--inputs", inputs, "--outputs", outputs]
        argv += ["--all-tensors"] if all_tensors else []
        return self._call(argv + model_options(threads, xnnpack, runtime), timeout_s,
                          lambda reply: infer_reply(reply, outputs=outputs, threads=threads or None, xnnpack=xnnpack))

    def _call(self, argv: list[str], timeout_s: float, read: Callable[[Fields], T]) -> T:
        result = self.device.run([self.device.python, self.runner_path, *argv], timeout=timeout_s)
        reply = decode_reply(self.device.name, result)
        fields = check_reply(self.device.name, reply)
        try:
            if reply.get("command") != argv[0]:
                raise FieldError(f"command is not '{argv[0]}'")
            checked = read(fields)
            elapsed_ns = fields.integer("elapsed_ns", low=0, high=int(timeout_s * 1e9), optional=True)
        except FieldError as exc:
            raise invalid_reply(self.device.name, exc) from None
        self.device_seconds += (elapsed_ns or 0) / 1e9
        return checked


def check_reply(device: str, reply: dict[str, Any]) -> Fields:
    """The fields of an ok reply in this protocol; the runner's own error (cleaned) for a failed one."""
    protocol = reply.get("protocol")
    if type(protocol) is not int or protocol != PROTOCOL:
        spoken = f"protocol {protocol}" if type(protocol) is int and abs(protocol) < 1000 else "an unknown protocol"
        raise RunnerError(device, f"runner speaks {spoken}, this edgeprune speaks protocol {PROTOCOL}",
                          kind="protocol", hint="clear the device's workdir cache")
    fields = Fields(reply)
    try:
        if fields.flag("ok"):
            return fields
        error = fields.object("error")
        kind, message = error.text("kind", limit=64), error.text("message")
    except FieldError as exc:
        raise invalid_reply(device, exc) from None
    raise RunnerError(device, message or f"the runner failed ({kind or 'no reason given'})", kind=kind)


def invalid_reply(device: str, reason: Exception) -> RunnerError:
    return RunnerError(device, f"invalid reply from the board: {printable(str(reason), 300)}", kind="protocol",
                       hint="it did not answer as edgeprune's runner does: check the device's 'python' setting")


def model_options(threads: int | None, xnnpack: bool, runtime: str) -> list[str]:
    options = ["--xnnpack", "on" if xnnpack else "off", "--runtime", runtime]
    return options + (["--threads", str(threads)] if threads else [])


def decode_reply(device: str, result: CommandResult) -> dict[str, Any]:
    """The reply object: the last line of stdout (the runner prints nothing else, a shell rc file might).

    No line at all, or an unreadable one from a runner that did not end as the runner does, is a crash; an
    unreadable line from one that did, or a reply larger than any real one, is an invalid reply.
    """
    if len(result.stdout) > MAX_REPLY_BYTES:
        raise invalid_reply(device, f"{len(result.stdout) / 2**20:.0f} MB, more than the "
                                    f"{MAX_REPLY_BYTES // 2**20} MB a reply may be")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RunnerError(device, crash_message(result.exit_code, result.stderr), kind="crash")
    try:
        reply = parse_json(lines[-1])
        problem = None if isinstance(reply, dict) else "not a JSON object"
    except ParseError as exc:
        problem = f"not JSON ({exc})"
    if problem is not None:
        if result.exit_code not in RUNNER_EXIT_CODES:
            raise RunnerError(device, crash_message(result.exit_code, result.stderr), kind="crash")
        raise invalid_reply(device, problem)
    return reply


def crash_message(exit_code: int, stderr: bytes) -> str:
    """A runner that died without its JSON reply: say how (signal or exit code) and its last words (cleaned)."""
    if exit_code == -1:  # SSH reports a remote death by signal without the signal
        how = "was killed by a signal"
    elif exit_code < 0:
        how = f"was killed by signal {-exit_code}"
    elif exit_code > 128:
        how = f"exited with code {exit_code} (signal {exit_code - 128}?)"
    else:
        how = f"exited with code {exit_code}"
    lines = stderr[-16384:].decode("utf-8", "replace").splitlines()
    tail = [printable(line, 300) for line in lines if printable(line).strip()][-3:]
    return f"runner {how} without a reply" + (f": {' | '.join(tail)}" if tail else "")
