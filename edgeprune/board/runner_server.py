"""The host side of the runner's ``serve`` command: one runner process per device and runtime, started once.

Starting Python and importing numpy and the runtime costs about 0.6 s per call on an emulated Cortex-A72 and
seconds on a Pi 3, and each call paid it again. The server pays it once; each request is still measured in a
process of its own (a child the server forks for it), so peak RSS, init time and first invoke stay per
measurement. The server kills a child at the request's time limit and answers for it, so a hung or crashed
measurement fails that request only; only a server that stops answering costs the device.
"""

from __future__ import annotations

import json
from typing import Any

from ..devices.base import Device, DeviceProcess
from ..errors import DeviceTimeout, RunnerError
from ..parsing import ParseError, parse_json
from .protocol import PROTOCOL, check_reply, crash_message, invalid_reply
from .replies import MAX_REPLY_BYTES

READY_TIMEOUT_S = 120.0  # Python, numpy and the runtime imported on a slow board
REPLY_GRACE_S = 30.0  # beyond a request's own time limit: the server kills the child and answers in this time
CLOSE_TIMEOUT_S = 10.0


class RunnerServer:
    """A running ``edgeprune_runner.py serve``: requests in, one checked reply line per request out."""

    def __init__(self, device: Device, process: DeviceProcess) -> None:
        self.device = device
        self._process = process
        self._last_id = 0
        self.ended = False

    @classmethod
    def start(cls, device: Device, runner_path: str, runtime: str) -> RunnerServer:
        """Start the server and wait until it has imported its runtime."""
        process = device.start([device.python, runner_path, "serve", "--runtime", runtime])
        server = cls(device, process)
        try:
            ready = server._reply_line(READY_TIMEOUT_S)
            if ready.get("event") != "ready" or ready.get("protocol") != PROTOCOL:
                check_reply(device.name, ready)  # the runner's own error (e.g. no runtime), or a wrong protocol
                raise server._invalid("its first line is not 'ready'")
        except BaseException:
            server._end()
            raise
        return server

    def request(self, argv: list[str], timeout_s: float) -> dict[str, Any]:
        """The reply to ``argv`` (a ``bench`` or ``infer`` command), measured in a child of the server."""
        self._last_id += 1
        request_id = self._last_id
        line = json.dumps({"id": request_id, "argv": argv, "timeout_s": timeout_s}) + "\n"
        try:
            self._process.write(line.encode("utf-8"))
            reply = self._reply_line(timeout_s + REPLY_GRACE_S, timeout_s=timeout_s)
        except BaseException:
            self._end()
            raise
        if type(reply.get("id")) is not int or reply["id"] != request_id:
            self._end()
            raise self._invalid(f"a reply to request {printable_id(reply.get('id'))}, not {request_id}")
        return reply

    def close(self) -> None:
        """End the server the way it expects (end of its input); kill it if it does not end. Never raises."""
        if not self.ended:
            self.ended = True
            self._process.end(CLOSE_TIMEOUT_S)

    def abandon(self) -> None:
        """Let go of the server on a device that stopped answering: no waiting, it ends with the connection."""
        if not self.ended:
            self.ended = True
            self._process.abandon()

    def _reply_line(self, wait_s: float, *, timeout_s: float | None = None) -> dict[str, Any]:
        """The next line as a JSON object; a stopped server is a crash, a silent one is killed (or lost)."""
        try:
            line = self._process.readline(wait_s, limit=MAX_REPLY_BYTES)
        except DeviceTimeout:
            killed = self._process.kill()
            self.ended = True
            what = (f"ran longer than {timeout_s:g} s" if timeout_s is not None
                    else f"did not start within {wait_s:g} s")
            outcome = "was killed" if killed else "could not be killed: the device does not answer"
            raise DeviceTimeout(self.device.name, f"'{self.device.python}' {what} and {outcome}",
                                lost=not killed) from None
        if len(line) > MAX_REPLY_BYTES:
            raise invalid_reply(self.device.name, f"{len(line) / 2**20:.0f} MB, more than the "
                                                  f"{MAX_REPLY_BYTES // 2**20} MB a reply may be")
        if not line.endswith(b"\n"):  # its stdout closed: the server itself is gone, or must be
            exit_code = self._process.wait(CLOSE_TIMEOUT_S)
            self.ended = True
            if exit_code is None:
                self._process.kill()
                raise RunnerError(self.device.name, "the runner closed its output without ending, and was killed",
                                  kind="crash")
            raise RunnerError(self.device.name, crash_message(exit_code, self._process.stderr), kind="crash")
        try:
            reply = parse_json(line)
        except ParseError as exc:
            raise invalid_reply(self.device.name, f"not JSON ({exc})") from None
        if not isinstance(reply, dict):
            raise invalid_reply(self.device.name, "not a JSON object")
        return reply

    def _invalid(self, problem: str) -> RunnerError:
        return invalid_reply(self.device.name, problem)

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._process.kill()


def printable_id(value: object) -> str:
    return str(value) if type(value) is int else "without a valid id"
