"""Opening an SSH connection the way OpenSSH would: through jump hosts or a ProxyCommand, keys checked at every
host on the way, transient failures retried, every failure one line that names the host it happened at."""

from __future__ import annotations

import errno
import os
import select
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import paramiko

from ...errors import DeviceError, DeviceTimeout
from .known_hosts import HostKeyPolicy, KnownHosts
from .target import SSHTarget

KEEPALIVE_SECONDS = 30
CLOSE_WAIT_S = 1.0  # for a ProxyCommand to end once asked, or once its connection failed
STDERR_TAIL_BYTES = 4096
_ORIGINATOR = ("127.0.0.1", 0)  # what a direct-tcpip request says it comes from; sshd only logs it


@dataclass
class Route:
    """The connected clients from the first jump host to the device; the last one is the device's."""

    clients: list[paramiko.SSHClient] = field(default_factory=list)

    @property
    def device(self) -> paramiko.SSHClient:
        return self.clients[-1]

    def close(self) -> None:
        for client in reversed(self.clients):  # the device's first: its traffic runs through the others
            client.close()
        self.clients.clear()


@dataclass(frozen=True)
class Connector:
    """Connects to ``target`` (through its jump hosts) for the device called ``device``."""

    device: str
    target: SSHTarget
    timeout: float
    retries: int
    backoff: float

    def connect(self) -> Route:
        """Every error out of here marks the device lost: nothing runs there until a later connect succeeds."""
        try:
            return self._connect_with_retries()
        except DeviceError as error:
            error.lost = True
            raise

    def _connect_with_retries(self) -> Route:
        """Retries the whole way for transient failures (a board still booting, a throttling sshd)."""
        attempt = 0
        while True:
            try:
                return self._connect_once()
            except _HopFailure as failure:
                if not failure.transient or attempt >= self.retries:
                    raise failure.error from failure.__cause__
                time.sleep(self.backoff * 2**attempt)
                attempt += 1

    def _connect_once(self) -> Route:
        route = Route()
        previous: SSHTarget | None = None
        try:
            for hop in (*self.target.jumps, self.target):
                through = (previous, route.clients[-1]) if previous else None
                route.clients.append(self._connect_hop(hop, through))
                previous = hop
        except BaseException:
            route.close()
            raise
        return route

    def _connect_hop(self, hop: SSHTarget, through: tuple[SSHTarget, paramiko.SSHClient] | None) -> paramiko.SSHClient:
        known_hosts = KnownHosts.of(hop)
        # No keys in the client's own table: paramiko then hands every host key to the policy, which judges it
        # against all of the host's known_hosts files as OpenSSH does.
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(HostKeyPolicy(self.device, hop, known_hosts))
        sock = self._socket_to(hop, through)
        started = time.monotonic()
        try:
            client.connect(
                hop.hostname,
                port=hop.port,
                username=hop.user,
                sock=sock,
                # OpenSSH skips configured IdentityFiles that do not exist (config files often list several);
                # paramiko would fail on them.
                key_filename=[path for path in hop.identity_files if Path(path).is_file()] or None,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                allow_agent=not hop.identities_only,
                # Like OpenSSH: the default ~/.ssh/id_* keys only when no IdentityFile is configured.
                look_for_keys=not hop.identity_files,
                transport_factory=_asking_first_for(known_hosts.key_types(hop)),
            )
        except (OSError, EOFError, paramiko.SSHException) as exc:
            # Whether the ProxyCommand ended on its own: asked before close(), which ends it.
            ended = (sock.ended_by_itself() if isinstance(sock, _ProxyCommand) and not is_auth_failure(exc)
                     else None)
            client.close()
            if ended is not None:
                # The hint does not quote the command: errors land in results, and a command line may hold secrets.
                raise _HopFailure(DeviceError(
                    self.device, f"ProxyCommand for {hop.address} ended without a connection: {ended}",
                    hint="run the host's ProxyCommand from ~/.ssh/config by hand to see why"), False) from exc
            # paramiko reports a handshake that ran out of time in several ways, not always as a timeout.
            timed_out = caused_by_timeout(exc) or time.monotonic() - started >= self.timeout
            raise _HopFailure(*self._failure(hop, exc, timed_out=timed_out)) from exc
        except BaseException:  # e.g. HostKeyError, raised from inside connect() by the host key policy
            client.close()
            raise
        client.get_transport().set_keepalive(KEEPALIVE_SECONDS)  # notice a board that vanished mid-bench
        return client

    def _socket_to(self, hop: SSHTarget, through: tuple[SSHTarget, paramiko.SSHClient] | None,
                   ) -> paramiko.Channel | paramiko.ProxyCommand | None:
        """What carries the connection to ``hop``: a channel forwarded by the jump host before it, its
        ProxyCommand, or (None) a plain TCP connection."""
        if through is not None:
            jump, client = through
            try:
                return client.get_transport().open_channel("direct-tcpip", (hop.hostname, hop.port), _ORIGINATOR,
                                                           timeout=self.timeout)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                why = reason(exc)
                hint = "check the address as the jump host sees it"
                if "prohibited" in why:
                    hint += ", and that its sshd allows TCP forwarding (AllowTcpForwarding)"
                raise _HopFailure(DeviceError(
                    self.device, f"jump host {jump.address} cannot reach {hop.hostname}:{hop.port}: {why}", hint=hint,
                ), caused_by_timeout(exc)) from exc
        if hop.proxy_command:
            # As OpenSSH runs it: through the shell, which execs it so that closing the connection ends it.
            return _ProxyCommand(shlex.join(["/bin/sh", "-c", f"exec {hop.proxy_command}"]))
        return None

    def _failure(self, hop: SSHTarget, exc: BaseException, *, timed_out: bool) -> tuple[DeviceError, bool]:
        """The one-line error for a failed connect, and whether trying again may help."""
        where = hop.address if hop is self.target else f"jump host {hop.address}"
        if is_auth_failure(exc):
            return DeviceError(
                self.device,
                f"SSH key authentication failed for {where}",
                hint=f"check that your key is in its authorized_keys (ssh-copy-id -p {hop.port} "
                f"{hop.user}@{hop.hostname}), or set identity_file; keys with a passphrase "
                "must be loaded with ssh-add; passwords are never used",
            ), False
        if isinstance(exc, socket.gaierror):
            return DeviceError(
                self.device,
                f"cannot resolve host '{hop.hostname}'",
                hint="check the device's host in the inventory or its HostName in ~/.ssh/config",
            ), False
        if timed_out:
            return DeviceTimeout(
                self.device,
                f"no SSH answer from {where} within {self.timeout:g} s",
                hint="check that the device is powered on and on the network",
            ), True
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            refused = all(error.errno == errno.ECONNREFUSED for error in exc.errors.values())
            return DeviceError(
                self.device,
                f"cannot connect to {where}: {'connection refused' if refused else 'host unreachable'}",
                hint=f"check that sshd runs there and listens on port {hop.port}",
            ), refused
        if isinstance(exc, (ConnectionResetError, EOFError, paramiko.SSHException)):
            # Resets and hang-ups, e.g. while sshd is still starting or throttles new connections (MaxStartups).
            return DeviceError(
                self.device,
                f"SSH handshake with {where} failed: {reason(exc)}",
                hint="check that the port belongs to an SSH server",
            ), True
        return DeviceError(self.device, f"cannot connect to {where}: {reason(exc)}"), False


