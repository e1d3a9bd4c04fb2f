"""What a user installs: a wheel built from the sdist (as PyPI builds and pip installs it) carries the board
runner, the document schemas and the history's migrations as plain files."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgeprune.board.runner import runner_script

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ["edgeprune/device_scripts/edgeprune_runner.py", "edgeprune/results/schemas/results.schema.json",
           "edgeprune/results/schemas/manifest.schema.json", "edgeprune/history/migrations/env.py",
           *(str(path.relative_to(REPO)) for path in (REPO / "edgeprune/history/migrations/versions").glob("*.py"))]


@pytest.mark.slow
def test_a_wheel_built_from_the_sdist_ships_the_runner_the_schemas_and_the_migrations(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "dist"), str(REPO)],
                   check=True, capture_output=True)
    [sdist] = (tmp_path / "dist").glob("edgeprune-*.tar.gz")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheels"),
                    str(sdist)], check=True, capture_output=True)
    [wheel] = (tmp_path / "wheels").glob("edgeprune-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(SHIPPED) <= names, sorted(names)
        assert archive.read(SHIPPED[0]) == runner_script().read_bytes()


def test_the_runner_is_a_plain_file_that_imports_no_edgeprune():
    """It runs on the board with the standard library, numpy and a TFLite runtime only."""
    runner = runner_script()
    assert not runner.is_symlink() and not runner.parent.is_symlink()
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(runner.read_text()))
                if isinstance(node, ast.Import) for alias in node.names}
    relative = [node.lineno for node in ast.walk(ast.parse(runner.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level]
    assert relative == [], f"relative imports (into edgeprune) at lines {relative}"
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(runner.read_text()))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "edgeprune" not in imported
    assert imported <= set(sys.stdlib_module_names) | {"numpy", "ai_edge_litert", "tflite_runtime", "tensorflow"}
