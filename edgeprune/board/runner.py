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
from ..parsing import ParseError, parse_json
from .protocol import check_reply, crash_message, invalid_reply
from .runner_server import RunnerServer
from .replies import (MAX_REPLY_BYTES, BenchReply, InferReply, OpsReply, ProbeReply, bench_reply, infer_reply,
                      ops_reply, probe_reply)

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
    """Runs the runner's commands on a device and checks each reply.

    Measurements (``bench``, ``infer``) go to one ``serve`` process per runtime, started on first use and ended by
    :meth:`close`: the imports and the SSH session are paid once, each measurement still gets a process of its
    own. ``fresh_processes`` starts a new runner for every call instead (the design before ``serve``, kept to
    compare the two: ``benchmarks/runner_overhead.py``).
    """

    def __init__(self, device: Device, runner_path: str, *, fresh_processes: bool = False) -> None:
        self.device = device
        self.runner_path = runner_path
        self.fresh_processes = fresh_processes
        self.device_seconds = 0.0  # time the runner processes report for themselves, start to reply
        self._servers: dict[str, RunnerServer] = {}

    def probe(self, *, runtime: str = "auto") -> ProbeReply:
        return self._call(["probe", "--runtime", runtime, "--workdir", self.device.workdir], PROBE_TIMEOUT_S,
                          probe_reply)

    def bench(self, model: str, settings: BenchSettings) -> BenchReply:
        argv = ["bench", "--model", model, *model_options(settings.threads, settings.xnnpack, settings.runtime)]
        argv += ["--warmup", str(settings.warmup), "--runs", str(settings.runs)]
        argv += ["--min-seconds", repr(settings.min_seconds)]
        return self._call(argv, settings.timeout_s, lambda reply: bench_reply(
            reply, runs=settings.runs, warmup=settings.warmup, min_seconds=settings.min_seconds,
            threads=settings.threads or None, xnnpack=settings.xnnpack, timeout_s=settings.timeout_s),
            served_by=settings.runtime)

    def infer(
        self, model: str, inputs: str, outputs: str, *, threads: int | None, xnnpack: bool,
        runtime: str = "auto", timeout_s: float = 600.0, all_tensors: bool = False,
    ) -> InferReply:
        """The outputs on ``inputs``; with ``all_tensors`` (builtin kernels only) every op's outputs too."""
        argv = ["infer", "--model", model, "--inputs", inputs, "--outputs", outputs]
        argv += ["--all-tensors"] if all_tensors else []
        return self._call(argv + model_options(threads, xnnpack, runtime), timeout_s,
                          lambda reply: infer_reply(reply, outputs=outputs, threads=threads or None, xnnpack=xnnpack),
                          served_by=runtime)

    def ops(self, bundle: str, asked: list[tuple[str, int]], *, runtime: str = "auto",
            timeout_s: float = PROBE_TIMEOUT_S) -> OpsReply:
        """Which of the ``asked`` (op, version) pairs, sent as the one-op models of ``bundle``, the runtime loads."""
        return self._call(["ops", "--bundle", bundle, "--runtime", runtime], timeout_s,
                          lambda reply: ops_reply(reply, asked=asked), served_by=runtime)

    def close(self) -> None:
        """End the servers (never raises); a later call starts a new one."""
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()

    def abandon(self) -> None:
        """Let go of the servers of a device that stopped answering, without waiting for them."""
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.abandon()

    def __enter__(self) -> RunnerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, argv: list[str], timeout_s: float, read: Callable[[Fields], T], *,
              served_by: str | None = None) -> T:
        if served_by is None or self.fresh_processes:
            result = self.device.run([self.device.python, self.runner_path, *argv], timeout=timeout_s)
            reply = decode_reply(self.device.name, result)
        else:
            reply = self._server(served_by).request(argv, timeout_s)
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

    def _server(self, runtime: str) -> RunnerServer:
        server = self._servers.get(runtime)
        if server is None or server.ended:  # none yet, or the last one died or was killed at a time limit
            server = self._servers[runtime] = RunnerServer.start(self.device, self.runner_path, runtime)
        return server


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