class _ProxyCommand(paramiko.ProxyCommand):
    """paramiko's, but reading like a socket (a command that ended is end of file at once, where paramiko's would
    spin until the connect timeout), its stderr in a file (a chatty command never blocks on a full pipe), and
    reaped when closed."""

    def __init__(self, command_line: str) -> None:  # not super().__init__: it would pipe stderr
        self.cmd = shlex.split(command_line)
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                        bufsize=0)
        self.timeout = None

    def recv(self, size: int) -> bytes:
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        if not ready:
            raise TimeoutError()  # what paramiko expects of a socket timing out
        return os.read(self.process.stdout.fileno(), size)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # stderr stays readable: paramiko closes the command when a handshake fails, before the error says why.

    def ended_by_itself(self) -> str | None:
        """How the command ended (exit status, last line of stderr) if it did on its own; None while it runs or
        when it was stopped by us (paramiko's transport closes it on a failed handshake)."""
        try:
            status = self.process.wait(timeout=CLOSE_WAIT_S)  # a failed command is about to end, if not yet
        except subprocess.TimeoutExpired:
            return None
        if status == -signal.SIGTERM:
            return None
        self._stderr.seek(0)
        lines = self._stderr.read()[-STDERR_TAIL_BYTES:].decode(errors="replace").strip().splitlines()
        return f"exit status {status}" + (f": {lines[-1]}" if lines else "")


class _HopFailure(Exception):
    """A failed connection attempt: the error to report and whether another attempt may succeed."""

    def __init__(self, error: DeviceError, transient: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.transient = transient


def _asking_first_for(key_types: set[str]) -> Callable[..., paramiko.Transport]:
    """A transport that asks the host for the key types recorded for it first, as OpenSSH orders its
    HostKeyAlgorithms: a host with several keys then presents one that can be checked."""
    def transport(sock: Any, **settings: Any) -> paramiko.Transport:
        created = paramiko.Transport(sock, **settings)
        options = created.get_security_options()
        # rsa-sha2-256/512 are signatures made with an ssh-rsa key.
        recorded = [algorithm for algorithm in options.key_types
                    if ("ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm) in key_types]
        options.key_types = [*recorded, *(algorithm for algorithm in options.key_types if algorithm not in recorded)]
        return created
    return transport


def is_auth_failure(exc: BaseException) -> bool:
    # paramiko reports "no key could even be tried" as a plain SSHException with this fixed text.
    return isinstance(exc, paramiko.AuthenticationException) or (
        type(exc) is paramiko.SSHException and str(exc) == "No authentication methods available"
    )


def caused_by_timeout(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
