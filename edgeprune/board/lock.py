"""One bench per board at a time: the host side of the runner's ``lock`` command.

The lock is an ``flock`` on ``WORKDIR/bench.lock`` taken on the board by a runner process that lives as long as
the bench. So the board itself decides who holds it (several CI jobs on several machines agree without talking to
each other), and whatever ends that process releases it: the bench finishing, dying, or its SSH session dropping.
A bench cut off by the network stops sending its heartbeat, and the board gives the lock up after
``HEARTBEAT_TIMEOUT_S`` instead of when TCP notices, hours later.
"""

from __future__ import annotations

import json
import os
import posixpath
import socket
import threading
import time
from typing import Any, Callable

from ..devices.base import Device, DeviceProcess
from ..errors import DeviceError, LockTimeout, RunnerError
from .protocol import check_reply, crash_message

LOCK_FILENAME = "bench.lock"
HEARTBEAT_SECONDS = 20.0
HEARTBEAT_TIMEOUT_S = 120.0
START_GRACE_S = 60.0  # for Python to start on a slow board, before the runner's own wait begins
RELEASE_TIMEOUT_S = 10.0


class BoardLock:
    """A held board lock; a context manager that releases it. Take one with :meth:`take`."""

    def __init__(self, device: Device, process: DeviceProcess) -> None:
        self.device = device
        self._process = process
        self._stop_heartbeat = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name=f"edgeprune-lock-{device.name}", daemon=True)
        self._heartbeat.start()

    @classmethod
    def take(
        cls, device: Device, runner_path: str, *, timeout_s: float, on_wait: Callable[[str], None]
    ) -> BoardLock:
        """Wait up to ``timeout_s`` for the lock, telling ``on_wait`` who holds it; :class:`LockTimeout` if busy."""
        path = posixpath.join(device.workdir, LOCK_FILENAME)
        process = device.start([
            device.python, runner_path, "lock", "--path", path, "--timeout", repr(timeout_s),
            "--holder-host", socket.gethostname(), "--holder-pid", str(os.getpid()),
            "--heartbeat-timeout", repr(HEARTBEAT_TIMEOUT_S),
        ])
        try:
            _await_acquired(device, process, path, timeout_s, on_wait)
        except BaseException:
            process.kill()
            raise
        return cls(device, process)

    def release(self) -> None:
        """Best effort: the lock also goes when the process or its connection does."""
        self._stop_beating()
        self._process.end(RELEASE_TIMEOUT_S)

    def abandon(self) -> None:
        """For a device that stopped answering: no goodbye that would wait for it. Its lock goes with the
        connection, which the bench closes, or at the latest when the heartbeat stops arriving."""
        self._stop_beating()
        self._process.abandon()  # and so no Ctrl-C tries to kill it there

    def _stop_beating(self) -> None:
        self._stop_heartbeat.set()
        self._heartbeat.join()

    def __enter__(self) -> BoardLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(HEARTBEAT_SECONDS):
            try:
                self._process.write(b"\n")
            except DeviceError:
                return  # the lock process is gone; the bench's own commands will meet the cause


def _await_acquired(
    device: Device, process: DeviceProcess, path: str, timeout_s: float, on_wait: Callable[[str], None]
) -> None:
    deadline = time.monotonic() + timeout_s + START_GRACE_S
    holder: Any = None
    while True:
        line = process.readline(max(0.0, deadline - time.monotonic()))
        if not line:
            exit_code = process.wait(RELEASE_TIMEOUT_S)
            raise RunnerError(device.name, "board lock: " + crash_message(-1 if exit_code is None else exit_code,
                                                                          process.stderr), kind="crash")
        try:
            message = json.loads(line)
        except ValueError:
            continue  # not the protocol (e.g. a shell rc file's chatter): the reply will tell what happened
        if not isinstance(message, dict):
            continue
        event = message.get("event")
        if event == "waiting":
            holder = message.get("holder")
            on_wait(f"waiting for the board lock held by {describe_holder(holder)} (up to {timeout_s:g} s)")
        elif event == "acquired":
            return
        elif (message.get("error") or {}).get("kind") == "lock-timeout":
            raise LockTimeout(
                device.name,
                f"the board is busy: {path} is still held by {describe_holder(holder)} after {timeout_s:g} s",
                hint="another bench is running on this board; try again later or raise --lock-timeout",
            )
        else:
            check_reply(device.name, message)
            raise RunnerError(device.name, "board lock: the runner ended without taking the lock", kind="protocol")


def describe_holder(holder: Any) -> str:
    """``host (pid N) since T``: what the holder wrote, nothing more (it holds no secrets)."""
    if not isinstance(holder, dict):
        return "another bench"
    who = f"{holder.get('host') or 'an unknown host'} (pid {holder.get('pid')})"
    return f"{who} since {holder['since']}" if holder.get("since") else who
