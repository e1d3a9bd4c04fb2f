"""Bring a history's tables to this edgeprune's revision (Alembic), once, whoever else is opening it.

An empty database gets every migration; a history from before migrations (its tables, no ``alembic_version``) is
stamped with the first revision and upgraded in place; a history a newer edgeprune migrated is refused, since
this one would misread it. Several benches starting at once against a new database take turns: a PostgreSQL
advisory lock, or SQLite's write lock (the engine begins every SQLite transaction IMMEDIATE).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from ..errors import HistoryError

MIGRATIONS = "edgeprune.history:migrations"
FIRST_REVISION = "0001"
# Any fixed 64-bit number: the key of the lock every edgeprune takes while it migrates a PostgreSQL history.
POSTGRESQL_MIGRATION_LOCK = 0x65646765_7072756E  # "edgeprun"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def upgrade_to_head(engine: Engine, shown_as: str) -> None:
    head = head_revision()
    if current_revision(engine) == head:  # the usual case, without taking a lock
        return
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRESQL_MIGRATION_LOCK})
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:  # another bench migrated it while this one waited
            return
        if current is not None and current not in known_revisions():
            raise HistoryError(f"results history {shown_as} has schema revision {current}, newer than this "
                               f"edgeprune's {head}", hint="upgrade edgeprune to use this history")
        config = alembic_config(connection)
        if current is None and inspect(connection).has_table("benches"):
            command.stamp(config, FIRST_REVISION)  # made before migrations: its tables are the first revision's
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
