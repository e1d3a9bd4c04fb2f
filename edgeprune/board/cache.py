"""A content-addressed store on the device: a file is uploaded once, under its sha256, and reused."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from ..devices.base import Device
from ..hashing import file_sha256
from .runner import RUNNER_FILENAME, runner_script


@dataclass
class DeviceCache:
    device: Device
    uploaded_bytes: int = 0
    _known: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return posixpath.join(self.device.workdir, "cache")

    def ensure(self, local: Path, *, sha256: str | None = None) -> str:
        """The remote path of ``local``'s content, uploading it only when the device lacks it."""
        digest = sha256 or file_sha256(local)
        if digest in self._known:
            return self._known[digest]
        folder = posixpath.join(self.root, digest[:2])
        remote = posixpath.join(folder, digest + "".join(Path(local).suffixes[-1:]))
        if not self.device.exists(remote):
            self.device.make_private_dir(self.device.workdir)
            self.device.make_private_dir(self.root)
            self.device.make_private_dir(folder)
            self.device.upload(Path(local), remote)
            self.uploaded_bytes += Path(local).stat().st_size
        self._known[digest] = remote
        return remote

    def ensure_runner(self) -> str:
        """The runner under its own content hash, so a new edgeprune never runs an old runner."""
        script = runner_script()
        digest = file_sha256(script)
        folder = posixpath.join(self.root, "runner", digest[:16])
        remote = posixpath.join(folder, RUNNER_FILENAME)
        if digest not in self._known:
            if not self.device.exists(remote):
                for path in (self.device.workdir, self.root, posixpath.dirname(folder), folder):
                    self.device.make_private_dir(path)
                self.device.upload(script, remote)
                self.uploaded_bytes += script.stat().st_size
            self._known[digest] = remote
        return self._known[digest]

    def scratch_dir(self) -> str:
        scratch = posixpath.join(self.device.workdir, "scratch")
        self.device.make_private_dir(self.device.workdir)
        self.device.make_private_dir(scratch)
        return scratch
