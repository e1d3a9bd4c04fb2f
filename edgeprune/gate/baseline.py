"""Where the baseline of a gate comes from: a results file, or ``history:LABEL`` in the results history."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..results.document import ResultsDocument, read_results
from ..results.history import HISTORY_FILENAME, History

HISTORY_PREFIX = "history:"


def load_baseline(spec: str, history_dir: Path) -> tuple[ResultsDocument, str]:
    """The baseline document and the name messages call it by."""
    if not spec.startswith(HISTORY_PREFIX):
        return read_results(Path(spec)), spec
    label = spec[len(HISTORY_PREFIX):]
    if not label:
        raise UsageError(f"--baseline {spec}: no label after '{HISTORY_PREFIX}'", hint="e.g. --baseline history:main")
    # History() would create an empty database; a gate only reads, and a missing history is a wrong --history.
    if not (history_dir / HISTORY_FILENAME).is_file():
        raise UsageError(f"--baseline {spec}: no results history in '{history_dir}'",
                         hint="pass --history DIR, or record one with edgeprune bench --label LABEL")
    history = History(history_dir)
    try:
        return history.load(label), f"{spec} ({history.path})"
    finally:
        history.close()
