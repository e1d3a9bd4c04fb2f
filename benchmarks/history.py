"""What the results history costs a bench and a gate, in SQLite and in PostgreSQL, side by side.

For each store: the time to record a bench of 32 runs as ``edgeprune bench`` does (the bench row, one
transaction per finished run, the final header), and the time to answer a gate's baseline query
(``history:main``: find the newest bench labelled ``main`` and load it as a results document) once the history
holds 10,000 benches. Goal: under 0.2 s each. The 10,000 benches are written in bulk first (8 runs each, ten
labels taking turns, so ``main`` labels 1,000 of them); only the two operations above are timed, each the median
of several repeats.

PostgreSQL is a real server on 127.0.0.1, started like the tests' (``tests/fixtures/postgres.py``). Run from the
repository root:

    .venv/bin/python benchmarks/history.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, select

from edgeprune.gate.baseline import load_baseline
from edgeprune.history.location import HistoryLocation, parse_location
from edgeprune.history.schema import benches, runs
from edgeprune.history.store import History, header, run_row
from edgeprune.reports.table import format_table
from edgeprune.results.document import ResultsDocument, RunRecord
from edgeprune.results.latency import Latency

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the PostgreSQL fixture's server helper is a plain context manager

from fixtures.postgres import postgres_bin_dir, started_server  # noqa: E402

BENCHES = 10_000
FILLER_RUNS = 8
RECORDED_RUNS = 32
LABELS = [f"label-{index}" for index in range(9)] + ["main"]
REPEATS = 7
GOAL_S = 0.2


def sample_run(index: int) -> RunRecord:
    samples = [1.0 + 0.01 * (index % 7) + 0.001 * i for i in range(30)]
    return RunRecord(device=f"pi{index % 4}", model="digits_cnn", variant=f"v{index}", model_sha256="0" * 64,
                     size_bytes=100_000 + index, threads=1 + index % 4, xnnpack=True, status="ok",
                     latency_ms=Latency.from_values(samples), samples_ms=samples, peak_rss_mb=40.0)


def sample_document(label: str, run_count: int) -> ResultsDocument:
    document = ResultsDocument.new({"runs": 30, "rounds": 3}, label=label)
    document.runs = [sample_run(index) for index in range(run_count)]
    document.provenance = {"git_commit": "a" * 40, "git_branch": "main", "host": "bench-host"}
    return document


def fill(location: HistoryLocation) -> None:
    """10,000 benches in bulk, in one transaction: the state a busy team's history reaches."""
    History(location).close()  # creates the tables
    engine = create_engine(location.url)
    filler = sample_document("main", FILLER_RUNS)
    headers = {}
    for label in LABELS:
        filler.label = label
        headers[label] = json.dumps(header(filler))
    rows = [{"label": label, "created": filler.created, "results_path": None, "header": headers[label],
             "git_commit": "a" * 40, "git_branch": "main", "host": "bench-host",
             "edgeprune_version": filler.edgeprune_version}
            for label in (LABELS[index % len(LABELS)] for index in range(BENCHES))]
    with engine.begin() as db:
        db.execute(insert(benches), rows)
        bench_ids = [bench_id for (bench_id,) in db.execute(select(benches.c.id))]
        db.execute(insert(runs), [run_row(bench_id, run) for bench_id in bench_ids for run in filler.runs])
    engine.dispose()


def record_a_bench(location: HistoryLocation, document: ResultsDocument) -> float:
    """As a bench records: open, the bench row, one transaction per finished run, the final header, close."""
    started = time.perf_counter()
    history = History(location)
    bench_id = history.start_bench(document, None)
    for run in document.runs:
        history.add_run(bench_id, run)
    history.update_header(bench_id, document)
    history.close()
    return time.perf_counter() - started


def answer_baseline_query(location: HistoryLocation) -> float:
    """As ``gate --baseline history:main`` does: open, find the newest bench labelled main, load it, close."""
    started = time.perf_counter()
    baseline, _ = load_baseline("history:main", location)
    elapsed = time.perf_counter() - started
    assert baseline.label == "main" and baseline.runs
    return elapsed


def measure(name: str, location: HistoryLocation) -> list[object]:
    started = time.perf_counter()
    fill(location)
    filled_s = time.perf_counter() - started
    recorded = [record_a_bench(location, sample_document(f"recorded-{attempt}", RECORDED_RUNS))
                for attempt in range(REPEATS)]
    answered = [answer_baseline_query(location) for _ in range(REPEATS)]
    record_s, query_s = statistics.median(recorded), statistics.median(answered)
    verdict = "ok" if max(record_s, query_s) < GOAL_S else f"over the {GOAL_S} s goal"
    return [name, f"{filled_s:.1f}", f"{record_s:.3f}", f"{query_s:.3f}", verdict]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-history-bench-") as folder:
        rows.append(measure("SQLite", parse_location(folder, "--history")))
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL's server is not installed (apt-get install postgresql)")
    with started_server(bin_dir) as server:
        rows.append(measure("PostgreSQL", parse_location(server.url(server.new_database()), "--history")))
    print(f"{BENCHES:,} benches of {FILLER_RUNS} runs in the history; medians of {REPEATS}")
    print(format_table(["store", "fill s", f"record a bench of {RECORDED_RUNS} runs s", "baseline query s",
                        "goal < 0.2 s"], rows))


if __name__ == "__main__":
    main()
