"""A board-farm device: a labgrid place reserved and acquired for as long as it is used, reached over SSH.

The inventory names the place or its tags instead of a host. On first use (or when the bench claims it with its
``--lock-timeout``) the device waits for a matching free place, acquires it, reads the SSH endpoint from the
place's ``NetworkService`` resource and from then on is an :class:`SSHDevice` to that board. :meth:`close`
releases the place and cancels the reservation, whatever ended the bench.

labgrid is an optional dependency: this module imports it only when a farm device is opened.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ...errors import ConfigError, DeviceError, UsageError
from ..base import DEFAULT_LOCK_TIMEOUT_S, CommandResult, Device, DeviceProcess
from ..ssh.device import SSHDevice
from ..ssh.settings import SSHSettings

if TYPE_CHECKING:
    from .places import AcquiredPlace, PlaceClaim

COORDINATOR_ENV = "LG_COORDINATOR"  # where labgrid's own tools look for the coordinator
DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid-client's default when the variable is unset

log = logging.getLogger(__name__)


class LabgridDevice(Device):
    """A labgrid place matching ``place``/``place_tags``; its board is used as ``ssh`` says (python, workdir,
    keys), as a host's would be, at the address (host, user, port) that the place's NetworkService gives."""

    def __init__(
        self,
        name: str,
        *,
        place: str | None = None,
        place_tags: Mapping[str, str] | None = None,
        coordinator: str | None = None,
        ssh: SSHSettings = SSHSettings(),
    ) -> None:
        super().__init__(name, python=ssh.python, threads=ssh.threads, tags=ssh.tags)
        places = _import_labgrid_places(name)
        self.coordinator = coordinator or os.environ.get(COORDINATOR_ENV) or DEFAULT_COORDINATOR
        self.wanted = places.PlaceFilter(place, dict(place_tags or {}))
        self._ssh = ssh
        self._claim: PlaceClaim | None = None
        self._board: SSHDevice | None = None
        self._served_by: AcquiredPlace | None = None  # kept after close(), for the results
        self._claim_lock = threading.Lock()
        self._interrupted = threading.Event()

    def claim(self, *, timeout_s: float, on_wait: Callable[[str], None]) -> None:
        with self._claim_lock:
            if self._board is not None:
                return
            claim = _import_labgrid_places(self.name).PlaceClaim(self.name, self.coordinator, self.wanted)
            self._claim = claim  # before acquiring: close() must release whatever a cut-off claim got
            try:
                acquired = claim.acquire(timeout_s=timeout_s, on_wait=on_wait, cancelled=self._interrupted)
                board = _board_of(self.name, acquired, self._ssh)
            except BaseException:
                self._claim = None
                claim.release()  # a reservation left queued would take a place nobody uses
                raise
            self._served_by = acquired
            self._board = board

    def facts(self) -> dict[str, Any]:
        served_by = self._served_by
        if served_by is None:
            return {"coordinator": self.coordinator}
        board = self._board.facts() if self._board else {}
        return {**board, "place": served_by.place, "exporter": served_by.exporter, "coordinator": self.coordinator}

    @property
    def address(self) -> str:
        served_by = self._served_by
        if served_by is None:
            return f"labgrid:{self.wanted} via {self.coordinator}"
        return (f"labgrid:{served_by.place} (exporter {served_by.exporter}) "
                f"{served_by.username}@{served_by.host}:{served_by.port}")

    @property
    def workdir(self) -> str:
        return self._claimed_board().workdir

    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        return self._claimed_board().run(argv, timeout=timeout, stdin=stdin)

    def start(self, argv: Sequence[str]) -> DeviceProcess:
        return self._claimed_board().start(argv)

    def interrupt(self) -> None:
        self._interrupted.set()  # ends a wait for a place
        board = self._board
        if board is not None:
            board.interrupt()

    def upload(self, local: Path, remote: str) -> None:
        self._claimed_board().upload(local, remote)

    def download(self, remote: str, local: Path) -> None:
        self._claimed_board().download(remote, local)

    def exists(self, remote: str) -> bool:
        return self._claimed_board().exists(remote)

    def make_private_dir(self, remote: str) -> None:
        self._claimed_board().make_private_dir(remote)

    def close(self) -> None:
        board, claim = self._board, self._claim
        self._board = self._claim = None
        try:
            if board is not None:
                board.close()
        finally:
            if claim is not None:
                claim.release()
            self._interrupted.clear()

    def _claimed_board(self) -> SSHDevice:
        """Used without a claim first (e.g. ``devices check``): wait as long as a bench would, saying so."""
        if self._board is None:
            self.claim(timeout_s=DEFAULT_LOCK_TIMEOUT_S, on_wait=lambda message: log.warning("%s: %s", self.name, message))
        assert self._board is not None
        return self._board


def _board_of(device: str, place: AcquiredPlace, ssh: SSHSettings) -> SSHDevice:
    """The place's board as an SSH device; a place whose endpoint ~/.ssh/config cannot resolve fails its device,
    not the bench."""
    try:
        return SSHDevice(device, host=place.host, user=place.username, port=place.port, settings=ssh)
    except ConfigError as exc:
        raise DeviceError(device, f"place {place.place}: {exc.message}", hint=exc.hint) from exc


def _import_labgrid_places(device: str) -> ModuleType:
    """The labgrid-backed half, or a usage error that says what to install."""
    try:
        from . import places
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("labgrid", "grpc"):
            raise
        raise UsageError(
            f"device '{device}' is a labgrid place, but labgrid is not installed",
            hint="pip install 'edgeprune[labgrid]'",
        ) from None
    return places
