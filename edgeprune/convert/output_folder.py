"""Where ``export -o OUTDIR`` may write, and when an existing OUTDIR may be replaced.

An export is built in a staging folder beside OUTDIR and swapped into its place, so an existing OUTDIR is
removed whole. That is safe only for a folder that provably is an earlier export: a manifest of a known schema
(read by ``read_manifest``), next to nothing but the variant files it lists and ``rejected/`` holding the
rejected variants it lists, all regular files named as an export names them (``fp32.tflite``). Anything else
in it (another app's ``src/``, a symbolic link, a stray file) is the user's, and the export refuses without
touching it. OUTDIR itself must not be a symbolic link (the swap would replace the link, judged by what it
points to) nor the current folder or one that holds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

from ..errors import UsageError
from ..fsutil import WRITABLE_PATH_HINT, nearest_existing, os_reason, publish_dir
from ..text import printable
from ..results.manifest import MANIFEST_FILENAME, REJECTED_DIR, read_manifest
from ..variants import VARIANTS

# Far above any manifest an export writes (its inspection lists every layer); a larger one is not one of ours.
MAX_MANIFEST_BYTES = 16 << 20
REPLACE_HINT = "choose a new -o folder or remove it"
T = TypeVar("T")


def check_outdir(outdir: Path) -> Path:
    """Refuse, before any slow work, an OUTDIR the export must not replace or cannot make; return where it
    really is (the folder to stage beside and publish to; messages keep naming ``outdir`` as the user wrote it).

    The staging folder is made beside OUTDIR, so an OUTDIR under a regular file, or under a folder this user may
    not write to, is refused here too.
    """
    try:
        target = real_location(outdir)
        refuse_unless_replaceable(target, outdir)
        ancestor = nearest_existing(target.parent)
    except OSError as exc:
        raise output_error(outdir, exc) from exc
    if not ancestor.is_dir():
        raise UsageError(f"cannot create output '{outdir}': '{ancestor}' is a file, not a folder",
                         hint=WRITABLE_PATH_HINT)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create output '{outdir}': '{ancestor}' is not writable",
                         hint=WRITABLE_PATH_HINT)
    return target


def real_location(outdir: Path) -> Path:
    """OUTDIR with '.', '..' and linked parent folders resolved; a link as OUTDIR itself is refused."""
    if outdir.is_symlink():
        raise UsageError(f"output '{outdir}' is a symbolic link",
                         hint="pass the folder it points to if it is an earlier export, or choose a new -o folder")
    try:
        target = outdir.resolve()
    except RuntimeError as exc:  # a loop of links among the parent folders
        raise UsageError(f"cannot write output '{outdir}': {exc}", hint=WRITABLE_PATH_HINT) from exc
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        # Replacing it would pull the folder out from under this process (and the user's shell).
        raise UsageError(f"output '{outdir}' is the current folder or holds it",
                         hint="choose a new -o folder, e.g. -o exported")
    return target


def refuse_unless_replaceable(target: Path, outdir: Path) -> None:
    """A UsageError unless ``target`` is missing, an empty folder or an earlier export."""
    if target.is_symlink():
        reason = "it is a symbolic link"
    elif not target.exists():
        return
    else:
        reason = not_an_export(target) if target.is_dir() else "it is not a folder"
    if reason:
        raise UsageError(f"output '{outdir}' exists and is not an edgeprune export folder: {reason}",
                         hint=REPLACE_HINT)


def not_an_export(folder: Path) -> str | None:
    """What in ``folder`` shows it is not an earlier export; None for an earlier export or an empty folder."""
    with os.scandir(folder) as scan:
        entries = {entry.name: entry for entry in scan}
    if not entries:
        return None
    manifest_entry = entries.get(MANIFEST_FILENAME)
    if manifest_entry is None or not manifest_entry.is_file(follow_symlinks=False):
        return f"it has no {MANIFEST_FILENAME} file"
    if manifest_entry.stat(follow_symlinks=False).st_size > MAX_MANIFEST_BYTES:
        return f"its {MANIFEST_FILENAME} is larger than an export writes"
    try:
        manifest = read_manifest(folder)
    except UsageError as exc:
        return exc.message
    # Only names an export writes count: a manifest listing "index.html" does not make that file a variant.
    written = {f"{name}.tflite" for name in VARIANTS}
    listed = [value for record in manifest.variants for value in (record.file, record.rejected_file)
              if isinstance(value, str)]
    variant_files = written.intersection(listed)
    rejected_files = {f"{REJECTED_DIR}/{name}" for name in written}.intersection(listed)
    for name, entry in sorted(entries.items()):
        if name == MANIFEST_FILENAME:
            continue
        if name == REJECTED_DIR and entry.is_dir(follow_symlinks=False):
            with os.scandir(entry.path) as scan:
                unlisted = sorted(inner.name for inner in scan if not (inner.is_file(follow_symlinks=False)
                                  and f"{REJECTED_DIR}/{inner.name}" in rejected_files))
            if unlisted:
                return (f"'{REJECTED_DIR}/{printable(unlisted[0], 80)}' is not a rejected variant file its "
                        f"{MANIFEST_FILENAME} lists")
        elif not (entry.is_file(follow_symlinks=False) and name in variant_files):
            return f"'{printable(name, 80)}' is not a variant file its {MANIFEST_FILENAME} lists"
    return None


def publish_export(staging: Path, target: Path, outdir: Path) -> None:
    """Swap the finished export into place. An existing folder is judged again first: the export took a while,
    and what was an earlier export when it started may hold the user's files now."""
    def publish() -> None:
        refuse_unless_replaceable(target, outdir)
        publish_dir(staging, target)

    writing_output(outdir, publish)


def output_error(outdir: Path, exc: OSError) -> UsageError:
    failed = Path(exc.filename) if exc.filename else outdir
    return UsageError(f"cannot write output '{outdir}': {os_reason(exc, failed.parent)}", hint=WRITABLE_PATH_HINT)


def writing_output(outdir: Path, write: Callable[[], T]) -> T:
    """Run one write of the export folder; a failing file system becomes one clear line naming OUTDIR."""
    try:
        return write()
    except OSError as exc:
        raise output_error(outdir, exc) from exc
