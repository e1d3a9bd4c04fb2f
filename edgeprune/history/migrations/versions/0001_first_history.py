"""The history as edgeprune 0.1 created it, before migrations: benches and their runs.

A history file from then has these tables and no ``alembic_version``; it is stamped with this revision and
upgraded from here.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "benches",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("label", sa.Text),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("results_path", sa.Text),
        sa.Column("header", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("benches_by_label", "benches", ["label", "id"])
    op.create_table(
        "runs",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("bench_id", ROW_ID, sa.ForeignKey("benches.id"), nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("variant", sa.Text, nullable=False),
        sa.Column("threads", sa.Integer),
        sa.Column("xnnpack", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("p50_ms", sa.Float),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("top1", sa.Float),
        sa.Column("record", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("runs_by_bench", "runs", ["bench_id"])


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("benches")
