"""The connection to a labgrid coordinator, shared by every farm device of the process.

labgrid's client is asyncio over gRPC while the bench runs in threads: every coordinator call runs on one
background event loop (a gRPC channel and its calls belong to the loop they were made on), and the calling thread
waits for the result. There is one :class:`ClientSession` per coordinator, not per device: gRPC carries every
channel to the same address over one connection, and the coordinator tells clients apart by their connection.

This module imports labgrid; import it only once labgrid is known to be installed.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import Future
from typing import Any, Callable, ClassVar, Coroutine, TypeVar

import grpc
from labgrid.remote.client import ClientSession
from labgrid.remote.client import Error as LabgridClientError

from ...errors import DeviceError

CONNECT_TIMEOUT_S = 10.0
RPC_TIMEOUT_S = 30.0

T = TypeVar("T")


def run_on_loop(coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coroutine`` on the labgrid event loop and wait for it; ``TimeoutError`` after ``timeout`` seconds."""
    future: Future[T] = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), _event_loop())
    return future.result()


def call(device: str, coordinator: str, what: str, coroutine: Coroutine[Any, Any, T]) -> T:
    """:func:`run_on_loop` for a coordinator request; a failure is a :class:`DeviceError` saying ``what`` failed."""
    try:
        return run_on_loop(coroutine, RPC_TIMEOUT_S)
    except (TimeoutError, grpc.RpcError, LabgridClientError) as exc:
        raise DeviceError(device, f"labgrid coordinator {coordinator}: {what}: {reason(exc)}") from exc


async def rpc(method: Callable[[Any], Any], request: Any) -> Any:
    """Call a coordinator method from the loop (creating the call object elsewhere would bind it to no loop)."""
    return await method(request)


class SharedSessions:
    """The open session of each coordinator, counted by user and closed when its last user gives it back."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _current: ClassVar[dict[str, ClientSession]] = {}
    _users: ClassVar[Counter[int]] = Counter()

    @classmethod
    def take(cls, device: str, coordinator: str) -> ClientSession:
        with cls._lock:
            session = cls._current.get(coordinator)
            if session is None or session.stopping.is_set():  # never opened, or the coordinator went away
                session = cls._current[coordinator] = _open(device, coordinator)
            cls._users[id(session)] += 1
            return session

    @classmethod
    def give_back(cls, coordinator: str, session: ClientSession) -> None:
        with cls._lock:
            cls._users[id(session)] -= 1
            if cls._users[id(session)] > 0:
                return
            del cls._users[id(session)]
            if cls._current.get(coordinator) is session:
                del cls._current[coordinator]
        try:
            run_on_loop(_close(session), CONNECT_TIMEOUT_S)
        except (TimeoutError, grpc.RpcError, OSError):
            pass  # the channel goes with the process anyway


def reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.details() or exc.code().name
    return str(exc) or type(exc).__name__


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="edgeprune-labgrid", daemon=True).start()
        return _loop


def _open(device: str, coordinator: str) -> ClientSession:
    try:
        return run_on_loop(_start(coordinator), CONNECT_TIMEOUT_S * 2)
    except (TimeoutError, ConnectionError, LabgridClientError, grpc.RpcError) as exc:
        raise DeviceError(
            device,
            f"cannot reach the labgrid coordinator at {coordinator}: {reason(exc)}",
            hint="check that labgrid-coordinator runs there, or set labgrid_coordinator in the inventory or "
            "$LG_COORDINATOR",
        ) from exc


async def _start(coordinator: str) -> ClientSession:
    """A started session that knows every place and resource."""
    session = ClientSession(coordinator, asyncio.get_running_loop())
    try:
        await _wait_until_connected(session.channel)
        await session.start()
    except BaseException:
        await session.close()
        raise
    return session


async def _wait_until_connected(channel: grpc.aio.Channel) -> None:
    """Fail fast on a refused connection (gRPC would keep retrying), so labgrid never logs its own error for it."""
    state = channel.get_state(try_to_connect=True)
    while state is not grpc.ChannelConnectivity.READY:
        if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            raise ConnectionError("connection refused or network unreachable")
        await asyncio.wait_for(channel.wait_for_state_change(state), CONNECT_TIMEOUT_S)
        state = channel.get_state(try_to_connect=True)


async def _close(session: ClientSession) -> None:
    await session.stop()
    await session.close()
