"""The machine edgeprune runs on, behind the same interface as a board over SSH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import DeviceError, DeviceTimeout
from .base import CommandResult, Device


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

    @property
    def workdir(self) -> str:
        return str(self._workdir)

    @property
    def address(self) -> str:
        return "local"

    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        try:
            completed = subprocess.run(  # no stdin means an empty one, as over SSH
                list(argv), input=stdin if stdin is not None else b"", capture_output=True, timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:  # subprocess.run has already killed the child
            raise DeviceTimeout(self.name, f"'{argv[0]}' ran longer than {timeout:g} s and was killed") from exc
        except OSError as exc:
            raise DeviceError(self.name, f"cannot start '{argv[0]}': {exc.strerror}") from exc
        return CommandResult(tuple(argv), completed.returncode, completed.stdout, completed.stderr)

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
