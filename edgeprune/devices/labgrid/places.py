"""Places of a labgrid board farm: reserve one that matches, acquire it, read its SSH endpoint, release it.

A reservation queues for any free place matching a filter (tags, or ``name`` for one place), the way CI jobs
share boards with ``labgrid-client reserve --wait``; the coordinator hands each reservation a place of its own,
so two benches never share one, even from one process.

This module imports labgrid; import it only once labgrid is known to be installed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Mapping, TypeVar

import grpc
from labgrid.remote.client import ClientSession
from labgrid.remote.common import Reservation, ReservationState
from labgrid.remote.generated import labgrid_coordinator_pb2 as pb

from ...errors import DeviceError, LockTimeout
from ..ssh.names import NAMES_HINT, host_problem, user_problem
from .session import SharedSessions, call, rpc

# labgrid-client polls a waiting reservation every second; polling also keeps it alive (it expires after 60 s).
POLL_SECONDS = 1.0
FILTER_GROUP = "main"  # the only reservation filter group labgrid implements

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PlaceFilter:
    """Which places will do: one by name, any carrying all of ``tags``, or a named place that must carry them."""

    name: str | None
    tags: Mapping[str, str]

    def as_labgrid_filter(self) -> dict[str, str]:
        # The coordinator's scheduler treats a place's name as its tag 'name'.
        return {**self.tags, **({"name": self.name} if self.name else {})}

    def matches(self, name: str, tags: Mapping[str, str]) -> bool:
        return all({**tags, "name": name}.get(key) == value for key, value in self.as_labgrid_filter().items())

    def __str__(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.as_labgrid_filter().items())


@dataclass(frozen=True)
class AcquiredPlace:
    """A place this process holds, and where its board's SSH server is (its ``NetworkService`` resource)."""

    place: str
    exporter: str
    host: str
    port: int
    username: str


