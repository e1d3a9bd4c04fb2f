"""The one exception hierarchy of edgeprune.

Every error a user can cause or meet carries a one-line message that names the file, key, option or device
involved and says what to do. The CLI prints that line and exits with the class's ``exit_code``; nothing
else in the library prints or exits.
"""

from __future__ import annotations

import signal

# Exit statuses, the CLI's contract with scripts and CI. Errors carry theirs as ``exit_code``.
EXIT_OK = 0
EXIT_FAILED = 1  # some runs, checks or named variants failed; the rest was done and written
EXIT_USAGE = 2  # unusable input: nothing was done
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it
EXIT_TERMINATED = 128 + signal.SIGTERM


class EdgepruneError(Exception):
    """Base class: an error with a user-facing one-line message."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(EdgepruneError):
    """Bad options, paths or input files: the inputs are unusable."""

    exit_code = EXIT_USAGE


class ModelLoadError(UsageError):
    """A model file or folder could not be read as a Keras or TFLite model."""


class DataError(UsageError):
    """Evaluation or calibration data does not exist or does not fit the model."""


class ConfigError(UsageError):
    """An inventory or policy file is malformed: names the file, the table and the key."""


class ConversionError(EdgepruneError):
    """The TFLite converter failed for a variant."""


class HistoryError(EdgepruneError):
    """The results history (a SQLite file or a PostgreSQL server) cannot be opened, read or written. The message
    shows the database without its password."""

    exit_code = EXIT_USAGE


class TrackingError(EdgepruneError):
    """An MLflow tracking server refused or could not take a bench's runs."""


class DeviceError(EdgepruneError):
    """A device could not be reached or used. ``device`` names it.

    ``lost`` marks the device itself as gone for now (no connection can be made, or it stopped answering), as
    opposed to one command or variant failing: a bench then stops sending it work instead of waiting out every
    remaining call.
    """

    def __init__(self, device: str, message: str, *, hint: str | None = None, lost: bool = False) -> None:
        super().__init__(f"device '{device}': {message}", hint=hint)
        self.device = device
        self.detail = message
        self.lost = lost


class HostKeyError(DeviceError):
    """The SSH host key is unknown (and not accepted) or has changed."""


class DeviceTimeout(DeviceError):
    """A connection or a command on the device exceeded its time limit."""


class LockTimeout(DeviceError):
    """Another bench held the board lock for longer than ``--lock-timeout``; the message names the holder."""


class RunnerError(DeviceError):
    """The device runner reported an error or crashed."""

    def __init__(self, device: str, message: str, *, kind: str = "runner", hint: str | None = None) -> None:
        super().__init__(device, message, hint=hint)
        self.kind = kind


