"""Every bench, also kept in an embedded SQLite database so later commands can compare runs.

Several benches (CI jobs, devices) may write at once: WAL mode, a busy timeout, and one short transaction
per finished run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..errors import UsageError
from ..fsutil import os_reason
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
        p50 = (run.latency_ms or {}).get("p50")
        top1 = (run.accuracy or {}).get("top1")
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

    def load(self, label: str) -> ResultsDocument:
        """The newest bench with ``label`` (or with that numeric id), as a results document."""
        row = self._db.execute(
            "SELECT id, header FROM benches WHERE label = ? OR CAST(id AS TEXT) = ? ORDER BY id DESC LIMIT 1",
            (label, label),
        ).fetchone()
        if row is None:
            raise UsageError(f"no bench labelled '{label}' in {self.path}",
                             hint="name a run with edgeprune bench --label LABEL")
        bench_id, header = row
        records = [json.loads(record) for (record,) in
                   self._db.execute("SELECT record FROM runs WHERE bench_id = ? ORDER BY id", (bench_id,))]
        return results_from_json({**json.loads(header), "runs": records}, f"{self.path} (bench {bench_id})")

    def close(self) -> None:
        self._db.close()
