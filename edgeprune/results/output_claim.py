"""One bench per results file at a time.

A bench rewrites its whole results file after every round. Two benches given the same ``-o`` (say, CI jobs for
two boards sharing a workspace) would each replace the other's document, and the runs of the one that wrote
first would be gone without a word. So a bench claims its results file before it measures anything: an exclusive
``flock`` on a lock file beside it, held until the bench ends (the kernel drops it if the bench dies). A second
bench is refused at once, in one line naming the first (pid, host, since).

The documents are not merged instead: a results document is one bench (its settings, label, device summaries and
sparse verdicts describe the runs in it), so the runs of two benches with different settings cannot share one
honestly, and a run measured by both would have no rightful winner. Two boards that belong in one document are one
bench: ``--device A --device B`` measures them at the same time anyway.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

from ..errors import UsageError
from ..fsutil import WRITABLE_PATH_HINT, os_reason
from ..json_fields import FieldError, Fields
from ..parsing import ParseError, parse_json

HOLDER_MAX_BYTES = 4096


class ResultsFileClaim:
    """A held claim on a results file; a context manager that releases it. Take one with :meth:`take`."""

    def __init__(self, lock_path: Path, fd: int) -> None:
        self.lock_path = lock_path
        self._fd = fd

    @classmethod
    def take(cls, results: Path) -> ResultsFileClaim:
        """Claim ``results`` for this bench; a UsageError naming the bench that has it, or why it cannot be written."""
        lock_path = results.parent / f".{results.name}.lock"
        try:
            results.parent.mkdir(parents=True, exist_ok=True)
            fd = _locked(lock_path, results)
            try:
                holder = {"pid": os.getpid(), "host": socket.gethostname(),
                          "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            raise UsageError(f"cannot write results file '{results}': {os_reason(exc, results.parent)}",
                             hint=WRITABLE_PATH_HINT) from exc
        return cls(lock_path, fd)

    def release(self) -> None:
        """Remove the lock file while still holding it (a bench waiting on the old file then sees it gone)."""
        try:
            self.lock_path.unlink(missing_ok=True)
        except OSError:
            pass  # a lock file left behind is harmless: the next bench takes its lock
        os.close(self._fd)

    def __enter__(self) -> ResultsFileClaim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _locked(lock_path: Path, results: Path) -> int:
    """An open descriptor of ``lock_path`` holding its exclusive lock; a UsageError if another bench holds it."""
    while True:
        # O_NOFOLLOW: a symlink planted in a shared folder must not make the bench write through it.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(os.pread(fd, HOLDER_MAX_BYTES, 0))
            os.close(fd)
            raise UsageError(f"results file '{results}' is being written by another bench ({holder})",
                             hint="give each bench its own -o FILE, or measure the devices in one bench "
                                  "(--device A --device B)") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder released and removed it between our open and lock: take the new one


def describe_holder(content: bytes) -> str:
    """``pid N on HOST since T`` as the holder wrote it; it may not have yet."""
    try:
        holder = Fields.of(parse_json(content))
        pid, host = holder.integer("pid", low=1), holder.text("host", limit=255)
        since = holder.text("since", limit=64)
    except (ParseError, FieldError):
        return "one that is just starting"
    return f"pid {pid} on {host} since {since}"
