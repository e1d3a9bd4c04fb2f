"""Every bench, kept in a database so later commands (``gate --baseline history:LABEL``, ``history``) can find it:
an embedded SQLite file by default, or a PostgreSQL server a team shares (``location.py``).

Many benches write at once (CI jobs, devices): each finished run is one short transaction, SQLite waits for its
write lock (WAL mode, a busy timeout), PostgreSQL numbers rows itself. The database is a file or a server edgeprune
does not control: what it returns is checked as a results file is.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, case, create_engine, event, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..errors import HistoryError, UsageError
from ..fsutil import os_reason
from ..parsing import ParseError, parse_json
from ..results.document import ResultsDocument, RunRecord, results_from_json
from ..text import one_line
from .location import HistoryLocation
from .migrate import upgrade_to_head
from .schema import benches, runs

BUSY_TIMEOUT_S = 60.0
WAL_RETRY_S = 0.05
CONNECT_TIMEOUT_S = 10
HISTORY_HINT = "choose a writable folder with --history DIR; bench also takes --no-history"
SERVER_HINT = "check the server, the user and the database in --history or $EDGEPRUNE_HISTORY"


@dataclass(frozen=True)
class BenchRow:
    id: int
    label: str | None
    created: str

    def __str__(self) -> str:
        # repr: the row's text is the database's, and a message stays one line.
        label = f"labelled {self.label!r}" if self.label is not None else "unlabelled"
        return f"bench {self.id} ({label}, created {self.created!r})"


@dataclass(frozen=True)
class BenchSummary:
    """One line of ``history list``."""

    id: int
    label: str | None
    created: str
    git_commit: str | None
    git_branch: str | None
    host: str | None
    edgeprune_version: str | None
    runs: int
    ok_runs: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class History:
    """A results history, migrated to this edgeprune's tables when opened."""

    def __init__(self, location: HistoryLocation) -> None:
        self.location = location
        self._engine = open_engine(location)
        try:
            with self._database("opened"):
                upgrade_to_head(self._engine, location.display)
        except BaseException:
            self._engine.dispose()
            raise

    def start_bench(self, document: ResultsDocument, results_path: Path | None) -> int:
        with self._database("written"), self._engine.begin() as db:
            return insert_bench(db, document, results_path)

    def add_run(self, bench_id: int, run: RunRecord) -> None:
        with self._database("written"), self._engine.begin() as db:
            db.execute(insert(runs), [run_row(bench_id, run)])

    def update_header(self, bench_id: int, document: ResultsDocument) -> None:
        with self._database("written"), self._engine.begin() as db:
            db.execute(update(benches).where(benches.c.id == bench_id).values(header=json.dumps(header(document))))

    def record(self, document: ResultsDocument, results_path: Path | None) -> int:
        """A whole results document at once (``history record``), in one transaction: all of it or nothing."""
        with self._database("written"), self._engine.begin() as db:
            bench_id = insert_bench(db, document, results_path)
            if document.runs:
                db.execute(insert(runs), [run_row(bench_id, run) for run in document.runs])
            return bench_id

    def newest_labelled(self, label: str) -> BenchRow | None:
        return self._bench_row(select(benches.c.id, benches.c.label, benches.c.created)
                               .where(benches.c.label == label).order_by(benches.c.id.desc()).limit(1))

    def bench(self, bench_id: int) -> BenchRow | None:
        return self._bench_row(select(benches.c.id, benches.c.label, benches.c.created)
                               .where(benches.c.id == bench_id))

    def labels(self, limit: int) -> list[str]:
        """Up to ``limit`` distinct labels, the most recently used first."""
        query = (select(benches.c.label).where(benches.c.label.is_not(None)).group_by(benches.c.label)
                 .order_by(func.max(benches.c.id).desc()).limit(limit))
        return [str(label) for (label,) in self._read(query)]

    def list_benches(self, label: str | None, limit: int) -> list[BenchSummary]:
        """The newest ``limit`` benches (labelled ``label``), newest first, with their run counts."""
        newest = select(benches).order_by(benches.c.id.desc()).limit(limit)
        if label is not None:
            newest = newest.where(benches.c.label == label)
        chosen = newest.subquery()
        query = (select(chosen.c.id, chosen.c.label, chosen.c.created, chosen.c.git_commit, chosen.c.git_branch,
                        chosen.c.host, chosen.c.edgeprune_version, func.count(runs.c.id),
                        func.coalesce(func.sum(case((runs.c.status == "ok", 1), else_=0)), 0))
                 .select_from(chosen.outerjoin(runs, runs.c.bench_id == chosen.c.id))
                 .group_by(*(chosen.c[name] for name in ("id", "label", "created", "git_commit", "git_branch",
                                                         "host", "edgeprune_version")))
                 .order_by(chosen.c.id.desc()))
        return [BenchSummary(*row) for row in self._read(query)]

    def load(self, bench_id: int) -> ResultsDocument:
        """Bench ``bench_id`` as a results document, checked as a results file is: the history is a file too."""
        origin = f"{self.location.display} (bench {bench_id})"
        headers = self._read(select(benches.c.header).where(benches.c.id == bench_id))
        if not headers:
            raise UsageError(f"no bench {bench_id} in {self.location.display}",
                             hint="edgeprune history list shows the benches there")
        records = self._read(select(runs.c.record).where(runs.c.bench_id == bench_id).order_by(runs.c.id))
        try:
            stored = parse_json(headers[0][0])
            run_records = [parse_json(record) for (record,) in records]
        except (ParseError, TypeError) as exc:  # TypeError: a row that holds no text
            raise UsageError(f"{origin}: a stored row is not a JSON document ({exc})",
                             hint="record the baseline again with edgeprune bench --label LABEL") from None
        if not isinstance(stored, dict):
            raise UsageError(f"{origin}: the stored header is not a JSON object")
        return results_from_json({**stored, "runs": run_records}, origin)

    def close(self) -> None:
        self._engine.dispose()

    def _bench_row(self, query: Any) -> BenchRow | None:
        rows = self._read(query)
        return BenchRow(*rows[0]) if rows else None

    def _read(self, query: Any) -> list[Any]:
        with self._database("read"), self._engine.connect() as db:
            return list(db.execute(query).all())

    @contextmanager
    def _database(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, sqlite3.Error) as exc:  # a server down or refusing, a damaged or foreign database
            raise HistoryError(f"results history {self.location.display} cannot be {doing}: "
                               f"{database_reason(exc, self.location)}",
                               hint=HISTORY_HINT if self.location.sqlite_path else SERVER_HINT) from None


