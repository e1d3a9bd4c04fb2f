"""The GitHub Actions example in docs/ is what users copy: every edgeprune command in it must parse with this
edgeprune's CLI (no renamed or missing flag), and it must never install edgeprune by bare name from PyPI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from edgeprune.cli import build_parser

WORKFLOW = Path(__file__).parent.parent / "docs" / "github-actions.yml"


def run_scripts() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def edgeprune_commands() -> list[list[str]]:
    """Each ``edgeprune ...`` command of the run scripts, at a line's start or in a ``$(...)``, continuation lines
    joined, shell tails cut off."""
    commands = []
    for script in run_scripts():
        for line in script.replace("\\\n", " ").splitlines():
            line = re.sub(r"\$\{\{[^}]*\}\}", "X", line.strip())  # GitHub expressions
            for command in re.findall(r"(?:^|\$\()(edgeprune [^)]*)", line):
                words = shlex.split(command.split(" || ")[0])
                commands.append([re.sub(r"\$(\w+)", r"\1", word) for word in words[1:]])
    return commands


def test_the_example_runs_every_step_of_the_pipeline() -> None:
    assert [command[0] for command in edgeprune_commands()] == ["export", "devices", "bench", "history", "gate",
                                                                   "history", "report"]


@pytest.mark.parametrize("command", edgeprune_commands(), ids=lambda command: command[0])
def test_every_edgeprune_command_in_the_example_parses(command: list[str]) -> None:
    build_parser().parse_args(command)  # edgeprune's parser raises UsageError on an unknown or renamed flag


def test_edgeprune_is_installed_from_a_pinned_commit() -> None:
    installs = [line for script in run_scripts() for line in script.splitlines() if "pip install" in line]
    assert installs and all("git+" in line and "@${EDGEPRUNE_COMMIT}" in line for line in installs), installs
