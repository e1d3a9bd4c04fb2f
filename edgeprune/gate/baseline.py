"""Where the baseline of a gate comes from: a results file, or a bench in the results history.

``history:id=N`` is bench N, ``history:label=L`` the newest bench labelled L, and a bare ``history:L`` is the
newest bench labelled L or, for a number, the bench with that id: when both exist and differ, which one was meant
is not guessed.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..history.location import HistoryLocation
from ..history.store import BenchRow, History, open_existing
from ..results.document import ResultsDocument, read_results
from ..text import one_line, shorten

HISTORY_PREFIX = "history:"
BY_ID = "id="
BY_LABEL = "label="
LABEL_HINT = "name a run with edgeprune bench --label LABEL"
MAX_LABELS_SHOWN = 8
MAX_ID_DIGITS = 18  # within the 64-bit ids of SQLite and PostgreSQL


def load_baseline(spec: str, location: HistoryLocation) -> tuple[ResultsDocument, str]:
    """The baseline document and the name messages call it by."""
    if not spec.startswith(HISTORY_PREFIX):
        return read_results(Path(spec)), spec
    reference = spec[len(HISTORY_PREFIX):]
    if reference in ("", BY_ID, BY_LABEL):
        raise UsageError(f"--baseline {spec}: no label or id after '{spec}'",
                         hint="e.g. --baseline history:main, history:label=main or history:id=12")
    history = open_existing(location)
    try:
        bench = find_bench(history, spec, reference)
        return history.load(bench.id), f"{spec} ({location.display}, bench {bench.id})"
    finally:
        history.close()


def find_bench(history: History, spec: str, reference: str) -> BenchRow:
    if reference.startswith(BY_ID):
        bench_id = as_bench_id(reference[len(BY_ID):])
        if bench_id is None:
            raise UsageError(f"--baseline {spec}: '{reference[len(BY_ID):]}' is not a bench id",
                             hint="a bench id is a whole number, as the history numbers its benches")
        return found(history.bench(bench_id), f"--baseline {spec}: no bench {bench_id} in {history.location.display}")
    if reference.startswith(BY_LABEL):
        label = reference[len(BY_LABEL):]
        return found(history.newest_labelled(label),
                     f"--baseline {spec}: no bench labelled {label!r} in {history.location.display}", hint=labels_hint(history))
    labelled = history.newest_labelled(reference)
    bench_id = as_bench_id(reference)
    numbered = history.bench(bench_id) if bench_id is not None else None
    if labelled and numbered and labelled.id != numbered.id:
        raise UsageError(f"--baseline {spec} is ambiguous in {history.location.display}: {numbered} has id {bench_id}, and "
                         f"{labelled} has that label",
                         hint=f"say --baseline history:id={bench_id} or --baseline history:label={reference}")
    nor_id = f" nor a bench {bench_id}" if bench_id is not None else ""
    return found(labelled or numbered, f"--baseline {spec}: no bench labelled {reference!r}{nor_id} in {history.location.display}",
                 hint=labels_hint(history))


def labels_hint(history: History) -> str:
    """The labels there are to choose from (the newest few), else how to make one."""
    labels = history.labels(MAX_LABELS_SHOWN + 1)
    if not labels:
        return f"it has no labelled bench; {LABEL_HINT}"
    shown = ", ".join(one_line(shorten(label, 40)) for label in labels[:MAX_LABELS_SHOWN])
    more = ", ..." if len(labels) > MAX_LABELS_SHOWN else ""
    return f"labels there, newest first: {shown}{more}"


def as_bench_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS else None


def found(bench: BenchRow | None, problem: str, hint: str | None = None) -> BenchRow:
    if bench is None:
        raise UsageError(problem, hint=hint)
    return bench
