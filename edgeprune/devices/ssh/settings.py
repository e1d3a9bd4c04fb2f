"""How to use a board over SSH, apart from its address: one value the inventory builds and SSH devices take.

A board farm's device passes the same value on to the board of whichever place it acquires, whose address
(host, user, port) only the place knows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_WORKDIR = "~/.cache/edgeprune"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CONNECT_RETRIES = 2
DEFAULT_RETRY_BACKOFF = 0.5


@dataclass(frozen=True)
class SSHSettings:
    """Settings of an SSH-reached device; what is left None here comes from ``~/.ssh/config`` or OpenSSH's
    defaults (see :func:`~edgeprune.devices.ssh.target.resolve_target`)."""

    python: str = "python3"
    workdir: str | None = None  # on the board; None: DEFAULT_WORKDIR. ``~`` and relative paths start at home
    threads: int | None = None
    tags: tuple[str, ...] = ()
    identity_file: str | os.PathLike[str] | None = None
    proxy_jump: str | None = None  # a ProxyJump value that replaces the config's ("none": connect directly)
    known_hosts: str | os.PathLike[str] | None = None  # the one UserKnownHostsFile, for every host on the way
    ssh_config: str | os.PathLike[str] | None = None  # default ~/.ssh/config
    accept_new_host_key: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    connect_retries: int = DEFAULT_CONNECT_RETRIES
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
