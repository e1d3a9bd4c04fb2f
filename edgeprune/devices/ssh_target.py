"""Where an SSH device really is: inventory settings merged with ``~/.ssh/config``, as OpenSSH would resolve them.

That includes the way there: ``ProxyJump`` hosts (each resolved through the config in turn, as ``ssh -J`` does)
or a ``ProxyCommand`` whose standard input and output carry the connection.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path

import paramiko

from ..errors import ConfigError

# One ProxyJump hop: [user@]host[:port], optionally as an ssh:// URI, IPv6 addresses in brackets.
_JUMP_HOST = re.compile(r"(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:@/\[\]]+)(?::(?P<port>\d+))?/?")


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
    jump: SSHTarget | None = None  # the host the connection goes through (itself maybe reached through another)
    proxy_command: str | None = None  # tokens already expanded

    @property
    def jumps(self) -> tuple[SSHTarget, ...]:
        """The jump hosts in the order the connection passes them, the first one reached directly."""
        return (*self.jump.jumps, self.jump) if self.jump else ()

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
    proxy_jump: str | None = None,
) -> SSHTarget:
    """Look ``host`` up in the SSH config file (default ``~/.ssh/config``); explicit arguments win.

    ``proxy_jump`` is a ``ProxyJump`` value (``[user@]host[:port]``, comma-separated for several hops, ``none``
    for a direct connection) that replaces the config's. Jump hosts take their own settings from the config;
    ``known_hosts`` and ``accept_new_host_key`` apply to every host on the way.
    """
    return _resolve(host, user, port, identity_file, known_hosts, Path(ssh_config or "~/.ssh/config").expanduser(),
                    accept_new_host_key, proxy_jump, jumped_from=())


def _resolve(host: str, user: str | None, port: int | None, identity_file: str | os.PathLike[str] | None,
             known_hosts: str | os.PathLike[str] | None, config_path: Path, accept_new_host_key: bool,
             proxy_jump: str | None, *, jumped_from: tuple[str, ...]) -> SSHTarget:
    options = _read_ssh_config(config_path, host, user=user, port=port)
    jump_spec = proxy_jump if proxy_jump is not None else options.get("proxyjump")
    # An explicit proxy_jump (even "none", as with `ssh -J none`) replaces whatever the config routes through.
    proxy_command = options.get("proxycommand") if proxy_jump is None else None
    if jump_spec is not None and jump_spec.strip().lower() == "none":
        jump_spec = None
    if proxy_command is not None and proxy_command.strip().lower() == "none":
        proxy_command = None
    if jump_spec and proxy_command:
        raise ConfigError(f"{config_path}: host '{host}' sets both ProxyJump and ProxyCommand",
                          hint="keep one of them for this host")
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
    jump = None
    if jump_spec:
        jump = _resolve_jumps(jump_spec, config_path, host, known_hosts, accept_new_host_key,
                              jumped_from or (host,))
    return SSHTarget(
        hostname=options.get("hostname", host),
        port=port if port is not None else _config_port(options, config_path, host),
        user=user or options.get("user") or getpass.getuser(),
        identity_files=identity_files,
        identities_only=options.get("identitiesonly", "no").lower() == "yes",
        known_hosts=Path(known_hosts or config_known_hosts).expanduser(),
        accept_new_host_key=accept_new_host_key or config_accepts_new,
        jump=jump,
        proxy_command=proxy_command,
    )


def is_jump_spec(spec: str) -> bool:
    """Whether ``spec`` is a ProxyJump value: ``none``, or ``[user@]host[:port]`` hops separated by commas."""
    return spec.strip().lower() == "none" or all(_JUMP_HOST.fullmatch(hop.strip()) for hop in spec.split(","))


def _resolve_jumps(spec: str, config_path: Path, host: str, known_hosts: str | os.PathLike[str] | None,
                   accept_new_host_key: bool, jumped_from: tuple[str, ...]) -> SSHTarget:
    """The last hop of ``a,b,c``, reached through the ones before it (as ``ssh -J a,b,c`` does); the first hop
    follows its own config."""
    *earlier, last = [part.strip() for part in spec.split(",")]
    match = _JUMP_HOST.fullmatch(last)
    if not last or match is None:
        raise ConfigError(f"host '{host}': ProxyJump '{spec}' is not [user@]host[:port][,...]",
                          hint=f"fix it in {config_path} or the inventory's proxy_jump")
    if last in jumped_from:
        raise ConfigError(f"{config_path}: ProxyJump goes round in a loop: {' -> '.join((*jumped_from, last))}",
                          hint="one of these hosts must be reachable without jumping through the others")
    return _resolve(match["host"].strip("[]"), match["user"], int(match["port"]) if match["port"] else None, None,
                    known_hosts, config_path, accept_new_host_key, ",".join(earlier) if earlier else None,
                    jumped_from=(*jumped_from, last))


def _read_ssh_config(path: Path, host: str, *, user: str | None, port: int | None) -> paramiko.SSHConfigDict:
    """The options for ``host``; an explicit ``user`` and ``port`` come first, as ``ssh -l``/``-p`` do, so that
    the config's tokens (``%r``, ``%p`` in a ProxyCommand) expand to them too."""
    explicit = "".join(f"    {key} {value}\n" for key, value in (("User", user), ("Port", port)) if value is not None)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        # The first value read wins in SSH configs: a block of its own, before the file, holds the explicit ones.
        return paramiko.SSHConfig.from_text(f"Host {host}\n{explicit}\n{text}" if explicit else text).lookup(host)
    except (OSError, UnicodeDecodeError, ValueError, paramiko.SSHException) as exc:
        raise ConfigError(f"{path}: cannot read SSH config for host '{host}': {exc}") from exc


def _config_port(options: paramiko.SSHConfigDict, config_path: Path, host: str) -> int:
    try:
        return int(options.get("port", 22))
    except ValueError:
        raise ConfigError(f"{config_path}: host '{host}' has Port '{options['port']}', not a number") from None
