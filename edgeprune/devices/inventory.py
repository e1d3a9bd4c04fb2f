"""The device inventory: ``[devices.NAME]`` tables in ``edgeprune.toml``, plus ``local`` which always exists.

Example::

    [devices.pi4]
    host = "pi4"                   # a host name or a ~/.ssh/config alias
    user = "pi"                    # optional, like port and identity_file: ~/.ssh/config fills the rest
    proxy_jump = "bastion"         # optional, as OpenSSH's ProxyJump ("none": connect directly)
    threads = 4
    tags = ["arm64", "pi"]

    [devices.pi4-farm]             # a labgrid place instead of a host: any free one tagged board=pi4
    labgrid_tags = { board = "pi4" }
    labgrid_coordinator = "farm.lan:20408"   # default: $LG_COORDINATOR, then labgrid's 127.0.0.1:20408

    [devices.local]                # optional: only python, workdir, threads and tags
    threads = 2

The file is the explicit path if one is given, else ``$EDGEPRUNE_INVENTORY``, else ``./edgeprune.toml``; only
that last one may be missing (the inventory is then just ``local``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config_keys import toml_type_name, unknown_key_hint
from ..errors import ConfigError, UsageError
from ..parsing import ParseError, decode_utf8, parse_toml
from ..toml_lines import line_of
from .base import Device
from .labgrid.device import LabgridDevice
from .local import LocalDevice
from .ssh.device import SSHDevice
from .ssh.names import NAMES_HINT, control_problem, host_problem, user_problem
from .ssh.settings import SSHSettings
from .ssh.target import is_jump_spec, jump_problem

ENV_VAR = "EDGEPRUNE_INVENTORY"
DEFAULT_FILE = Path("edgeprune.toml")
LOCAL = "local"

# key -> (expected Python type, how to say it in a message)
_KEY_TYPES: dict[str, tuple[type, str]] = {
    "host": (str, "a string"),
    "user": (str, "a string"),
    "port": (int, "an integer"),
    "identity_file": (str, "a string"),
    "proxy_jump": (str, "a string"),
    "python": (str, "a string"),
    "workdir": (str, "a string"),
    "threads": (int, "an integer"),
    "tags": (list, "a list of strings"),
    "labgrid_place": (str, "a string"),
    "labgrid_tags": (dict, "a table of strings"),
    "labgrid_coordinator": (str, "a string"),
}
_LOCAL_KEYS = frozenset({"python", "workdir", "threads", "tags"})
_PLACE_KEYS = ("labgrid_place", "labgrid_tags")
_FROM_NETWORK_SERVICE = ("user", "port")  # a farm place's NetworkService says these
_LABGRID_TAG_KEY = re.compile(r"[a-z][a-z0-9_]+")  # what labgrid-client set-tags accepts
# The names that ~/.ssh/config's tokens may put into a shell command, checked as OpenSSH checks its command line
# (see ssh.names); the other keys that say how to reach a board only for control characters.
_NAME_CHECKS = {"host": host_problem, "user": user_problem, "proxy_jump": jump_problem}
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class DeviceSpec:
    """One device as the inventory describes it: a ``host``, a labgrid place (``labgrid_*``), or ``local``."""

    name: str
    host: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    proxy_jump: str | None = None
    python: str | None = None
    workdir: str | None = None
    threads: int | None = None
    tags: tuple[str, ...] = ()
    labgrid_place: str | None = None
    labgrid_tags: Mapping[str, str] = field(default_factory=dict)
    labgrid_coordinator: str | None = None

    @property
    def is_labgrid(self) -> bool:
        return self.labgrid_place is not None or bool(self.labgrid_tags)

    @property
    def is_local(self) -> bool:
        return self.host is None and not self.is_labgrid


class Inventory:
    """The known devices, in file order after ``local``."""

    def __init__(self, specs: Iterable[DeviceSpec], path: Path | None = None, text: str = "") -> None:
        self.path = path
        self._text = text  # for the line numbers in errors
        self._specs = {spec.name: spec for spec in specs}
        self._specs.setdefault(LOCAL, DeviceSpec(LOCAL))

    @classmethod
    def load(cls, path: Path | None = None) -> Inventory:
        """Read the inventory file chosen as the module docstring describes."""
        if path is not None:
            return cls._from_file(Path(path), missing=f"inventory file {path} does not exist")
        from_env = os.environ.get(ENV_VAR)
        if from_env:
            missing = f"inventory file {from_env} (from ${ENV_VAR}) does not exist"
            return cls._from_file(Path(from_env), missing=missing)
        if DEFAULT_FILE.is_file():
            return cls._from_file(DEFAULT_FILE, missing=f"inventory file {DEFAULT_FILE} vanished while loading")
        return cls(())

    @property
    def text(self) -> str:
        """The file as read ("" without one): what a sweep keys its benches on."""
        return self._text

    @classmethod
    def _from_file(cls, path: Path, *, missing: str) -> Inventory:
        try:
            text = decode_utf8(path.read_bytes())
        except FileNotFoundError:
            raise UsageError(missing, hint="pass an existing file or create it") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except ParseError as exc:
            raise ConfigError(f"{path}: {exc}", hint="save the inventory as UTF-8") from None
        return cls(_parse(text, path), path=path, text=text)

    def names(self) -> list[str]:
        return sorted(self._specs, key=lambda name: name != LOCAL)  # stable: local first, then file order

    def spec(self, name: str) -> DeviceSpec:
        try:
            return self._specs[name]
        except KeyError:
            where = f"a [devices.{name}] table to {self.path or DEFAULT_FILE}"
            raise UsageError(
                f"unknown device '{name}' (known: {', '.join(self.names())})", hint=f"check the name or add {where}"
            ) from None

    def open(self, name: str, *, accept_new_host_key: bool = False) -> Device:
        """A device object for ``name``; SSH devices connect (and farm devices claim a place) on first use."""
        spec = self.spec(name)
        self._check_reach(spec)
        identity_file = self._identity_path(spec.identity_file)
        if identity_file is not None and not identity_file.is_file():
            raise ConfigError(f"{self.path}: [devices.{name}] identity_file {identity_file} does not exist")
        if spec.is_local:
            return LocalDevice(
                spec.name, python=spec.python, workdir=spec.workdir, threads=spec.threads, tags=spec.tags
            )
        # What every SSH-reached device takes from the inventory, whether its address is fixed or a farm's.
        settings = SSHSettings(
            identity_file=identity_file,
            proxy_jump=spec.proxy_jump,
            python=spec.python or "python3",
            workdir=spec.workdir,
            threads=spec.threads,
            tags=spec.tags,
            accept_new_host_key=accept_new_host_key,
        )
        if spec.is_labgrid:
            return LabgridDevice(spec.name, place=spec.labgrid_place, place_tags=spec.labgrid_tags,
                                 coordinator=spec.labgrid_coordinator, ssh=settings)
        assert spec.host is not None
        return SSHDevice(spec.name, host=spec.host, user=spec.user, port=spec.port, settings=settings)

    def _check_reach(self, spec: DeviceSpec) -> None:
        """The keys that say how to reach the board: when the device is opened, so that one bad device fails
        alone and the others still run."""
        values = {"host": spec.host, "user": spec.user, "proxy_jump": spec.proxy_jump,
                  "identity_file": spec.identity_file, "labgrid_place": spec.labgrid_place,
                  "labgrid_coordinator": spec.labgrid_coordinator,
                  **{f"labgrid_tags.{tag}": value for tag, value in spec.labgrid_tags.items()}}
        for key, value in values.items():
            check = _NAME_CHECKS.get(key, control_problem)
            if value is not None and (problem := check(value)):
                table = _Table(self.path or DEFAULT_FILE, self._text, spec.name)
                raise table.error(key.split(".")[0], f"key '{key}' is {value!r}, which {problem}",
                                  hint=NAMES_HINT if key in _NAME_CHECKS else None)

    def _identity_path(self, identity_file: str | None) -> Path | None:
        """``~`` is expanded; a relative path is relative to the inventory file, wherever edgeprune runs."""
        if identity_file is None:
            return None
        path = Path(identity_file).expanduser()
        return path if path.is_absolute() or self.path is None else self.path.parent / path

    def select(self, names: Iterable[str] = (), tags: Iterable[str] = ()) -> list[str]:
        """The devices named (all when none are), keeping those that carry every one of ``tags``."""
        chosen = list(dict.fromkeys(names)) or self.names()
        for name in chosen:
            self.spec(name)  # unknown names fail here, listing the known ones
        wanted = set(tags)
        known_tags = {tag for spec in self._specs.values() for tag in spec.tags}
        if unknown := sorted(wanted - known_tags):
            raise UsageError(
                f"no device has tag {', '.join(repr(tag) for tag in unknown)} "
                f"(known tags: {', '.join(sorted(known_tags)) or 'none'})"
            )
        selected = [name for name in chosen if wanted <= set(self._specs[name].tags)]
        if not selected:
            raise UsageError(f"none of {', '.join(chosen)} has all of the tags {', '.join(sorted(wanted))}")
        return selected


def _parse(text: str, path: Path) -> list[DeviceSpec]:
    try:
        document = parse_toml(text)
    except ParseError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for key in document:
        if key != "devices":
            raise ConfigError(f"{path}: unknown top-level key '{key}'", hint="devices go in [devices.NAME] tables")
    devices = document.get("devices", {})
    if not isinstance(devices, dict):
        raise ConfigError(f"{path}: 'devices' must be a table of [devices.NAME] tables")
    return [_parse_device(name, table, path, text) for name, table in devices.items()]


@dataclass(frozen=True)
class _Table:
    """Where a [devices.NAME] table sits, to make errors that name the file, line, device and key."""

    path: Path
    text: str
    device: str

    def error(self, key: str | None, problem: str, hint: str | None = None) -> ConfigError:
        line = line_of(self.text, ("devices", self.device), key)
        return ConfigError(f"{self.path}{f':{line}' if line else ''}: [devices.{self.device}] {problem}", hint=hint)


def _parse_device(name: str, table: Any, path: Path, text: str) -> DeviceSpec:
    where = _Table(path, text, name)
    if not _NAME_PATTERN.fullmatch(name):
        raise where.error(None, "device names may use only letters, digits, '.', '_' and '-'")
    if not isinstance(table, dict):
        raise where.error(None, f"must be a table, not {toml_type_name(table)}")
    allowed = _LOCAL_KEYS if name == LOCAL else _KEY_TYPES.keys()
    for key, value in table.items():
        if key not in allowed:
            if name == LOCAL and key in _KEY_TYPES:
                raise where.error(key, f"key '{key}' does not apply: local runs on this machine")
            raise where.error(key, f"unknown key '{key}'", hint=unknown_key_hint(key, sorted(allowed)))
        expected, described = _KEY_TYPES[key]
        # bool is an int subclass in Python, but `port = true` is a mistake, not port 1.
        if not isinstance(value, expected) or isinstance(value, bool):
            raise where.error(key, f"key '{key}' must be {described}, not {toml_type_name(value)}")
    _check_values(table, where)
    if name != LOCAL:
        _check_host_or_place(table, where)
    return DeviceSpec(name=name, **{**table, "tags": tuple(table.get("tags", ()))})


def _check_host_or_place(table: Mapping[str, Any], where: _Table) -> None:
    """A device is a fixed host or a labgrid place, never both; the place's NetworkService says how to log in."""
    place_keys = [key for key in _PLACE_KEYS if key in table]
    if "host" in table and place_keys:
        raise where.error(place_keys[0], f"has both 'host' and '{place_keys[0]}'",
                          hint="a device is either a fixed host or a labgrid place: keep one")
    if not place_keys and "labgrid_coordinator" in table:
        raise where.error("labgrid_coordinator", "has 'labgrid_coordinator' but no 'labgrid_place' or 'labgrid_tags'",
                          hint="say which place (or which tags) to reserve")
    if not place_keys and "host" not in table:
        raise where.error(None, "has no 'host'", hint="set it to the board's host name or ~/.ssh/config alias, "
                                                      "or set labgrid_place or labgrid_tags for a board-farm place")
    if place_keys:
        for key in _FROM_NETWORK_SERVICE:
            if key in table:
                raise where.error(key, f"key '{key}' does not apply to a labgrid place",
                                  hint="the place's NetworkService resource gives the address, port and user")


