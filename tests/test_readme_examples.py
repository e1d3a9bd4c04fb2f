"""Every example in the README runs as written on a fresh clone after the main job.

A copy of the tracked files (a fresh clone, sharing this checkout's .venv) runs ``scripts/main-job.sh``, then
every ``bash`` block of the README in order, each command line as a user would paste it; the ``toml`` policy
block is the ``policy.toml`` the gate example reads. Blocks that need a board say so in a comment above them
(``<!-- example needs a board: ... -->``): their commands must still parse with this CLI and their inventories
must load, and no unmarked block may name a board.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeprune.cli import build_parser
from edgeprune.devices.inventory import Inventory

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
NEEDS_BOARD = re.compile(r"<!-- example needs a board: (?P<what>[^>]+?) -->\s*$")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")
# Run by the fixture (the main job) or by CI itself (setup, the test suite): not again per block.
SETUP_COMMANDS = ("bash scripts/", "python3 -m venv")
BOARD_WORDS = re.compile(r"--device pi4|devices setup|\[devices\.pi4|labgrid_")


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # where the block starts in the README, for failure messages
    needs_board: str | None

    def command_lines(self) -> list[str]:
        """The commands of a shell block (``$ `` prompts of a transcript too), continuations joined, comments
        and output dropped."""
        commands = []
        text = self.text.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if self.lang != "bash":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = re.sub(r"\s+#.*$", "", line) if not line.startswith("#") else ""
            if line:
                commands.append(line)
        return commands


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        marker = NEEDS_BOARD.match(lines[index - 1]) if index else None
        blocks.append(Block(opening["lang"], "\n".join(lines[index + 1:end]), index + 1,
                            marker["what"] if marker else None))
        index = end + 1
    return blocks


def runnable_commands() -> list[tuple[Block, str]]:
    return [(block, command) for block in readme_blocks() if block.lang == "bash" and not block.needs_board
            for command in block.command_lines() if not command.startswith(SETUP_COMMANDS)]


@pytest.fixture(scope="module")
def after_main_job(tmp_path_factory) -> Path:
    """A fresh clone's files, with this checkout's .venv, after ``bash scripts/main-job.sh``."""
    clone = tmp_path_factory.mktemp("readme") / "edgeprune"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
        elif source.is_symlink():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).symlink_to(os.readlink(source))
    (clone / ".venv").symlink_to(REPO / ".venv")
    done = subprocess.run(["bash", "scripts/main-job.sh"], cwd=clone, env=shell_env(clone), capture_output=True,
                          text=True)
    assert done.returncode == 0, f"the main job failed:\n{done.stderr[-3000:]}"
    return clone


def shell_env(clone: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EDGEPRUNE_")}
    env.update(EDGEPRUNE_SETUP="none", PATH=f"{clone / '.venv' / 'bin'}:{env['PATH']}", HOME=str(clone / "home"),
               XDG_CACHE_HOME=str(clone / "cache"))
    env.pop("GITHUB_STEP_SUMMARY", None)
    return env


def test_every_readme_example_runs_after_the_main_job(after_main_job: Path) -> None:
    clone = after_main_job
    policies = [block for block in readme_blocks() if block.lang == "toml" and block.text.startswith("[defaults]")]
    assert len(policies) == 1, "the README has one policy example, the gate example's policy.toml"
    (clone / "policy.toml").write_text(policies[0].text + "\n", encoding="utf-8")
    commands = runnable_commands()
    assert [shlex.split(command)[1] for _, command in commands if command.startswith("edgeprune ")] == [
        "export", "compare", "inspect", "inspect", "bench", "devices", "sweep", "report", "prune", "history",
        "history", "history", "history", "gate"]
    for block, command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=clone, env=shell_env(clone), capture_output=True,
                              text=True)
        where = f"README line {block.line}: {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, where
        if " gate " in f" {command} ":
            # A budget may fail on a noisy machine; the example works when it reaches a verdict.
            assert done.returncode in (0, 1), where
            assert re.fullmatch(r"gate (passed: \d+ checks|FAILED: \d+ of \d+ checks failed)",
                                done.stdout.strip().splitlines()[-1]), where
            assert (clone / "gate.xml").is_file()
        else:
            assert done.returncode == 0, where


def test_examples_that_need_a_board_say_so_and_still_parse(tmp_path) -> None:
    marked = [block for block in readme_blocks() if block.needs_board]
    assert len(marked) == 5
    for block in readme_blocks():
        if not block.needs_board and block.lang in ("bash", "toml", ""):
            commands_and_config = "\n".join(block.command_lines()) if block.lang != "toml" else block.text
            assert not BOARD_WORDS.search(commands_and_config), f"README line {block.line} needs a board, unmarked"
    for block in marked:
        for command in block.command_lines():
            words = shlex.split(command)
            assert words[0] == "edgeprune", command
            build_parser().parse_args(words[1:])  # raises UsageError on an unknown or renamed flag
        if block.lang == "toml":
            inventory = tmp_path / f"inventory-{block.line}.toml"
            inventory.write_text(block.text + "\n", encoding="utf-8")
            assert Inventory.load(inventory).names()
