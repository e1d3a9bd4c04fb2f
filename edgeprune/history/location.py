"""Where the results history lives, from ``--history`` or ``$EDGEPRUNE_HISTORY``: a folder (``FOLDER/history.sqlite``,
``.edgeprune`` by default), ``sqlite:///PATH``, or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB``.

A database URL is a secret: it is only ever shown without its password (``display``). Without a password in the
URL, libpq finds one as its users expect (``PGPASSWORD``, ``~/.pgpass``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import UsageError

HISTORY_ENV_VAR = "EDGEPRUNE_HISTORY"
DEFAULT_HISTORY_DIR = Path(".edgeprune")
HISTORY_FILENAME = "history.sqlite"
POSTGRESQL_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
POSTGRESQL_DRIVER = "postgresql+psycopg"
# libpq connection parameters a URL may carry; anything else (a typo, or an option meant for another driver) is
# refused rather than passed to a driver that would ignore it or fail obscurely.
POSTGRESQL_QUERY_KEYS = frozenset({
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword", "connect_timeout", "application_name",
    "target_session_attrs", "host", "port", "passfile", "options", "keepalives", "keepalives_idle",
})
FORMS_HINT = ("--history takes a folder, sqlite:///PATH or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB "
              f"(also from ${HISTORY_ENV_VAR})")


@dataclass(frozen=True)
class HistoryLocation:
    url: URL
    given_as: str  # the option or variable it came from, for messages

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.database or "") if self.url.get_backend_name() == "sqlite" else None

    @property
    def display(self) -> str:
        """The location as messages show it: a SQLite file's path, a server's URL without its password."""
        path = self.sqlite_path
        return str(path) if path is not None else self.url.render_as_string(hide_password=True)

    def __str__(self) -> str:
        return self.display


def history_location(option: str | None, environ: Mapping[str, str] = os.environ) -> HistoryLocation:
    """The history ``--history`` names, else ``$EDGEPRUNE_HISTORY``, else ``.edgeprune``."""
    if option is not None:
        return parse_location(option, "--history")
    if environ.get(HISTORY_ENV_VAR):
        return parse_location(environ[HISTORY_ENV_VAR], f"${HISTORY_ENV_VAR}")
    return folder_location(DEFAULT_HISTORY_DIR, "the default history folder")


def parse_location(text: str, given_as: str) -> HistoryLocation:
    scheme, separator, _ = text.partition("://")
    if not separator:
        return folder_location(Path(text), given_as)
    scheme = scheme.lower()
    if scheme in POSTGRESQL_SCHEMES:
        return postgresql_location(text, given_as)
    if scheme == "sqlite":
        return sqlite_location(text, given_as)
    # Only the scheme is quoted: the rest of an unknown URL may hold a password.
    raise UsageError(f"{given_as}: '{scheme[:40]}://' is not a history this edgeprune can use", hint=FORMS_HINT)


def folder_location(folder: Path, given_as: str) -> HistoryLocation:
    return HistoryLocation(URL.create("sqlite", database=str(folder / HISTORY_FILENAME)), given_as)


def sqlite_location(text: str, given_as: str) -> HistoryLocation:
    url = parsed_url(text, given_as)
    if not url.database or url.database == ":memory:" or url.host or url.query:
        raise UsageError(f"{given_as}: a SQLite history is sqlite:///PATH (a file; sqlite:////abs/path for an "
                         "absolute one)", hint=FORMS_HINT)
    return HistoryLocation(url, given_as)


def postgresql_location(text: str, given_as: str) -> HistoryLocation:
    url = parsed_url(text, given_as).set(drivername=POSTGRESQL_DRIVER)
    shown = url.render_as_string(hide_password=True)
    if not url.database:
        raise UsageError(f"{given_as}: {shown} names no database", hint="add /DB to the URL, e.g. "
                                                                        "postgresql://ci@db.example/edgeprune")
    unknown = sorted(set(url.query) - POSTGRESQL_QUERY_KEYS)
    if unknown:
        raise UsageError(f"{given_as}: {shown}: unknown connection parameter {', '.join(unknown)!s}",
                         hint=f"a history URL takes {', '.join(sorted(POSTGRESQL_QUERY_KEYS))}")
    return HistoryLocation(url, given_as)


def parsed_url(text: str, given_as: str) -> URL:
    try:
        return make_url(text)
    except (ArgumentError, ValueError, TypeError) as exc:  # e.g. a port that is no number; the message never quotes the URL
        raise UsageError(f"{given_as}: not a valid database URL ({type(exc).__name__})", hint=FORMS_HINT) from None
