"""Alembic's entry point for the history's migrations, run only through ``edgeprune.history.migrate``: it hands over
the connection (already holding the lock that keeps concurrent benches from migrating at once)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