def _check_values(table: Mapping[str, Any], where: _Table) -> None:
    """Ranges and emptiness, once the types are known to be right."""
    if "port" in table and not 1 <= table["port"] <= 65535:
        raise where.error("port", f"port {table['port']} is not between 1 and 65535")
    if "threads" in table and table["threads"] < 1:
        raise where.error("threads", f"threads must be at least 1, not {table['threads']}")
    if not all(isinstance(tag, str) and tag for tag in table.get("tags", [])):
        raise where.error("tags", "tags must be a list of non-empty strings")
    for key, (kind, _) in _KEY_TYPES.items():
        if kind is str and key in table and not table[key].strip():
            raise where.error(key, f"key '{key}' is empty")
    if not is_jump_spec(jumps := table.get("proxy_jump", "none")):
        raise where.error("proxy_jump", f"proxy_jump '{jumps}' is not [user@]host[:port]",
                          hint='e.g. proxy_jump = "bastion" or "admin@gw.lab:2222,inner" for several hops')
    if "labgrid_tags" in table and not table["labgrid_tags"]:
        raise where.error("labgrid_tags", "key 'labgrid_tags' is empty", hint='e.g. labgrid_tags = { board = "pi4" }')
    for tag, value in table.get("labgrid_tags", {}).items():
        if not _LABGRID_TAG_KEY.fullmatch(tag):
            raise where.error("labgrid_tags", f"labgrid tag '{tag}' is not a labgrid tag name",
                              hint="lower-case letters, digits and '_', starting with a letter, at least 2 characters")
        if not isinstance(value, str) or not value:
            raise where.error("labgrid_tags", f"labgrid tag '{tag}' must have a non-empty string value")
