"""``known_hosts`` as OpenSSH keeps it: plain and hashed entries, ``[host]:port`` names, appended in its format."""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

import paramiko

from ..errors import ConfigError, HostKeyError
from .ssh_target import SSHTarget

log = logging.getLogger(__name__)


class KnownHosts:
    """An OpenSSH ``known_hosts`` file: plain and hashed host names, read fresh on each connect, appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keys_for(self, name: str) -> list[tuple[int, paramiko.PKey]]:
        """The keys recorded for ``name`` (``host`` or ``[host]:port``) with their 1-based line numbers."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read known hosts: {exc.strerror}") from exc
        found = []
        for number, line in enumerate(lines, 1):
            fields = line.split()
            # Markers (@cert-authority, @revoked) and comments are not plain host keys: skipped like paramiko does.
            if len(fields) < 3 or fields[0].startswith(("#", "@")):
                continue
            if any(_host_pattern_matches(pattern, name) for pattern in fields[0].split(",")):
                key = _parse_public_key(fields[1], fields[2])
                if key is not None:
                    found.append((number, key))
        return found

    def append(self, name: str, key: paramiko.PKey) -> None:
        """Record ``key`` for ``name`` the way ``ssh`` does, creating ``~/.ssh`` privately if needed."""
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.path.is_file() and self.path.read_bytes()[-1:] not in (b"", b"\n"):
                line = "\n" + line  # a hand-edited file may lack its final newline
            # One O_APPEND write, so concurrent edgeprune runs cannot interleave half lines.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot record the host key of {name}: {exc.strerror}") from exc


def _host_pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            return paramiko.HostKeys.hash_host(name, pattern) == pattern
        except (binascii.Error, AssertionError):  # a malformed salt (hash_host asserts its length)
            return False
    return pattern == name


def _parse_public_key(key_type: str, data: str) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data))
    except (binascii.Error, ValueError, paramiko.SSHException, paramiko.UnknownKeyType):
        return None


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class UnknownHostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for hosts without any recorded key: record the key or refuse with the fix."""

    def __init__(self, device: str, target: SSHTarget, known_hosts: KnownHosts) -> None:
        self._device = device
        self._target = target
        self._known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self._target.accept_new_host_key:
            if self._known_hosts.path.resolve() == Path(os.devnull):
                # A common CI shortcut (UserKnownHostsFile /dev/null): every key is new, so none is ever checked.
                log.warning("device '%s': accepted the host key of %s (%s) without recording it: its known_hosts is "
                            "%s, so this host's identity is never checked", self._device, hostname, describe_key(key),
                            os.devnull)
            self._known_hosts.append(hostname, key)
            return
        target = self._target
        port_option = "" if target.port == 22 else f"-p {target.port} "
        if target.jump or target.proxy_command:  # ssh-keyscan cannot reach it from here; ssh can
            fetch = f"`ssh {port_option}{target.user}@{target.hostname}` once (with its ProxyJump/ProxyCommand)"
        else:
            fetch = f"`ssh-keyscan {port_option}{target.hostname} >> {self._known_hosts.path}`"
        raise HostKeyError(
            self._device,
            f"unknown host key for {hostname} ({describe_key(key)}), not in {self._known_hosts.path}",
            hint=f"check the fingerprint, then pass --accept-new-host-key or run {fetch}",
        )
