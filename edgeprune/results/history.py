"""Every bench, also kept in an embedded SQLite database so later commands can compare runs.

Several benches (CI jobs, devices) may write at once: WAL mode, a busy timeout, and one short transaction
per finished run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..fsutil import os_reason
from ..parsing import ParseError, parse_json
from .document import ResultsDocument, RunRecord, results_from_json

DEFAULT_HISTORY_DIR = Path(".edgeprune")
HISTORY_FILENAME = "history.sqlite"
BUSY_TIMEOUT_S = 60.0
WAL_RETRY_S = 0.05
HISTORY_HINT = "choose a writable folder with --history DIR; bench also takes --no-history"

SCHEMA = """
CREATE TABLE IF NOT EXISTS benches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT,
    created TEXT NOT NULL,
    results_path TEXT,
    header TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bench_id INTEGER NOT NULL REFERENCES benches(id),
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    threads INTEGER,
    xnnpack INTEGER NOT NULL,
    status TEXT NOT NULL,
    p50_ms REAL,
    size_bytes INTEGER,
    top1 REAL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS benches_by_label ON benches(label, id);
CREATE INDEX IF NOT EXISTS runs_by_bench ON runs(bench_id);
"""


def _switch_to_wal(db: sqlite3.Connection) -> None:
    """WAL mode, waiting for the database like every other statement does.

    Changing the journal mode needs the database to itself and SQLite fails it at once, without its busy
    timeout, while another bench opens the same new history file: retry for as long as the timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(WAL_RETRY_S)


@dataclass(frozen=True)
class BenchRow:
    id: int
    label: str | None
    created: str

    def __str__(self) -> str:
        # repr: the row's text is the database's, and a message stays one line.
        label = f"labelled {self.label!r}" if self.label is not None else "unlabelled"
        return f"bench {self.id} ({label}, created {self.created!r})"


class History:
    def __init__(self, folder: Path = DEFAULT_HISTORY_DIR) -> None:
        self.path = folder / HISTORY_FILENAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the results history in '{folder}': {os_reason(exc, folder)}",
                             hint=HISTORY_HINT) from exc
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            _switch_to_wal(self._db)
            with self._db:
                self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise UsageError(f"results history '{self.path}' cannot be opened: {exc}", hint=HISTORY_HINT) from exc

    def start_bench(self, document: ResultsDocument, results_path: Path | None) -> int:
        header = {key: value for key, value in document.to_json().items() if key != "runs"}
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO benches (label, created, results_path, header) VALUES (?, ?, ?, ?)",
                (document.label, document.created, str(results_path) if results_path else None, json.dumps(header)),
            )
        return int(cursor.lastrowid)

    def add_run(self, bench_id: int, run: RunRecord) -> None:
        p50 = run.latency_ms.p50 if run.latency_ms else None
        top1 = run.accuracy.top1 if run.accuracy else None
        with self._db:
            self._db.execute(
                "INSERT INTO runs (bench_id, device, model, variant, threads, xnnpack, status, p50_ms, size_bytes,"
                " top1, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bench_id, run.device, run.model, run.variant, run.threads, int(run.xnnpack), run.status, p50,
                 run.size_bytes, top1, json.dumps(run.to_json())),
            )

    def update_header(self, bench_id: int, document: ResultsDocument) -> None:
        header = {key: value for key, value in document.to_json().items() if key != "runs"}
        with self._db:
            self._db.execute("UPDATE benches SET header = ? WHERE id = ?", (json.dumps(header), bench_id))

    def newest_labelled(self, label: str) -> BenchRow | None:
        return self._bench("WHERE label = ? ORDER BY id DESC LIMIT 1", label)

    def labels(self, limit: int) -> list[str]:
        """Up to ``limit`` distinct labels, the most recently used first."""
        rows = self._read("SELECT label FROM benches WHERE label IS NOT NULL GROUP BY label ORDER BY MAX(id) DESC "
                          "LIMIT ?", limit)
        return [label for (label,) in rows]

    def bench(self, bench_id: int) -> BenchRow | None:
        return self._bench("WHERE id = ?", bench_id)

    def _bench(self, where: str, value: object) -> BenchRow | None:
        row = self._read(f"SELECT id, label, created FROM benches {where}", value)
        return BenchRow(*row[0]) if row else None

    def load(self, bench_id: int) -> ResultsDocument:
        """Bench ``bench_id`` as a results document, checked as a results file is: the history is a file too."""
        origin = f"{self.path} (bench {bench_id})"
        headers = self._read("SELECT header FROM benches WHERE id = ?", bench_id)
        if not headers:
            raise UsageError(f"no bench {bench_id} in {self.path}")
        records = self._read("SELECT record FROM runs WHERE bench_id = ? ORDER BY id", bench_id)
        try:
            header = parse_json(headers[0][0])
            runs = [parse_json(record) for (record,) in records]
        except (ParseError, TypeError) as exc:  # TypeError: a row that holds no text
            raise UsageError(f"{origin}: a stored row is not a JSON document ({exc})",
                             hint="record the baseline again with edgeprune bench --label LABEL") from None
        if not isinstance(header, dict):
            raise UsageError(f"{origin}: the stored header is not a JSON object")
        return results_from_json({**header, "runs": runs}, origin)

    def _read(self, query: str, value: object) -> list[tuple]:
        try:
            return self._db.execute(query, (value,)).fetchall()
        except sqlite3.Error as exc:  # a damaged or foreign database
            raise UsageError(f"results history '{self.path}' cannot be read: {exc}", hint=HISTORY_HINT) from exc

    def close(self) -> None:
        self._db.close()
