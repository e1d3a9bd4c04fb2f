"""``~/.ssh/config`` as OpenSSH reads it: ``Include`` followed, files others may write refused, and explicit
values (an inventory's ``user``/``port``) seen by the config's ``Match`` and ``%r``/``%p`` as with ``ssh -l``/``-p``.

paramiko parses and matches the text, but knows no ``Include``: includes are expanded here into the text it
parses. OpenSSH applies an ``Include`` inside a ``Host``/``Match`` block only within that block, also to the
included file's own blocks, and the including block goes on after it; the expansion says so to paramiko by
turning the included blocks into ``Match`` blocks that carry the enclosing block's criteria too, and by
repeating the enclosing block's header after them. Values from the inventory or a farm are never written into
that text: a newline in one would start a ``Match exec`` of its own.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shlex
import stat
from pathlib import Path
from typing import Any

import paramiko

from ...errors import ConfigError
from ...parsing import ParseError, decode_utf8

MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
_KEYWORD = re.compile(r"\s*(\w+)(?:\s*=\s*|\s+)(.*)")  # paramiko's own split of a line into keyword and value


def lookup_host(path: Path, host: str, *, user: str | None, port: int | None) -> paramiko.SSHConfigDict:
    """The options for ``host`` from the config file ``path`` (a missing file has none); ``user`` and ``port``
    come first, as given on ssh's command line."""
    explicit = {key: str(value) for key, value in (("user", user), ("port", port)) if value is not None}
    config = _ExplicitFirst(explicit)
    text = expanded_text(path) if path.is_file() else ""
    try:
        config.parse(io.StringIO(text))
        return config.lookup(host)
    except (OSError, ValueError, paramiko.SSHException) as exc:  # a bad line, a Match exec that cannot start
        raise ConfigError(f"{path}: cannot read SSH config for host '{host}': {exc}") from exc


def expanded_text(path: Path) -> str:
    """The config text with every ``Include`` replaced by the files it names."""
    lines: list[str] = []
    _expand(path, [], 0, lines)
    return "\n".join(lines) + "\n"


class _ExplicitFirst(paramiko.SSHConfig):
    """paramiko's lookup, starting from the explicit values instead of nothing: the first value found wins in
    SSH configs, so the files' values for them are ignored, and tokens and ``Match user`` see them."""

    def __init__(self, explicit: dict[str, str]) -> None:
        super().__init__()
        self._explicit = explicit

    def _lookup(self, hostname: str, options: Any = None, canonical: bool = False, final: bool = False) -> Any:
        if options is None:  # the first of lookup()'s passes
            options = paramiko.SSHConfigDict(self._explicit)
        return super()._lookup(hostname, options, canonical, final)


def _expand(path: Path, enclosing: list[str], depth: int, out: list[str]) -> bool:
    """Append ``path``'s lines to ``out`` within the block whose ``Match`` criteria are ``enclosing`` ([] for the
    whole config); whether the file ends in another block (the caller's must then be opened again)."""
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: SSH config Includes nest more than {MAX_INCLUDE_DEPTH} deep",
                          hint="an Include probably includes itself")
    criteria = enclosing  # the block the current line is in
    for number, line in enumerate(_read(path).splitlines(), 1):
        match = _KEYWORD.fullmatch(line.strip())
        keyword = match[1].lower() if match else ""
        if keyword not in ("host", "match", "include"):
            out.append(line)
            continue
        where = f"{path} line {number}"
        words = _split(match[2], where)
        if keyword == "include":
            if _include(words, criteria, depth, out, where):
                out.append(_header(criteria))
            continue
        if keyword == "host":
            criteria = [*enclosing, "originalhost", ",".join(words)]
        else:  # 'all' is implied by the enclosing criteria, and paramiko refuses it next to any other
            criteria = [*enclosing, *(word for word in words if word.lower() != "all")]
        out.append(_header(criteria) if enclosing else line)
    return criteria != enclosing


def _include(arguments: list[str], criteria: list[str], depth: int, out: list[str], where: str) -> bool:
    """Expand ``Include`` arguments as OpenSSH does: ``~`` expanded, relative paths in ``~/.ssh``, globs in
    sorted order, no match no error."""
    opened = False
    for argument in arguments:
        pattern = Path(argument).expanduser()
        if not pattern.is_absolute():
            pattern = Path("~/.ssh").expanduser() / pattern
        for included in sorted(glob.glob(str(pattern))):
            try:
                opened |= _expand(Path(included), criteria, depth + 1, out)
            except FileNotFoundError:  # gone since the glob
                continue
            except IsADirectoryError:
                raise ConfigError(f"{where}: Include names the folder {included}",
                                  hint="include the files in it, e.g. with a '/*' glob") from None
    return opened


def _header(criteria: list[str]) -> str:
    return "Match " + shlex.join(criteria) if criteria else "Host *"


def _split(value: str, where: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as exc:  # e.g. an unclosed quote
        raise ConfigError(f"{where}: {exc}") from None


def _read(path: Path) -> str:
    """The file's text, if only its owner (or root) can write it: OpenSSH also refuses files others can edit, since
    a ProxyCommand or Match exec in them would run as this user."""
    try:
        with path.open("rb") as config:
            status = os.fstat(config.fileno())
            if stat.S_ISDIR(status.st_mode):
                raise IsADirectoryError(path)
            if status.st_uid not in (0, os.getuid()) or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise ConfigError(f"{path}: bad owner or permissions: others may write this SSH config",
                                  hint=f"chmod go-w {path}, and own it yourself")
            return decode_utf8(config.read())
    except (FileNotFoundError, IsADirectoryError):
        raise
    except ParseError as exc:
        raise ConfigError(f"{path}: cannot read SSH config: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read SSH config: {exc.strerror}") from exc
