"""A board reached over SSH: one lazily opened paramiko connection per device, host keys checked like OpenSSH.

Settings come from the inventory and from ``~/.ssh/config`` (explicit inventory values win), so a host that
works with ``ssh pi`` works here, also through its ProxyJump hosts or ProxyCommand. Authentication uses only keys (ssh-agent, IdentityFile, ``~/.ssh/id_*``),
never passwords. Host keys are checked against ``known_hosts``: an unknown key is refused unless the caller
accepts new keys (then it is recorded in OpenSSH format); a changed key is always refused.
"""

from __future__ import annotations

import contextlib
import posixpath
import secrets
import select
import shlex
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import paramiko

from ...errors import DeviceError, DeviceTimeout
from ..base import LINE_LIMIT, CommandResult, Device, DeviceProcess
from .connect import Connector, Route, reason
from .settings import DEFAULT_WORKDIR, SSHSettings
from .target import resolve_target

HELPER_TIMEOUT = 10.0  # the short commands edgeprune runs for itself (kill, df)
SFTP_REPLY_TIMEOUT = 60.0
PIPE_RACE_S = 0.05  # see _RemoteProcess.pump

# Every command runs through this POSIX sh snippet: it announces its PID (so a timed-out command can be killed
# on the device) or that the program is missing, then execs the program so the PID stays the program's.
_START_MARK = b"edgeprune-start="
_WRAPPER = (
    'command -v -- "$1" >/dev/null 2>&1 || { echo edgeprune-start=missing; exit 127; }; '
    'echo "edgeprune-start=$$"; exec "$@"'
)
# Kills the process group led by $1 (sshd makes each session's command a group leader), falling back to the
# single process; TERM first, KILL for whatever is left after about two seconds.
_KILL_SCRIPT = (
    'kill -TERM "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || exit 0; '
    'for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done; '
    'kill -KILL "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null; exit 0'
)


