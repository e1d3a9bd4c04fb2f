"""Writes that never leave a half-written file or folder behind: write aside, then rename into place.

A path that cannot be written (read-only folder, a file where a folder must be, a full disk) is the user's to
fix, so it becomes a ``UsageError`` naming the path here, once, for every writer.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import UsageError

WRITABLE_PATH_HINT = "choose a writable path"


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def os_reason(exc: OSError, folder: Path) -> str:
    """Why writing in ``folder`` failed, in words.

    A file standing where a folder must be surfaces as "File exists" or "Not a directory" about some path;
    naming that file says what to move. Never raises: a path that cannot even be looked at (a folder the user may
    not enter, a name too long) leaves the reason as the OS gave it.
    """
    try:
        nearest = nearest_existing(folder)
        if not nearest.is_dir():
            return f"'{nearest}' is a file, not a folder"
    except OSError:
        pass
    return exc.strerror or str(exc)


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the root at the latest)."""
    return next((candidate for candidate in (path, *path.parents) if candidate.exists()), Path(path.anchor or "."))


def write_bytes_atomic(path: Path, data: bytes, *, what: str = "file") -> None:
    """``what`` names the file in the error, e.g. "results file"."""
    try:
        _write_bytes_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {what} '{path}': {os_reason(exc, path.parent)}",
                         hint=WRITABLE_PATH_HINT) from exc


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, document: Any, *, what: str = "file") -> None:
    write_bytes_atomic(path, (json.dumps(document, indent=2, sort_keys=False) + "\n").encode("utf-8"), what=what)


def staging_dir_for(target: Path) -> Path:
    """A fresh folder beside ``target`` (same filesystem, so the final rename is atomic), with the permissions
    the umask gives a new folder: it becomes ``target``, and mkdtemp's private 0700 would hide it from the team."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
        staging.chmod(0o777 & ~current_umask())
        return staging
    except OSError as exc:
        raise UsageError(f"cannot create folder '{target}': {os_reason(exc, target.parent)}",
                         hint=WRITABLE_PATH_HINT) from exc


def remove_empty_folders(folder: Path, *, up_to: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, stopping at ``up_to`` (which stays): undoes the
    ``mkdir(parents=True)`` of a write that failed, never a folder that holds anything."""
    while folder != up_to and up_to in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): what is above it stays too
            return
        folder = folder.parent


def publish_dir(staging: Path, target: Path) -> None:
    """Put ``staging`` in ``target``'s place; an existing ``target`` is removed only after the swap."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.retired-"))
    try:
        os.replace(target, retired / target.name)
        try:
            os.replace(staging, target)
        except BaseException:  # a failed swap or Ctrl-C/SIGTERM between the renames: the earlier one goes back
            os.replace(retired / target.name, target)
            raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)
