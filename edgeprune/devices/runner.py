"""The host side of the device runner's JSON protocol (``device_scripts/edgeprune_runner.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from .base import Device

PROTOCOL = 1
RUNNER_FILENAME = "edgeprune_runner.py"
PROBE_TIMEOUT_S = 120.0


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
    """Starts the runner on a device, one fresh process per call, and decodes its single JSON reply."""

    def __init__(self, device: Device, runner_path: str) -> None:
        self.device = device
        self.runner_path = runner_path
        self.device_seconds = 0.0  # time the runner processes report for themselves, start to reply

    def probe(self, *, runtime: str = "auto") -> dict[str, Any]:
        return self._call(["probe", "--runtime", runtime, "--workdir", self.device.workdir], PROBE_TIMEOUT_S)

    def bench(self, model: str, settings: BenchSettings) -> dict[str, Any]:
        argv = ["bench", "--model", model, *model_options(settings.threads, settings.xnnpack, settings.runtime)]
        argv += ["--warmup", str(settings.warmup), "--runs", str(settings.runs)]
        argv += ["--min-seconds", repr(settings.min_seconds)]
        return self._call(argv, settings.timeout_s)

    def infer(
        self, model: str, inputs: str, outputs: str, *, threads: int | None, xnnpack: bool,
        runtime: str = "auto", timeout_s: float = 600.0,
    ) -> dict[str, Any]:
        argv = ["infer", "--model", model, "--inputs", inputs, "--outputs", outputs]
        return self._call(argv + model_options(threads, xnnpack, runtime), timeout_s)

    def _call(self, argv: list[str], timeout_s: float) -> dict[str, Any]:
        result = self.device.run([self.device.python, self.runner_path, *argv], timeout=timeout_s)
        reply = decode_reply(result.stdout)
        if reply is not None and isinstance(reply.get("elapsed_ns"), int):
            self.device_seconds += reply["elapsed_ns"] / 1e9
        if reply is None:
            raise RunnerError(self.device.name, crash_message(result.exit_code, result.stderr), kind="crash")
        check_reply(self.device.name, reply)
        return reply


def check_reply(device: str, reply: dict[str, Any]) -> None:
    """Raise the runner's own error for a failed reply (or one in a protocol this edgeprune does not speak)."""
    if reply.get("protocol") != PROTOCOL:
        raise RunnerError(
            device,
            f"runner speaks protocol {reply.get('protocol')}, this edgeprune speaks {PROTOCOL}",
            kind="protocol",
            hint="clear the device's workdir cache",
        )
    if not reply.get("ok"):
        error = reply.get("error") or {}
        raise RunnerError(device, str(error.get("message")), kind=str(error.get("kind")))


def model_options(threads: int | None, xnnpack: bool, runtime: str) -> list[str]:
    options = ["--xnnpack", "on" if xnnpack else "off", "--runtime", runtime]
    return options + (["--threads", str(threads)] if threads else [])


def decode_reply(stdout: bytes) -> dict[str, Any] | None:
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        return None
    try:
        reply = json.loads(lines[-1])
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def crash_message(exit_code: int, stderr: bytes) -> str:
    """A runner that died without its JSON reply: say how (signal or exit code) and its last words."""
    if exit_code == -1:  # SSH reports a remote death by signal without the signal
        how = "was killed by a signal"
    elif exit_code < 0:
        how = f"was killed by signal {-exit_code}"
    elif exit_code > 128:
        how = f"exited with code {exit_code} (signal {exit_code - 128}?)"
    else:
        how = f"exited with code {exit_code}"
    tail = [line for line in stderr.decode("utf-8", "replace").strip().splitlines() if line.strip()][-3:]
    return f"runner {how} without a reply" + (f": {' | '.join(tail)}" if tail else "")