class SSHDevice(Device):
    """A board reached over SSH at ``host`` (a host name or ``~/.ssh/config`` alias; ``user`` and ``port`` win over
    the config's), used as ``settings`` say; the connection and its SFTP session open on first use and are reused."""

    def __init__(
        self, name: str, *, host: str, user: str | None = None, port: int | None = None,
        settings: SSHSettings = SSHSettings(),
    ) -> None:
        super().__init__(name, python=settings.python, threads=settings.threads, tags=settings.tags)
        self.target = resolve_target(
            host,
            user=user,
            port=port,
            identity_file=settings.identity_file,
            known_hosts=settings.known_hosts,
            ssh_config=settings.ssh_config,
            accept_new_host_key=settings.accept_new_host_key,
            proxy_jump=settings.proxy_jump,
        )
        self.connect_timeout = settings.connect_timeout
        self.connect_retries = settings.connect_retries
        self.retry_backoff = settings.retry_backoff
        self._workdir_setting = settings.workdir or DEFAULT_WORKDIR
        self._workdir: str | None = None
        self._route: Route | None = None
        self._sftp_client: paramiko.SFTPClient | None = None
        # Commands running now, for interrupt(); worker threads add and remove them.
        self._in_flight: set[_RemoteProcess] = set()
        self._in_flight_lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.target.address

    def facts(self) -> dict[str, Any]:
        """The way in, when it is not direct: jump hosts by address; a ProxyCommand only by name, since its
        command line may hold what results must not."""
        if self.target.jump:
            return {"via": [jump.address for jump in self.target.jumps]}
        if self.target.proxy_command:
            return {"via": ["ProxyCommand"]}
        return {}

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            self._workdir = self._absolute_remote_path(self._workdir_setting)
        return self._workdir

    # -- commands ---------------------------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, timeout: float, stdin: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        channel = self._open_channel()
        deadline = time.monotonic() + timeout  # the command's own time: connecting has connect_timeout
        process = _RemoteProcess(channel)
        feeder = None
        try:
            with self._tracked(process):  # from before it starts: interrupt() must not miss it
                self._exec_command(channel, argv)
                feeder = _feed_stdin(channel, stdin)
                exit_code = process.wait(deadline)
            if exit_code is None:
                killed = self._kill(process.pid())
                outcome = "was killed" if killed else "could not be killed: the device does not answer"
                raise DeviceTimeout(self.name, f"'{argv[0]}' ran longer than {timeout:g} s and {outcome}",
                                    lost=not killed)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceError(self.name, f"lost the connection to {self.address} while running '{argv[0]}'") from exc
        finally:
            channel.close()  # also unblocks a stdin feeder the command never read from
        if feeder is not None:
            feeder.join()
        self._check_started(process, argv)
        return CommandResult(argv, exit_code, process.program_stdout(), bytes(process.stderr))

    def start(self, argv: Sequence[str]) -> DeviceProcess:
        argv = tuple(argv)
        channel = self._open_channel()
        process = _RemoteProcess(channel)
        with self._in_flight_lock:  # from before it starts: interrupt() must not miss it
            self._in_flight.add(process)
        try:
            self._exec_command(channel, argv)
            process.pump(time.monotonic() + self.connect_timeout, process.started)
            self._check_started(process, argv)
        except (OSError, EOFError, paramiko.SSHException, DeviceError) as exc:
            self._forget(process)
            channel.close()
            if isinstance(exc, DeviceError):
                raise
            raise DeviceError(self.name, f"lost the connection to {self.address} while starting '{argv[0]}'") from exc
        return SSHProcess(self, argv, process)

    def _exec_command(self, channel: paramiko.Channel, argv: tuple[str, ...]) -> None:
        """exec_command with a time limit: paramiko waits for the reply without one, forever on a frozen board."""
        unanswered = threading.Event()

        def give_up() -> None:
            unanswered.set()
            self.close()  # the device does not answer: dropping the connection ends the wait

        watchdog = threading.Timer(self.connect_timeout, give_up)
        watchdog.start()
        try:
            channel.exec_command(_command_line(argv))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if unanswered.is_set():
                raise DeviceTimeout(
                    self.name, f"{self.address} did not answer within {self.connect_timeout:g} s to start '{argv[0]}'",
                    lost=True,
                ) from exc
            raise
        finally:
            watchdog.cancel()

    def interrupt(self) -> None:
        with self._in_flight_lock:
            running = list(self._in_flight)
        for process in running:
            process.start_seen.wait(self.connect_timeout)  # its PID, from the thread collecting its output
        answered = [self._kill(process.pid()) for process in running]
        if not all(answered):
            self.close()  # the device does not answer: dropping the connection ends the calls waiting on it

    @contextlib.contextmanager
    def _tracked(self, process: _RemoteProcess) -> Iterator[None]:
        with self._in_flight_lock:
            self._in_flight.add(process)
        try:
            yield
        finally:
            self._forget(process)

    def _forget(self, process: _RemoteProcess) -> None:
        with self._in_flight_lock:
            self._in_flight.discard(process)

    def _check_started(self, process: _RemoteProcess, argv: tuple[str, ...]) -> None:
        if process.program_missing():
            raise DeviceError(
                self.name,
                f"cannot start '{argv[0]}': not found on {self.address}",
                hint="non-interactive SSH sessions have a shorter PATH than login shells; use an absolute path",
            )
        if process.pid() is None:
            raise DeviceError(
                self.name,
                f"the shell on {self.address} did not start '{argv[0]}': {process.stderr_summary()}",
                hint="edgeprune needs a POSIX sh on the device",
            )

    def _open_channel(self) -> paramiko.Channel:
        transport = self._connected_client().get_transport()
        try:
            return transport.open_session(timeout=self.connect_timeout)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if not transport.is_active():
                raise DeviceError(self.name, f"lost the connection to {self.address}") from exc
            # paramiko's fixed text for a server that never answered the request: a frozen board, not a refusal.
            unanswered = str(exc) == "Timeout opening channel."
            raise DeviceError(self.name, f"cannot open an SSH session on {self.address}: {reason(exc)}",
                              lost=unanswered) from exc

    def _kill(self, pid: int | None) -> bool:
        """Best effort, whether the kill command ran: a failed kill must not hide the error that caused it.

        Without a PID (the device never confirmed the start) there is nothing to kill with: False.
        """
        if pid is None:
            return False
        try:
            self.run(["sh", "-c", _KILL_SCRIPT, "sh", str(pid)], timeout=HELPER_TIMEOUT)
        except DeviceError:
            return False
        return True

    # -- files ------------------------------------------------------------------------------------------------

    def upload(self, local: Path, remote: str) -> None:
        sftp = self._sftp()
        # A temporary name in the same folder, then one rename: readers never see a half-written file.
        partial = posixpath.join(posixpath.dirname(remote), f".upload-{secrets.token_hex(8)}")
        try:
            self._make_dirs(posixpath.dirname(remote))
            sftp.put(str(local), partial)
            sftp.posix_rename(partial, remote)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._remove_quietly(partial)
            raise DeviceError(self.name, f"cannot upload {local} to {remote}: {self._upload_failure(exc, local, remote)}") from exc

    def _upload_failure(self, exc: BaseException, local: Path, remote: str) -> str:
        """Why an upload failed. SFTP (version 3) cannot say "disk full" (it reports a bare "Failure", or writes
        that fell short), so for a file error ask the device how much room is left."""
        if not isinstance(exc, OSError):
            return reason(exc)
        folder = posixpath.dirname(remote)
        free = self._free_bytes(folder)
        size = local.stat().st_size
        if free is not None and free < size:
            return f"No space left on device ({free} bytes free in {folder}, the file has {size})"
        return reason(exc)

    def _free_bytes(self, folder: str) -> int | None:
        try:
            result = self.run(["df", "-Pk", "--", folder], timeout=HELPER_TIMEOUT)
            return int(result.stdout.decode().splitlines()[1].split()[3]) * 1024 if result.ok else None
        except (DeviceError, IndexError, ValueError):
            return None

    def download(self, remote: str, local: Path) -> None:
        try:
            self._sftp().get(remote, str(local))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceError(self.name, f"cannot download {remote}: {reason(exc)}") from exc

    def exists(self, remote: str) -> bool:
        try:
            attributes = self._sftp().stat(remote)
        except FileNotFoundError:
            return False
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceError(self.name, f"cannot check {remote}: {reason(exc)}") from exc
        return stat.S_ISREG(attributes.st_mode or 0)

    def make_private_dir(self, remote: str) -> None:
        try:
            self._make_dirs(remote)
            self._sftp().chmod(remote, 0o700)  # explicit: mkdir's mode is reduced by the remote umask
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceError(self.name, f"cannot create {remote}: {reason(exc)}") from exc

    def _make_dirs(self, folder: str) -> None:
        """``mkdir -p`` over SFTP."""
        sftp = self._sftp()
        missing = []
        while folder not in ("", "/"):
            try:
                sftp.stat(folder)
                break
            except FileNotFoundError:
                missing.append(folder)
                folder = posixpath.dirname(folder)
        for path in reversed(missing):
            try:
                sftp.mkdir(path)
            except OSError:
                if not stat.S_ISDIR(sftp.stat(path).st_mode or 0):  # tolerate a concurrent creator
                    raise

    def _remove_quietly(self, remote: str) -> None:
        try:
            self._sftp().remove(remote)
        except (OSError, EOFError, paramiko.SSHException):
            pass

    def _absolute_remote_path(self, path: str) -> str:
        """Resolve ``~``, ``~/x`` and relative paths against the remote user's home (SFTP starts there)."""
        try:
            home = self._sftp().normalize(".")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceError(self.name, f"cannot find the home folder on {self.address}: {reason(exc)}") from exc
        if path == "~":
            return home
        return posixpath.normpath(posixpath.join(home, path.removeprefix("~/")))

    # -- connection -------------------------------------------------------------------------------------------

    def _sftp(self) -> paramiko.SFTPClient:
        client = self._connected_client()
        if self._sftp_client is None:
            try:
                self._sftp_client = client.open_sftp()
                # paramiko waits for SFTP replies without a limit; a board that froze must not hang the bench.
                self._sftp_client.get_channel().settimeout(SFTP_REPLY_TIMEOUT)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise DeviceError(
                    self.name,
                    f"cannot start SFTP on {self.address}: {reason(exc)}",
                    hint="enable the sftp Subsystem in the device's sshd_config",
                ) from exc
        return self._sftp_client

    def _connected_client(self) -> paramiko.SSHClient:
        if self._route is not None:
            transport = self._route.device.get_transport()
            if transport is not None and transport.is_active():
                return self._route.device
            self.close()  # the link dropped (e.g. the board rebooted): reconnect for this call
        self._route = Connector(self.name, self.target, self.connect_timeout, self.connect_retries,
                                self.retry_backoff).connect()
        return self._route.device

    def close(self) -> None:
        if self._sftp_client is not None:
            self._sftp_client.close()
            self._sftp_client = None
        if self._route is not None:
            self._route.close()
            self._route = None


