"""MLflow kept quiet while a bench is logged: its settings for the call (short retries, no telemetry, no run link
that would show a password), its warnings and log lines left for ``--debug``, and with ``--debug`` every line
shown without the secrets."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Iterator

from .mlflow_uri import scrubbed

# MLflow retries a request for minutes by default; a server that is down should cost seconds: at most three
# attempts of 4 s each. Settings the user made win.
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "4",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # a bench phones no one the user did not name
}
# Always: MLflow's "View run at" link goes to stdout, and would show the URI with its password.
MLFLOW_FORCED = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
CHATTY_LOGGERS = ("mlflow", "alembic", "urllib3")  # progress, a local store's migrations, retries
@contextlib.contextmanager
def mlflow_environment() -> Iterator[None]:
    """MLflow's settings for one logging (it reads them from the environment), the process's own restored after."""
    saved = {key: os.environ.get(key) for key in (*MLFLOW_DEFAULTS, *MLFLOW_FORCED)}
    os.environ.update({key: value for key, value in MLFLOW_DEFAULTS.items() if key not in os.environ})
    os.environ.update(MLFLOW_FORCED)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def warnings_silenced(silenced: bool) -> Iterator[None]:
    """MLflow's deprecation and future warnings, shown with ``--debug`` only."""
    with warnings.catch_warnings():
        if silenced:
            warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def loggers_silenced() -> Iterator[None]:
    """MLflow's progress lines, a local store's migrations and urllib3's retries, left for ``--debug``: a failure
    reaches the user as edgeprune's one line instead. MLflow sets its loggers up when imported, so this comes after
    the import."""
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def log_lines_scrubbed(secrets: set[str]) -> Iterator[None]:
    """With ``--debug``, every log line shown, without the secrets: MLflow logs the URLs it calls and their errors.
    The filter sits on the handlers, which see the records of every logger below them too."""
    scrubber = SecretsScrubbed(secrets)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in CHATTY_LOGGERS)]
    handlers = {handler for logger in loggers for handler in logger.handlers}
    for handler in handlers:
        handler.addFilter(scrubber)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(scrubber)


class SecretsScrubbed(logging.Filter):
    """Rewrites a record, its traceback included, without the secrets."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = scrubbed(message, self.secrets), ()
        return True
