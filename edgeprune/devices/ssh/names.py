"""Which host and user names from outside the user's own ``~/.ssh/config`` may be used to reach a board.

An inventory's ``host``/``user``/``proxy_jump`` and a labgrid exporter's ``NetworkService`` are what ``ssh``'s
command line is to OpenSSH: the config's ``%h``/``%r`` tokens expand them into a ``ProxyCommand`` or a
``Match exec`` that a shell runs. OpenSSH (9.6 and later, ``ssh_valid_hostname``/``ssh_valid_ruser`` in
readconf.c) refuses such names when they hold shell metacharacters; these checks are the same rules, and also
refuse whitespace in user names (a name that spans lines or words is never a login). Each returns None for a
usable name, else what is wrong with it, to be put after the name in an error.
"""

from __future__ import annotations

import unicodedata

# OpenSSH's lists: the hostname one also has '$', '\' and ',' (ProxyJump's hop separator).
HOST_METACHARACTERS = "'`\"$\\;&<>|(){},"
USER_METACHARACTERS = "'`\";&<>|(){}"
# The hint of every error about such a name.
NAMES_HINT = "OpenSSH refuses such names too: ~/.ssh/config may put them into a shell command (%h, %r)"


def host_problem(name: str) -> str | None:
    """What makes ``name`` unusable as a host name or ~/.ssh/config alias, if anything."""
    return _name_problem(name, HOST_METACHARACTERS)


def user_problem(name: str) -> str | None:
    """What makes ``name`` unusable as a login name, if anything (``$`` and ``\\`` are allowed, as by OpenSSH,
    for names like ``machine$`` or ``DOMAIN\\user``, but not a ``\\`` at the end)."""
    if problem := _name_problem(name, USER_METACHARACTERS):
        return problem
    if name.endswith("\\"):
        return "ends with '\\'"
    return None


def control_problem(text: str) -> str | None:
    """For values that are no names (paths, addresses of services): only control characters are refused."""
    for char in text:
        if unicodedata.category(char) == "Cc":
            return f"contains the control character {char!r}"
    return None


def _name_problem(name: str, metacharacters: str) -> str | None:
    if not name:
        return "is empty"
    if problem := control_problem(name):
        return problem
    if found := sorted({char for char in name if char in metacharacters}):
        return f"contains the shell metacharacter{'s' if len(found) > 1 else ''} {' '.join(found)}"
    if any(char.isspace() for char in name):
        return "contains whitespace"
    if name.startswith("-"):
        return "starts with '-' (ssh would take it for an option)"
    return None