def _command_line(argv: Sequence[str]) -> str:
    """The one string SSH carries: the wrapper and every argument quoted, so no shell ever interprets them."""
    return " ".join(shlex.quote(part) for part in ("sh", "-c", _WRAPPER, "sh", *argv))


def _feed_stdin(channel: paramiko.Channel, data: bytes | None) -> threading.Thread | None:
    """Send stdin from a thread, so a command that writes a lot before reading cannot deadlock with us."""
    if not data:
        channel.shutdown_write()
        return None

    def feed() -> None:
        try:
            channel.sendall(data)
            channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the command ended (or was killed) without reading everything: its exit code tells

    thread = threading.Thread(target=feed, name="edgeprune-ssh-stdin", daemon=True)
    thread.start()
    return thread


class _RemoteProcess:
    """The output of one wrapped command: the wrapper's start line, then the program's own output."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self._start_line: bytes | None = None
        self.start_seen = threading.Event()
        self.stdout = bytearray()  # the program's stdout once the start line has been seen
        self.stderr = bytearray()

    def pump(self, deadline: float, done: Callable[[], bool] = lambda: False) -> bool:
        """Collect output until ``done()`` or the end of the output; False if ``deadline`` passed first."""
        while True:
            self._drain()
            if done() or self.ended():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Readable on new stdout/stderr data and at EOF, but not always: paramiko's OrPipe is not thread-safe,
            # and stdout arriving while stderr is drained can clear the pipe with the data still buffered. Look
            # again every PIPE_RACE_S so such a line waits milliseconds, not until the deadline.
            select.select([self.channel], [], [], min(remaining, PIPE_RACE_S))

    def ended(self) -> bool:
        """All output is in: the command closed it, or the channel closed (killed, or the connection dropped)."""
        channel = self.channel
        return (channel.eof_received or channel.closed) and not channel.recv_ready() and not channel.recv_stderr_ready()

    def wait(self, deadline: float) -> int | None:
        """Collect output until the command exits; its exit code, or None if ``deadline`` passed first.

        Raises EOFError when the channel closed without the command's end: the connection dropped.
        """
        channel = self.channel
        if not self.pump(deadline):
            return None
        if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            return None
        if channel.exit_status == -1 and not channel.eof_received:
            raise EOFError("the SSH channel closed before the command ended")
        # paramiko ignores "exit-signal" and leaves -1 for a command killed by a signal.
        return channel.exit_status

    def _drain(self) -> None:
        while self.channel.recv_ready():
            self.stdout += self.channel.recv(65536)
        while self.channel.recv_stderr_ready():
            self.stderr += self.channel.recv_stderr(65536)
        if self._start_line is None:
            self._split_start_line()

    def _split_start_line(self) -> None:
        start = self.stdout.find(_START_MARK)
        end = self.stdout.find(b"\n", start) if start >= 0 else -1
        if end >= 0:
            self._start_line = bytes(self.stdout[start + len(_START_MARK) : end])
            del self.stdout[: end + 1]  # with anything before it, e.g. from a chatty shell rc file
            self.start_seen.set()

    def started(self) -> bool:
        return self._start_line is not None

    def pid(self) -> int | None:
        line = self._start_line
        return int(line) if line is not None and line.isdigit() else None

    def program_missing(self) -> bool:
        return self._start_line == b"missing"

    def program_stdout(self) -> bytes:
        return bytes(self.stdout) if self.started() else b""

    def stderr_summary(self) -> str:
        text = bytes(self.stderr).decode("utf-8", "replace").strip()
        return text.splitlines()[0] if text else "no start line and no error output"


class SSHProcess(DeviceProcess):
    """A command started with :meth:`SSHDevice.start`, on its own channel of the device's connection."""

    def __init__(self, device: SSHDevice, argv: tuple[str, ...], output: _RemoteProcess) -> None:
        self.argv = argv
        self._device = device
        self._output = output
        self._channel = output.channel

    def readline(self, timeout: float, limit: int = LINE_LIMIT) -> bytes:
        stdout = self._output.stdout
        with self._lost_connection_is_a_device_error():
            if not self._output.pump(time.monotonic() + timeout, lambda: b"\n" in stdout or len(stdout) > limit):
                raise DeviceTimeout(self._device.name, f"'{self.argv[0]}' printed no line for {timeout:g} s")
        end = stdout.find(b"\n") + 1 or min(len(stdout), limit + 1)
        line = bytes(stdout[:end])
        del stdout[:end]
        return line

    def write(self, data: bytes) -> None:
        with self._lost_connection_is_a_device_error():
            self._channel.sendall(data)

    def close_stdin(self) -> None:
        try:
            self._channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass

    def wait(self, timeout: float) -> int | None:
        with self._lost_connection_is_a_device_error():
            exit_code = self._output.wait(time.monotonic() + timeout)
        if exit_code is not None:
            self._release()
        return exit_code

    def kill(self) -> bool:
        killed = self._output.ended() or self._device._kill(self._output.pid())
        if not killed:
            self._device.close()  # the device does not answer: dropping the connection ends the command there
        self._release()
        return killed

    def abandon(self) -> None:
        self._release()  # no kill command: it would wait for the device, which does not answer

    @property
    def stderr(self) -> bytes:
        return bytes(self._output.stderr)

    def _release(self) -> None:
        self._channel.close()
        self._device._forget(self._output)

    @contextlib.contextmanager
    def _lost_connection_is_a_device_error(self) -> Iterator[None]:
        try:
            yield
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceError(
                self._device.name, f"lost the connection to {self._device.address} while running '{self.argv[0]}'"
            ) from exc
