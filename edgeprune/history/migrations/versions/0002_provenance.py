"""Where each bench came from: the git commit and branch, the host and the edgeprune version, as columns
``history list`` shows and filters on (the rest of the provenance, CI variables among it, is in the header).

Benches recorded before this revision keep these empty.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

COLUMNS = ("git_commit", "git_branch", "host", "edgeprune_version")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("benches", sa.Column(name, sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("benches") as benches:  # SQLite drops columns only by copying the table
        for name in COLUMNS:
            benches.drop_column(name)