class PlaceClaim:
    """One device's hold on a place: :meth:`acquire` reserves, waits, acquires; :meth:`release` undoes it all."""

    def __init__(self, device: str, coordinator: str, wanted: PlaceFilter) -> None:
        self.device = device
        self.coordinator = coordinator
        self.wanted = wanted
        self._session: ClientSession | None = None
        self._token: str | None = None
        self._place: str | None = None  # set before the acquire is sent, so release() also covers a cut-off acquire

    def acquire(self, *, timeout_s: float, on_wait: Callable[[str], None], cancelled: threading.Event) -> AcquiredPlace:
        """Wait up to ``timeout_s`` for a matching place; :class:`LockTimeout` if every one stays taken."""
        self._session = session = SharedSessions.take(self.device, self.coordinator)
        self._check_some_place_matches(session)
        request = pb.CreateReservationRequest(
            filters={FILTER_GROUP: pb.Reservation.Filter(filter=self.wanted.as_labgrid_filter())}, prio=0.0)
        self._token = self._call("cannot reserve a place", rpc(session.stub.CreateReservation, request)).reservation.token
        self._place = self._await_allocation(session, self._token, timeout_s, on_wait, cancelled)
        return self._call(f"cannot acquire place {self._place}", self._acquire(session, self._place))

    def release(self) -> None:
        """Release the place and cancel the reservation; best effort, a failure is logged with the manual fix."""
        session, place, token = self._session, self._place, self._token
        self._session = self._place = self._token = None
        if session is None:
            return
        try:
            if place is not None:
                self._call(f"cannot release place {place}", _release_place(session, place))
            if token is not None:
                self._call("cannot cancel the reservation", _cancel_reservation(session, token))
        except DeviceError as exc:
            fix = f" (free it with `LG_COORDINATOR={self.coordinator} labgrid-client -p {place} release`)" if place else ""
            log.warning("%s%s", exc, fix)
        finally:
            SharedSessions.give_back(self.coordinator, session)

    def _check_some_place_matches(self, session: ClientSession) -> None:
        """A filter that no place matches would wait forever: fail now, naming the places there are."""
        places = self._call("cannot list places", _places(session))
        if not any(self.wanted.matches(name, place.tags) for name, place in places.items()):
            raise DeviceError(
                self.device,
                f"no labgrid place on {self.coordinator} matches {self.wanted} (places: {', '.join(sorted(places)) or 'none'})",
                hint="check labgrid_place/labgrid_tags, or tag a place with `labgrid-client -p PLACE set-tags KEY=VALUE`",
            )

    def _await_allocation(self, session: ClientSession, token: str, timeout_s: float,
                          on_wait: Callable[[str], None], cancelled: threading.Event) -> str:
        deadline = time.monotonic() + timeout_s
        told = ""
        while True:
            response = self._call("lost the reservation", rpc(session.stub.PollReservation,
                                                              pb.PollReservationRequest(token=token)))
            reservation = Reservation.from_pb2(response.reservation)
            if reservation.state in (ReservationState.allocated, ReservationState.acquired):
                return reservation.allocations[FILTER_GROUP][0]
            if reservation.state is not ReservationState.waiting:
                raise DeviceError(self.device, f"the coordinator {self.coordinator} ended the reservation for "
                                               f"{self.wanted} ({reservation.state.name})")
            holders = self._describe_holders(session)
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    self.device,
                    f"no labgrid place matching {self.wanted} came free within {timeout_s:g} s ({holders})",
                    hint="the farm is busy; try again later or raise --lock-timeout",
                )
            message = f"waiting for a free place matching {self.wanted} ({holders}; up to {timeout_s:g} s)"
            if message != told:
                on_wait(message)
                told = message
            if cancelled.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
                raise DeviceError(self.device, f"interrupted while waiting for a place matching {self.wanted}")

    def _describe_holders(self, session: ClientSession) -> str:
        """``held: pi4-a acquired by host/user, pi4-b reserved by host/user``: who has the places we wait for."""
        owners = {reservation.token: reservation.owner for reservation in self._call(
            "cannot list reservations", rpc(session.stub.GetReservations, pb.GetReservationsRequest())).reservations}
        held = []
        for name, place in sorted(self._call("cannot list places", _places(session)).items()):
            if not self.wanted.matches(name, place.tags):
                continue
            if place.acquired:
                held.append(f"{name} acquired by {place.acquired}")
            elif place.reservation and place.reservation != self._token:
                held.append(f"{name} reserved by {owners.get(place.reservation, 'another client')}")
        return "held: " + ", ".join(held) if held else "queued behind other reservations"

    async def _acquire(self, session: ClientSession, name: str) -> AcquiredPlace:
        await session.stub.AcquirePlace(pb.AcquirePlaceRequest(placename=name))
        await session.sync_with_coordinator()  # the place's acquired resources arrive as an update
        return self._endpoint(session, name)

    def _endpoint(self, session: ClientSession, name: str) -> AcquiredPlace:
        """Where the place's board listens for SSH; runs on the loop, which is what updates the session."""
        for exporter, group, cls, resource_name in session.places[name].acquired_resources:
            if cls != "NetworkService":
                continue
            entry = session.resources.get(exporter, {}).get(group, {}).get(resource_name)
            if entry is None:
                raise DeviceError(self.device, f"place {name}: exporter {exporter} no longer publishes "
                                               f"{group}/{resource_name}", hint="check that labgrid-exporter runs")
            if entry.extra.get("proxy_required"):
                raise DeviceError(self.device, f"place {name}: exporter {exporter} is isolated, so its board is "
                                               "reachable only through the exporter host, which edgeprune does not do",
                                  hint="run labgrid-exporter without --isolated")
            return self._checked_endpoint(name, exporter, entry.args)
        raise DeviceError(
            self.device,
            f"place {name} has no NetworkService resource, so edgeprune cannot tell where its board's SSH server is",
            hint=f"export one and run `labgrid-client -p {name} add-match EXPORTER/GROUP/NetworkService`",
        )

    def _checked_endpoint(self, name: str, exporter: str, params: Mapping[str, Any]) -> AcquiredPlace:
        """The NetworkService's address, username and port, which any exporter on the farm may set: they reach
        ~/.ssh/config's tokens (and so maybe a shell) as an inventory's host and user do, and are checked alike."""
        address, username, port = params.get("address"), params.get("username"), params.get("port", 22)
        for key, value, check in (("address", address, host_problem), ("username", username, user_problem)):
            problem = check(value) if isinstance(value, str) else "is not a string"
            if problem:
                raise DeviceError(self.device,
                                  f"place {name}: exporter {exporter}'s NetworkService {key} {value!r} {problem}",
                                  hint=f"the farm must fix the exporter's {key}; {NAMES_HINT}")
        if type(port) is not int or not 1 <= port <= 65535:  # labgrid's own exporter sends an int, never a bool
            raise DeviceError(self.device, f"place {name}: exporter {exporter}'s NetworkService port {port!r} is not "
                                           "a port number", hint="the farm must fix the exporter's port")
        return AcquiredPlace(place=name, exporter=exporter, host=address, port=port, username=username)

    def _call(self, what: str, coroutine: Coroutine[Any, Any, T]) -> T:
        return call(self.device, self.coordinator, what, coroutine)


async def _places(session: ClientSession) -> dict[str, Any]:
    """A copy made on the loop: the session's own dict changes there while other threads would read it."""
    return dict(session.places)


async def _release_place(session: ClientSession, name: str) -> None:
    # 'fromuser' makes this a no-op unless we hold the place: never free a place someone else acquired.
    owner = f"{session.gethostname()}/{session.getuser()}"
    await session.stub.ReleasePlace(pb.ReleasePlaceRequest(placename=name, fromuser=owner))


async def _cancel_reservation(session: ClientSession, token: str) -> None:
    try:
        await session.stub.CancelReservation(pb.CancelReservationRequest(token=token))
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:  # already gone: it expired on the coordinator
            raise
