"""A bench's runs into the results history as they finish. The measurements come first: a history that cannot be
reached or written (a server down, a wrong password) costs the history only, and the bench goes on and writes its
results file; the first such error is kept for the end."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

from ..errors import HistoryError
from ..history.location import HistoryLocation
from ..history.store import History
from ..results.document import ResultsDocument, RunRecord

T = TypeVar("T")


class HistoryRecorder:
    def __init__(self, location: HistoryLocation | None) -> None:
        self.error: HistoryError | None = None
        self._history: History | None = None
        self._bench_id: int | None = None
        # A folder that cannot be made is a UsageError, raised here before anything is measured or written.
        self._history = self._attempt(lambda: History(location)) if location is not None else None

    def start(self, document: ResultsDocument, results_path: Path | None) -> None:
        if (history := self._history) is not None:
            self._bench_id = self._attempt(lambda: history.start_bench(document, results_path))

    def add_run(self, _document: ResultsDocument, run: RunRecord) -> None:
        if (history := self._history) is not None and (bench_id := self._bench_id) is not None:
            self._attempt(lambda: history.add_run(bench_id, run))

    def finish(self, document: ResultsDocument) -> None:
        """The final header (also for an interrupted bench: its devices' state), then close."""
        if (history := self._history) is not None and (bench_id := self._bench_id) is not None:
            self._attempt(lambda: history.update_header(bench_id, document))
        self._close()

    def _attempt(self, action: Callable[[], T]) -> T | None:
        try:
            return action()
        except HistoryError as exc:
            self.error = self.error or exc
            self._close()
            return None

    def _close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None
