"""The results history: every bench, kept in SQLite or PostgreSQL (one schema, migrated with Alembic), for
baselines and browsing."""
