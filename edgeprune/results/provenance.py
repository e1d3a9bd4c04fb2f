"""Where a bench came from: the git commit and branch of the working directory, the CI run, the host.

Git's files are read, git is not run: a repository's config can make git run programs (``core.fsmonitor``), and a
bench in a checkout someone else prepared must not. Every value is text from outside (a ref file, a CI variable):
one line, bounded, before it reaches a results file or a database.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Mapping

from .. import __version__
from ..text import printable

MAX_VALUE = 200
MAX_GIT_FILE = 1 << 20  # packed-refs of a large repository; anything larger is not read
COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256
CI_VARIABLES = {"ci_commit": "GITHUB_SHA", "ci_ref": "GITHUB_REF_NAME", "ci_run_id": "GITHUB_RUN_ID"}


def collect_provenance(directory: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str | None]:
    commit, branch = git_head(directory)
    provenance: dict[str, str | None] = {"git_commit": commit, "git_branch": branch}
    provenance.update({key: bounded(environ.get(name)) for key, name in CI_VARIABLES.items()})
    provenance["ci_run_url"] = github_run_url(environ)
    provenance["host"] = bounded(socket.gethostname())
    provenance["edgeprune_version"] = __version__
    return provenance


def github_run_url(environ: Mapping[str, str]) -> str | None:
    parts = [environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    return bounded(f"{parts[0]}/{parts[1]}/actions/runs/{parts[2]}")


def bounded(value: str | None) -> str | None:
    return printable(value, MAX_VALUE) if value else None


def git_head(directory: Path) -> tuple[str | None, str | None]:
    """The commit checked out in ``directory``'s repository and its branch (None when detached, as CI checks out)."""
    git_dir = find_git_dir(directory.resolve())
    if git_dir is None:
        return None, None
    head = read_small(git_dir / "HEAD")
    if head is None:
        return None, None
    head = head.strip()
    if COMMIT.fullmatch(head):
        return head, None
    if not head.startswith("ref: refs/"):
        return None, None
    ref = head[len("ref: "):]
    branch = bounded(ref.removeprefix("refs/heads/"))
    return resolve_ref(git_dir, ref), branch


def find_git_dir(directory: Path) -> Path | None:
    """The ``.git`` folder above ``directory``, following a worktree's or submodule's ``.git`` file."""
    for folder in (directory, *directory.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            pointer = read_small(dot_git) or ""
            if pointer.startswith("gitdir: "):
                target = Path(pointer[len("gitdir: "):].strip())
                return target if target.is_absolute() else folder / target
            return None
    return None


def resolve_ref(git_dir: Path, ref: str) -> str | None:
    """A branch's commit: its loose ref file, else its line in packed-refs (in the common folder of a worktree)."""
    if ".." in Path(ref).parts:
        return None
    common = git_dir
    if (pointer := read_small(git_dir / "commondir")) is not None:
        common = (git_dir / pointer.strip()).resolve()
    for folder in dict.fromkeys((git_dir, common)):
        loose = read_small(folder / ref)
        if loose is not None and COMMIT.fullmatch(loose.strip()):
            return loose.strip()
    for line in (read_small(common / "packed-refs") or "").splitlines():
        commit, _, name = line.partition(" ")
        if name == ref and COMMIT.fullmatch(commit):
            return commit
    return None


def read_small(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_GIT_FILE + 1)
    except OSError:
        return None
    return data.decode("utf-8", "replace") if len(data) <= MAX_GIT_FILE else None
