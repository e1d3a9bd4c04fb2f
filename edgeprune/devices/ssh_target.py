"""Where an SSH device really is: inventory settings merged with ``~/.ssh/config``, as OpenSSH would resolve them."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko

from ..errors import ConfigError


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, after merging inventory settings with ``~/.ssh/config``."""

    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    identities_only: bool
    known_hosts: Path
    accept_new_host_key: bool

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH files this host's keys under: ``host`` on port 22, ``[host]:port`` otherwise."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


def resolve_target(
    host: str,
    *,
    user: str | None = None,
    port: int | None = None,
    identity_file: str | os.PathLike[str] | None = None,
    known_hosts: str | os.PathLike[str] | None = None,
    ssh_config: str | os.PathLike[str] | None = None,
    accept_new_host_key: bool = False,
) -> SSHTarget:
    """Look ``host`` up in the SSH config file (default ``~/.ssh/config``); explicit arguments win."""
    config_path = Path(ssh_config or "~/.ssh/config").expanduser()
    options = _read_ssh_config(config_path, host)
    for unsupported in ("proxyjump", "proxycommand"):
        if unsupported in options:
            raise ConfigError(
                f"{config_path}: host '{host}' uses {unsupported}, which edgeprune does not support",
                hint="give the inventory a host reachable directly, or a Host entry without it",
            )
    if identity_file is not None:
        explicit = Path(identity_file).expanduser()
        if not explicit.is_file():
            raise ConfigError(f"identity file {explicit} for host '{host}' does not exist", hint="fix identity_file")
        identity_files: tuple[str, ...] = (str(explicit),)
    else:
        identity_files = tuple(str(Path(path).expanduser()) for path in options.get("identityfile", []))
    config_known_hosts = options.get("userknownhostsfile", "~/.ssh/known_hosts").split()[0]
    # OpenSSH users who set accept-new (or no) for a host expect new keys to be recorded without a flag.
    config_accepts_new = options.get("stricthostkeychecking", "").lower() in ("accept-new", "no", "off")
    return SSHTarget(
        hostname=options.get("hostname", host),
        port=port if port is not None else _config_port(options, config_path, host),
        user=user or options.get("user") or getpass.getuser(),
        identity_files=identity_files,
        identities_only=options.get("identitiesonly", "no").lower() == "yes",
        known_hosts=Path(known_hosts or config_known_hosts).expanduser(),
        accept_new_host_key=accept_new_host_key or config_accepts_new,
    )


def _read_ssh_config(path: Path, host: str) -> paramiko.SSHConfigDict:
    if not path.is_file():
        return paramiko.SSHConfig().lookup(host)
    try:
        return paramiko.SSHConfig.from_path(str(path)).lookup(host)
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise ConfigError(f"{path}: cannot read SSH config for host '{host}': {exc}") from exc


def _config_port(options: paramiko.SSHConfigDict, config_path: Path, host: str) -> int:
    try:
        return int(options.get("port", 22))
    except ValueError:
        raise ConfigError(f"{config_path}: host '{host}' has Port '{options['port']}', not a number") from None
