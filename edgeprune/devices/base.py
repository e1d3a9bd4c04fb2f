"""The one interface every device implements: run a command, move files, report where things live.

Local, SSH and labgrid devices differ only in transport. Everything above this layer (the board services of
:mod:`edgeprune.board`, the bench) is written once against :class:`Device`, and the same contract tests check
every transport.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import DeviceError

# How long a bench waits for a board to be its own (a farm place to come free, then the board lock): a bench of a
# few models on a Pi takes minutes; a queue of CI jobs, more.
DEFAULT_LOCK_TIMEOUT_S = 1800.0
LINE_LIMIT = 2**20  # what DeviceProcess.readline keeps of a line by default


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class DeviceProcess(abc.ABC):
    """A command started with :meth:`Device.start` that keeps running: stdout read line by line, stdin written.

    Used for what must live as long as a bench, such as the board lock. Every method may be called from another
    thread than the one reading.
    """

    argv: tuple[str, ...]

    @abc.abstractmethod
    def readline(self, timeout: float, limit: int = LINE_LIMIT) -> bytes:
        """The next stdout line with its newline; ``b""`` once stdout is closed. A line longer than ``limit`` comes
        back as its first ``limit + 1`` bytes, so that a device cannot fill this machine's memory with one line.

        Raises :class:`~edgeprune.errors.DeviceTimeout` when no whole line arrives within ``timeout`` seconds.
        """

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin; a :class:`~edgeprune.errors.DeviceError` if it cannot arrive."""

    @abc.abstractmethod
    def close_stdin(self) -> None:
        """Signal end of input (the command sees EOF). Never raises: the command may already be gone."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> int | None:
        """The exit code once the command has ended, or None if it still runs after ``timeout`` seconds."""

    @abc.abstractmethod
    def kill(self) -> bool:
        """Kill the command (its whole process group on the device) and release the transport. Best effort: False
        when the device did not answer the kill (the command may still run there until the connection ends)."""

    def end(self, timeout: float) -> None:
        """End a command that runs until its input ends: close its stdin, and kill it if it has not ended within
        ``timeout`` seconds. Never raises a DeviceError."""
        try:
            self.close_stdin()
            if self.wait(timeout) is not None:
                return
        except DeviceError:
            pass
        self.kill()

    def abandon(self) -> None:
        """Let go of a command on a device that stopped answering, without waiting for it: it ends with the
        connection. Where a device always answers (this machine), that is a kill."""
        self.kill()

    @property
    @abc.abstractmethod
    def stderr(self) -> bytes:
        """What the command wrote to stderr so far."""


class Device(abc.ABC):
    """A machine that runs the device runner.

    ``workdir`` is an absolute path on the device; ``python`` the interpreter the runner is started with.
    Remote paths are POSIX strings, never :class:`Path`, because they name files on another machine.
    """

    def __init__(self, name: str, *, python: str, threads: int | None = None, tags: Sequence[str] = ()) -> None:
        self.name = name
        self.python = python
        self.threads = threads
        self.tags = tuple(tags)

    @property
    @abc.abstractmethod
    def workdir(self) -> str:
        """Absolute folder on the device for the cache and scratch files (created private on first use)."""

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """Where the device is, for messages and results (``local`` or ``user@host:port``); never secrets."""

    @abc.abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        """Run ``argv`` on the device (no shell; every argument arrives as given) and wait for it.

        Raises :class:`~edgeprune.errors.DeviceTimeout` when it runs longer than ``timeout`` seconds, after
        killing it on the device.
        """

    @abc.abstractmethod
    def start(self, argv: Sequence[str]) -> DeviceProcess:
        """Start ``argv`` on the device (no shell, as :meth:`run`) and return without waiting for it.

        Raises :class:`~edgeprune.errors.DeviceError` when the program cannot be started.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Kill every command this device object is running now (:meth:`run` and :meth:`start`), e.g. on Ctrl-C.

        Safe to call from another thread; the interrupted calls end with a
        :class:`~edgeprune.errors.DeviceError`. Best effort: it never raises.
        """

    @abc.abstractmethod
    def upload(self, local: Path, remote: str) -> None:
        """Copy a local file to ``remote`` atomically: readers see the whole file or none."""

    @abc.abstractmethod
    def download(self, remote: str, local: Path) -> None:
        """Copy a file from the device to ``local``."""

    @abc.abstractmethod
    def exists(self, remote: str) -> bool:
        """Whether a file exists at ``remote``."""

    @abc.abstractmethod
    def make_private_dir(self, remote: str) -> None:
        """Create ``remote`` and its parents if missing, the leaf with mode 0700."""

    def claim(self, *, timeout_s: float, on_wait: Callable[[str], None]) -> None:
        """Wait up to ``timeout_s`` until the device is ours, telling ``on_wait`` why it waits.

        For devices a scheduler hands out (a board-farm place); a fixed host is always ours. Raises
        :class:`~edgeprune.errors.LockTimeout` when the wait runs out.
        """

    def facts(self) -> dict[str, Any]:
        """What the results should record about this device beyond :attr:`address`, e.g. which farm place served it."""
        return {}

    def close(self) -> None:
        """Release connections (and a claimed device); a closed device may be opened again by using it."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.address}>"
