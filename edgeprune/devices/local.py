"""The machine edgeprune runs on, behind the same interface as a board over SSH."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Sequence

from ..errors import DeviceError, DeviceTimeout
from .base import LINE_LIMIT, CommandResult, Device, DeviceProcess


def default_local_workdir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "edgeprune" / "local"


class LocalDevice(Device):
    """Runs the device runner in a child process of this Python (or ``python``), caching under ``workdir``."""

    def __init__(
        self,
        name: str = "local",
        *,
        python: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        super().__init__(name, python=python or sys.executable, threads=threads, tags=tags)
        self._workdir = Path(workdir).expanduser().absolute() if workdir else default_local_workdir()
        # What interrupt() kills; weak, so children that ended and were forgotten do not pile up. The lock makes
        # starting and registering one step, so interrupt() cannot miss a child that has just started.
        self._running: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()
        self._running_lock = threading.Lock()

    @property
    def workdir(self) -> str:
        return str(self._workdir)

    @property
    def address(self) -> str:
        return "local"

    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        process = self._popen(argv)
        try:
            # no stdin means an empty one, as over SSH
            stdout, stderr = process.communicate(stdin if stdin is not None else b"", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(process)
            process.communicate()
            raise DeviceTimeout(self.name, f"'{argv[0]}' ran longer than {timeout:g} s and was killed") from exc
        except BaseException:  # e.g. KeyboardInterrupt: never leave the child behind
            kill_group(process)
            process.wait()
            raise
        finally:
            self._running.discard(process)
        return CommandResult(tuple(argv), process.returncode, stdout, stderr)

    def start(self, argv: Sequence[str]) -> DeviceProcess:
        return LocalProcess(self.name, tuple(argv), self._popen(argv))

    def interrupt(self) -> None:
        with self._running_lock:
            running = list(self._running)
        for process in running:
            kill_group(process)

    def _popen(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        with self._running_lock:
            try:
                # Its own session, like a command over SSH: a Ctrl-C in the terminal reaches edgeprune alone, which
                # then stops its children itself (and keeps what they measured).
                process = subprocess.Popen(
                    list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                    start_new_session=True,
                )
            except OSError as exc:
                raise DeviceError(self.name, f"cannot start '{argv[0]}': {exc.strerror}") from exc
            self._running.add(process)
        return process

    def upload(self, local: Path, remote: str) -> None:
        target = Path(remote)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        except OSError as exc:
            raise DeviceError(self.name, f"cannot write {remote}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as tmp, open(local, "rb") as source:
                shutil.copyfileobj(source, tmp)
            os.replace(tmp_name, target)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise DeviceError(self.name, f"cannot write {remote}: {exc.strerror}") from exc

    def download(self, remote: str, local: Path) -> None:
        try:
            shutil.copyfile(remote, local)
        except OSError as exc:
            raise DeviceError(self.name, f"cannot read {remote}: {exc.strerror}") from exc

    def exists(self, remote: str) -> bool:
        return Path(remote).is_file()

    def make_private_dir(self, remote: str) -> None:
        path = Path(remote)
        try:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)
        except OSError as exc:
            raise DeviceError(self.name, f"cannot create {remote}: {exc.strerror}") from exc


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child and what it started (it leads its own process group), as SSH kills a command's group."""
    if process.poll() is None:  # once reaped, its pid (and group id) may belong to someone else
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class LocalProcess(DeviceProcess):
    """A child process of this Python, its stdout read line by line without threads."""

    def __init__(self, device: str, argv: tuple[str, ...], popen: subprocess.Popen[bytes]) -> None:
        self.argv = argv
        self._device = device
        self._popen = popen
        self._stdout = bytearray()
        self._stderr = bytearray()
        # stdout and stderr pipes still open; stderr is drained too, so a chatty command cannot block on it.
        self._open = {popen.stdout.fileno(): self._stdout, popen.stderr.fileno(): self._stderr}  # type: ignore[union-attr]
        self._read_lock = threading.Lock()

    def readline(self, timeout: float, limit: int = LINE_LIMIT) -> bytes:
        deadline = time.monotonic() + timeout
        stdout_fd = self._popen.stdout.fileno()  # type: ignore[union-attr]
        with self._read_lock:
            while True:
                newline = self._stdout.find(b"\n")
                if newline >= 0 or stdout_fd not in self._open or len(self._stdout) > limit:
                    end = newline + 1 if newline >= 0 else min(len(self._stdout), limit + 1)
                    line = bytes(self._stdout[:end])
                    del self._stdout[:end]
                    return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeviceTimeout(self._device, f"'{self.argv[0]}' printed no line for {timeout:g} s")
                self._pump(remaining)

    def _pump(self, timeout: float) -> None:
        readable, _, _ = select.select(list(self._open), [], [], timeout)
        for fd in readable:
            chunk = os.read(fd, 65536)
            if chunk:
                self._open[fd] += chunk
            else:
                del self._open[fd]

    def write(self, data: bytes) -> None:
        try:
            self._popen.stdin.write(data)  # type: ignore[union-attr]
        except (OSError, ValueError) as exc:  # ValueError: stdin was closed already
            raise DeviceError(self._device, f"'{self.argv[0]}' no longer reads its input: {exc}") from exc

    def close_stdin(self) -> None:
        try:
            self._popen.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass

    def wait(self, timeout: float) -> int | None:
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> bool:
        kill_group(self._popen)
        self._popen.wait()
        self.close_stdin()
        return True

    @property
    def stderr(self) -> bytes:
        return bytes(self._stderr)