def open_existing(location: HistoryLocation) -> History:
    """A history to read: opening a SQLite file that is not there would make an empty one, and hide a wrong
    ``--history``."""
    if location.sqlite_path is not None and not location.sqlite_path.is_file():
        raise UsageError(f"no results history at '{location.display}'",
                         hint="pass --history FOLDER|URL, or record one with edgeprune bench --label LABEL")
    return History(location)


def insert_bench(db: Connection, document: ResultsDocument, results_path: Path | None) -> int:
    provenance = document.provenance or {}
    row = {"label": document.label, "created": document.created,
           "results_path": str(results_path) if results_path else None, "header": json.dumps(header(document)),
           "git_commit": provenance.get("git_commit"), "git_branch": provenance.get("git_branch"),
           "host": provenance.get("host"), "edgeprune_version": document.edgeprune_version}
    return int(db.execute(insert(benches).values(row)).inserted_primary_key[0])


def run_row(bench_id: int, run: RunRecord) -> dict[str, Any]:
    return {"bench_id": bench_id, "device": run.device, "model": run.model, "variant": run.variant,
            "threads": run.threads, "xnnpack": run.xnnpack, "status": run.status,
            "p50_ms": run.latency_ms.p50 if run.latency_ms else None, "size_bytes": run.size_bytes,
            "top1": run.accuracy.top1 if run.accuracy else None, "record": json.dumps(run.to_json())}


def header(document: ResultsDocument) -> dict[str, Any]:
    return {key: value for key, value in document.to_json().items() if key != "runs"}


def database_reason(exc: Exception, location: HistoryLocation) -> str:
    """The driver's own words, on one line, without SQLAlchemy's links and never with the password."""
    reason = str(getattr(exc, "orig", None) or exc)
    reason = "; ".join(line.strip() for line in reason.splitlines() if line.strip()) or type(exc).__name__
    if location.url.password:
        reason = reason.replace(str(location.url.password), "***")
    return one_line(reason)


def open_engine(location: HistoryLocation) -> Engine:
    path = location.sqlite_path
    if path is None:
        query = location.url.query
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if "connect_timeout" not in query else {}
        if "application_name" not in query:
            connect_args["application_name"] = "edgeprune"
        return create_engine(location.url, connect_args=connect_args)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the results history in '{path.parent}': {os_reason(exc, path.parent)}",
                         hint=HISTORY_HINT) from exc
    engine = create_engine(location.url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
    event.listen(engine, "connect", prepare_sqlite_connection)
    # Every transaction takes the write lock when it begins, so two benches creating one new history take turns.
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def prepare_sqlite_connection(connection: sqlite3.Connection, _record: object) -> None:
    connection.isolation_level = None  # transactions as SQLAlchemy begins them, not as sqlite3 guesses them
    switch_to_wal(connection)


def switch_to_wal(connection: sqlite3.Connection) -> None:
    """WAL mode, waiting for the database like every other statement does.

    Changing the journal mode needs the database to itself and SQLite fails it at once, without its busy
    timeout, while another bench opens the same new history file: retry for as long as the timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(WAL_RETRY_S)
