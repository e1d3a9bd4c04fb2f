"""The history's tables, the same on SQLite and PostgreSQL. The migrations in ``migrations/versions`` build exactly
these (a test compares them); a change here is a new migration there.

A bench is a row of ``benches`` (the results document's header as JSON, and the columns ``history list`` shows) and
one row of ``runs`` per finished run (the run as JSON, and the columns a query filters on).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

# SQLite numbers rows with its 64-bit INTEGER (and AUTOINCREMENT needs that exact type); PostgreSQL's INTEGER is
# 32-bit, so ids there are BIGINT.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

benches = Table(
    "benches", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("label", Text),
    Column("created", Text, nullable=False),
    Column("results_path", Text),
    Column("header", Text, nullable=False),
    Column("git_commit", Text),
    Column("git_branch", Text),
    Column("host", Text),
    Column("edgeprune_version", Text),
    Index("benches_by_label", "label", "id"),
    sqlite_autoincrement=True,
)

runs = Table(
    "runs", metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("bench_id", ROW_ID, ForeignKey("benches.id"), nullable=False),
    Column("device", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("variant", Text, nullable=False),
    Column("threads", Integer),
    Column("xnnpack", Boolean(create_constraint=False), nullable=False),
    Column("status", Text, nullable=False),
    Column("p50_ms", Float),
    Column("size_bytes", BigInteger),
    Column("top1", Float),
    Column("record", Text, nullable=False),
    Index("runs_by_bench", "bench_id"),
    sqlite_autoincrement=True,
)
