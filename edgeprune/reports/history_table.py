"""What ``edgeprune history list`` and ``history show`` print."""

from __future__ import annotations

from typing import Sequence

from ..history.store import BenchSummary
from ..results.document import ResultsDocument
from ..text import one_line, shorten
from .bench_table import render_bench
from .table import format_table

COMMIT_CHARS = 12


def render_history_list(benches: Sequence[BenchSummary], shown_as: str) -> str:
    if not benches:
        return f"no benches in {one_line(shown_as)} (record one with edgeprune bench --label LABEL)"
    rows = [[bench.id, shorten(bench.label, 30) if bench.label else None, bench.created,
             f"{bench.ok_runs}/{bench.runs}", bench.git_commit[:COMMIT_CHARS] if bench.git_commit else None,
             bench.git_branch, bench.host, bench.edgeprune_version] for bench in benches]
    return format_table(["id", "label", "created", "ok runs", "commit", "branch", "host", "edgeprune"], rows)


def render_history_bench(bench_id: int, document: ResultsDocument) -> str:
    provenance = document.provenance or {}
    facts = {"label": document.label, "created": document.created, "edgeprune": document.edgeprune_version,
             **{key: value for key, value in provenance.items() if value and key != "edgeprune_version"}}
    lines = [f"bench {bench_id}"] + [f"  {key}: {one_line(value)}" for key, value in facts.items() if value]
    return "\n".join([*lines, "", render_bench(document)])
