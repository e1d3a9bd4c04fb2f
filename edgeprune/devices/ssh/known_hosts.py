"""Host keys checked as OpenSSH checks them (hostfile.c, sshconnect.c ``check_host_key``).

A host's keys are the lines for its name (``host``, or ``[host]:port`` off port 22) in every UserKnownHostsFile
and GlobalKnownHostsFile: plain names, patterns with ``*``, ``?`` and ``!`` (comma-separated, case-insensitive,
``[`` and ``]`` are plain characters), and hashed names (``|1|salt|hash``). Lines marked ``@cert-authority``
vouch for host certificates, never for a plain host key; a key marked ``@revoked`` is refused always. The key a
host presents is then:

* KNOWN: equal to one of its keys (a host off port 22 without keys of its own may use those of ``host``);
* REVOKED: marked ``@revoked`` for it, whatever else is recorded;
* CHANGED: it has keys, none of them this one (also when they are of another type): always refused;
* NEW: it has none: refused unless new keys are accepted, then recorded in the first UserKnownHostsFile.

One deviation, to be safe: a line for the host whose key paramiko cannot read counts as a different key, where
OpenSSH may read it or skip it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import paramiko

from ...errors import ConfigError, HostKeyError
from .target import SSHTarget

log = logging.getLogger(__name__)

CERT_AUTHORITY = "@cert-authority"
REVOKED = "@revoked"
# OpenSSH never records a key under a name with these (sshconnect.c): they would read as a pattern or hash.
_UNRECORDABLE = set("@?*#[]|'\"\\")


class Verdict(enum.Enum):
    KNOWN = "known"
    NEW = "new"
    CHANGED = "changed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Entry:
    """A known_hosts line that names the host."""

    path: Path
    line: int
    marker: str | None  # CERT_AUTHORITY, REVOKED or None for a host key
    key: paramiko.PKey | None  # None: a key type or encoding paramiko cannot read

    @property
    def where(self) -> str:
        return f"{self.path} line {self.line}"


class KnownHosts:
    """The known_hosts files of one host: looked up fresh on each connect; new keys go to the first user file."""

    def __init__(self, user_files: tuple[Path, ...], global_files: tuple[Path, ...] = (), *,
                 hash_names: bool = False) -> None:
        self.user_files = user_files
        self.global_files = global_files
        self.hash_names = hash_names

    @classmethod
    def of(cls, target: SSHTarget) -> KnownHosts:
        return cls(target.user_known_hosts, target.global_known_hosts, hash_names=target.hash_known_hosts)

    @property
    def files(self) -> tuple[Path, ...]:
        return (*self.user_files, *self.global_files)

    def entries_for(self, name: str) -> list[Entry]:
        """Every line for ``name`` (``host`` or ``[host]:port``), user files first, in file order."""
        name = name.lower()
        return [entry for path in self.files for entry in _entries(path, name)]

    def check(self, target: SSHTarget, key: paramiko.PKey) -> tuple[Verdict, list[Entry]]:
        """The verdict on ``key`` presented by ``target``, with the lines it rests on (REVOKED, CHANGED)."""
        verdict, entries = _verdict(self.entries_for(target.known_hosts_name), key)
        if verdict is Verdict.NEW and target.port != 22:
            # As ssh does ("checking without port identifier"): the key of the bare host name also vouches.
            if _verdict(self.entries_for(target.hostname), key)[0] is Verdict.KNOWN:
                return Verdict.KNOWN, []
        return verdict, entries

    def key_types(self, target: SSHTarget) -> set[str]:
        """The types of the host keys recorded for ``target``, which the handshake should ask for first."""
        entries = self.entries_for(target.known_hosts_name) or self.entries_for(target.hostname)
        return {entry.key.get_name() for entry in entries if entry.marker is None and entry.key is not None}

    def record(self, name: str, key: paramiko.PKey) -> Path:
        """Append ``key`` for ``name`` to the first user file the way ``ssh`` does; that file."""
        path = self.user_files[0]
        recorded_name = paramiko.HostKeys.hash_host(name) if self.hash_names else name
        line = f"{recorded_name} {key.get_name()} {key.get_base64()}\n"
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if path.is_file() and path.read_bytes()[-1:] not in (b"", b"\n"):
                line = "\n" + line  # a hand-edited file may lack its final newline
            # One O_APPEND write, so concurrent edgeprune runs cannot interleave half lines.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot record the host key of {name}: {exc.strerror}") from exc
        return path


def _verdict(entries: list[Entry], key: paramiko.PKey) -> tuple[Verdict, list[Entry]]:
    if revoked := [entry for entry in entries if entry.marker == REVOKED and _same(entry.key, key)]:
        return Verdict.REVOKED, revoked
    host_keys = [entry for entry in entries if entry.marker is None]
    if any(_same(entry.key, key) for entry in host_keys):
        return Verdict.KNOWN, []
    return (Verdict.CHANGED, host_keys) if host_keys else (Verdict.NEW, [])


def _same(recorded: paramiko.PKey | None, key: paramiko.PKey) -> bool:
    return recorded is not None and recorded.asbytes() == key.asbytes()


def _entries(path: Path, name: str) -> list[Entry]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read known hosts: {exc.strerror}") from exc
    found = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = None
        if fields[0].startswith("@"):
            marker = fields.pop(0)
            if marker not in (CERT_AUTHORITY, REVOKED):
                continue  # OpenSSH skips lines with markers it does not know
        if len(fields) < 3 or not _names_match(fields[0], name):
            continue
        found.append(Entry(path, number, marker, _public_key(fields[1], fields[2])))
    return found


def _names_match(names: str, name: str) -> bool:
    if names.startswith("|1|"):
        try:
            return paramiko.HostKeys.hash_host(name, names) == names
        except (binascii.Error, AssertionError):  # a malformed salt (hash_host asserts its length)
            return False
    matched = False
    for pattern in names.lower().split(","):
        negated = pattern.startswith("!")
        if _glob_matches(pattern[1:] if negated else pattern, name):
            if negated:
                return False  # a negated pattern that matches rules the line out
            matched = True
    return matched


def _glob_matches(pattern: str, name: str) -> bool:
    """OpenSSH's match_pattern: ``*`` any run, ``?`` any one character, everything else literally."""
    pattern = re.sub(r"\*+", "*", pattern)
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def _public_key(key_type: str, data: str) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, paramiko.SSHException, paramiko.UnknownKeyType):
        return None


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko calls this for every host key (edgeprune gives its client no keys of its own): the verdict above,
    and for a new key the recording, or the refusal with the fix."""

    def __init__(self, device: str, target: SSHTarget, known_hosts: KnownHosts) -> None:
        self._device = device
        self._target = target
        self._known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        name = self._target.known_hosts_name
        verdict, entries = self._known_hosts.check(self._target, key)
        if verdict is Verdict.KNOWN:
            return
        if verdict is Verdict.REVOKED:
            raise HostKeyError(self._device, f"the host key of {name} ({describe_key(key)}) is REVOKED in "
                                             f"{', '.join(entry.where for entry in entries)}",
                               hint="a revoked key may be stolen: refused whatever else is recorded")
        if verdict is Verdict.CHANGED:
            raise _changed(self._device, name, key, entries)
        cannot_record = self._cannot_record()
        if self._target.accept_new_host_key and cannot_record is None:
            path = self._known_hosts.record(name, key)
            if path.resolve() == Path(os.devnull):
                # A common CI shortcut (UserKnownHostsFile /dev/null): every key is new, so none is ever checked.
                log.warning("device '%s': accepted the host key of %s (%s) without recording it: its known_hosts is "
                            "%s, so this host's identity is never checked", self._device, name, describe_key(key),
                            os.devnull)
            return
        raise HostKeyError(
            self._device,
            f"unknown host key for {name} ({describe_key(key)}), not in "
            f"{', '.join(str(path) for path in self._known_hosts.files) or 'any known_hosts file (none is set)'}"
            + (f", and it cannot be recorded: {cannot_record}" if self._target.accept_new_host_key else ""),
            hint=f"check the fingerprint, then {self._how_to_trust()}",
        )

    def _cannot_record(self) -> str | None:
        if not self._known_hosts.user_files:
            return "UserKnownHostsFile is none"
        if _UNRECORDABLE & set(self._target.hostname):
            return f"host name '{self._target.hostname}' would not read back as a name"
        return None

    def _how_to_trust(self) -> str:
        target = self._target
        port_option = "" if target.port == 22 else f"-p {target.port} "
        if target.jump or target.proxy_command:  # ssh-keyscan cannot reach it from here; ssh can
            fetch = f"`ssh {port_option}{target.user}@{target.hostname}` once (with its ProxyJump/ProxyCommand)"
        elif self._known_hosts.user_files:
            fetch = f"`ssh-keyscan {port_option}{target.hostname} >> {self._known_hosts.user_files[0]}`"
        else:
            return "add its key to a GlobalKnownHostsFile"
        return f"pass --accept-new-host-key or run {fetch}"


def _changed(device: str, name: str, offered: paramiko.PKey, recorded: list[Entry]) -> HostKeyError:
    first = recorded[0].path
    return HostKeyError(
        device,
        f"the host key of {name} has CHANGED (now {describe_key(offered)}); "
        f"{', '.join(entry.where for entry in recorded)} records a different key",
        hint=f"if the host was reinstalled, run `ssh-keygen -R '{name}' -f {first}` and connect again; "
        "otherwise the connection may be intercepted",
    )
