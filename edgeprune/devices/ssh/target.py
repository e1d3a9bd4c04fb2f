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

from ...errors import ConfigError
from .config import lookup_host
from .names import NAMES_HINT, control_problem, host_problem, user_problem

# One ProxyJump hop: [user@]host[:port], optionally as an ssh:// URI, IPv6 addresses in brackets.
_JUMP_HOST = re.compile(r"(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:@/\[\]]+)(?::(?P<port>\d+))?/?")
DEFAULT_USER_KNOWN_HOSTS = "~/.ssh/known_hosts ~/.ssh/known_hosts2"  # OpenSSH's defaults
DEFAULT_GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, after merging inventory settings with ``~/.ssh/config``."""

    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    identities_only: bool
    # Host keys are looked up in every one of these files (UserKnownHostsFile, then GlobalKnownHostsFile); a new key
    # is recorded in the first user file, as OpenSSH does; none of them is written otherwise.
    user_known_hosts: tuple[Path, ...]
    global_known_hosts: tuple[Path, ...]
    accept_new_host_key: bool
    hash_known_hosts: bool = False  # HashKnownHosts: record new keys under a hashed name
    jump: SSHTarget | None = None  # the host the connection goes through (itself maybe reached through another)
    proxy_command: str | None = None  # tokens already expanded

    @property
    def jumps(self) -> tuple[SSHTarget, ...]:
        """The jump hosts in the order the connection passes them, the first one reached directly."""
        return (*self.jump.jumps, self.jump) if self.jump else ()

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH files this host's keys under: ``host`` on port 22, ``[host]:port`` otherwise, in
        lower case (OpenSSH compares host names in lower case)."""
        host = self.hostname.lower()
        return host if self.port == 22 else f"[{host}]:{self.port}"

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
    ``known_hosts`` (the one UserKnownHostsFile) and ``accept_new_host_key`` apply to every host on the way.

    ``host``, ``user``, ``port`` and ``proxy_jump`` are what ``ssh``'s command line is to OpenSSH: checked as it
    checks those (see :mod:`.names`) before the config, whose tokens and ``Match exec`` may use them, is read.
    """
    if proxy_jump is not None and (problem := jump_problem(proxy_jump)):
        raise ConfigError(f"host '{host}': ProxyJump {proxy_jump!r} {problem}", hint=NAMES_HINT)
    return _resolve(host, user, port, identity_file, known_hosts, Path(ssh_config or "~/.ssh/config").expanduser(),
                    accept_new_host_key, proxy_jump, jumped_from=())


def _resolve(host: str, user: str | None, port: int | None, identity_file: str | os.PathLike[str] | None,
             known_hosts: str | os.PathLike[str] | None, config_path: Path, accept_new_host_key: bool,
             proxy_jump: str | None, *, jumped_from: tuple[str, ...]) -> SSHTarget:
    _check_names(host, user, port, f" (on the way to '{jumped_from[0]}')" if jumped_from else "")
    options = lookup_host(config_path, host, user=user, port=port)
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
        user_known_hosts=(Path(known_hosts).expanduser(),) if known_hosts else _paths(
            options.get("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS)),
        global_known_hosts=_paths(options.get("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS)),
        accept_new_host_key=accept_new_host_key or config_accepts_new,
        hash_known_hosts=options.get("hashknownhosts", "no").lower() == "yes",
        jump=jump,
        proxy_command=proxy_command,
    )


def is_jump_spec(spec: str) -> bool:
    """Whether ``spec`` is a ProxyJump value: ``none``, or ``[user@]host[:port]`` hops separated by commas."""
    return spec.strip().lower() == "none" or all(_JUMP_HOST.fullmatch(hop.strip()) for hop in spec.split(","))


def jump_problem(spec: str) -> str | None:
    """What makes a ProxyJump value from outside the SSH config unusable: its form, or a hop's names."""
    if problem := control_problem(spec):
        return problem
    if not is_jump_spec(spec):
        return "is not [user@]host[:port][,...]"
    if spec.strip().lower() == "none":
        return None
    for hop in spec.split(","):
        match = _JUMP_HOST.fullmatch(hop.strip())
        assert match is not None  # is_jump_spec
        host = match["host"].strip("[]")
        if problem := host_problem(host):
            return f"has the host {host!r}, which {problem}"
        if match["user"] is not None and (problem := user_problem(match["user"])):
            return f"has the user {match['user']!r}, which {problem}"
    return None


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


def _check_names(host: str, user: str | None, port: int | None, hop_of: str) -> None:
    """The names a config lookup starts from: its tokens (%h, %r, %p) may put them into a shell command."""
    if problem := host_problem(host):
        raise ConfigError(f"SSH host {host!r}{hop_of} {problem}", hint=NAMES_HINT)
    if user is not None and (problem := user_problem(user)):
        raise ConfigError(f"SSH host '{host}'{hop_of}: user {user!r} {problem}", hint=NAMES_HINT)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"SSH host '{host}'{hop_of}: port {port} is not between 1 and 65535")


def _paths(value: str) -> tuple[Path, ...]:
    """A known-hosts option's files; ``none`` is no file."""
    return () if value.strip().lower() == "none" else tuple(Path(path).expanduser() for path in value.split())


def _config_port(options: paramiko.SSHConfigDict, config_path: Path, host: str) -> int:
    try:
        port = int(options.get("port", 22))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ConfigError(f"{config_path}: host '{host}' has Port '{options['port']}', not a port number")
    return port
