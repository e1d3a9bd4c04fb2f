"""Finished steps of a sweep, keyed by what they depend on (inputs' sha256 and settings), so a second run with the
same inputs reuses them and an interrupted one continues where it stopped.

A step's record (``SWEEPDIR/.steps/KEY.json``) is written only after its output is in place, and names that output
with its sha256: a record whose output was changed or removed, or that is not one of ours, is ignored and the step
runs again. The records live in the user's folder, so nothing in them is trusted beyond that check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..fsutil import write_json_atomic
from ..hashing import file_sha256
from ..parsing import ParseError, parse_json

STEPS_DIR = ".steps"


def step_key(step: str, **inputs: Any) -> str:
    """The key of a step: its name, edgeprune's version and every input that changes its output."""
    text = json.dumps({"step": step, "edgeprune": __version__, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StepStore:
    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = sweep_dir
        self.folder = sweep_dir / STEPS_DIR

    def finished(self, key: str, outputs: list[Path]) -> bool:
        """Whether the step ran to its end before and left exactly ``outputs``, each still as it wrote it."""
        try:
            record = parse_json((self.folder / f"{key}.json").read_bytes())
        except (OSError, ParseError):
            return False
        recorded = record.get("outputs") if isinstance(record, dict) else None
        if not isinstance(recorded, dict) or set(recorded) != {self.relative(path) for path in outputs}:
            return False
        for relative, sha256 in recorded.items():
            output = self.inside(relative)
            if output is None or not isinstance(sha256, str) or not output.is_file() or file_sha256(output) != sha256:
                return False
        return True

    def finish(self, key: str, outputs: list[Path]) -> None:
        record = {"outputs": {self.relative(path): file_sha256(path) for path in outputs}}
        write_json_atomic(self.folder / f"{key}.json", record, what="sweep step record")

    def relative(self, path: Path) -> str:
        return path.relative_to(self.sweep_dir).as_posix()

    def inside(self, relative: Any) -> Path | None:
        """``SWEEPDIR/relative`` if it is a path that stays inside SWEEPDIR, else None."""
        if not isinstance(relative, str) or not relative or Path(relative).is_absolute():
            return None
        root = self.sweep_dir.resolve()
        path = (root / relative).resolve()
        return path if root in path.parents else None
