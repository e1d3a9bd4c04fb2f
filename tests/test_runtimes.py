"""Boards whose runtime is tflite-runtime or full TensorFlow: a loopback SSH board whose python is a venv that
``edgeprune devices setup --package ...`` made with that runtime alone, benched beside this machine's LiteRT."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.cli import main
from fixtures.models import MODELS
from fixtures.sshd import ALIAS

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.runtimes]

EVAL = MODELS / "digits_eval.npz"
# Kept between runs (a TensorFlow venv is 2 GB); setup is idempotent, so a kept venv is only checked again.
VENVS = Path(os.environ.get("EDGEPRUNE_RUNTIME_VENVS") or Path.home() / ".cache" / "edgeprune" / "runtime-venvs")
PACKAGES = {"tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}
BOARD = "board"


def board_inventory(folder: Path, python: str) -> None:
    (folder / "edgeprune.toml").write_text(
        f'[devices.{BOARD}]\nhost = "{ALIAS}"\npython = "{python}"\nworkdir = "{folder / "board workdir"}"\n'
        f'[devices.local]\nworkdir = "{folder / "local workdir"}"\n')


@pytest.fixture(params=sorted(PACKAGES))
def runtime_board(request, isolated_cwd, ssh_home, capsys) -> tuple[str, str]:
    """(runtime, what ``devices setup`` printed) for the loopback board once setup gave it that runtime."""
    runtime = request.param
    venv = VENVS / PACKAGES[runtime]
    board_inventory(isolated_cwd, "python3")
    assert main(["devices", "setup", BOARD, "--package", PACKAGES[runtime], "--venv", str(venv)]) == 0
    setup_output = capsys.readouterr().out
    board_inventory(isolated_cwd, str(venv / "bin" / "python"))
    return runtime, setup_output


def test_devices_setup_gives_the_board_that_runtime_and_its_numpy(capsys, runtime_board):
    runtime, setup_output = runtime_board
    assert re.search(rf"runtime\s+{runtime} \d+\.\d+", setup_output), setup_output
    assert re.search(rf"runtimes installed\s+{runtime}\n", setup_output), setup_output
    assert main(["devices", "check", BOARD, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runtime"]["name"] == runtime and info["runtimes_installed"] == [runtime]
    assert info["xnnpack_available"] is True
    if runtime == "tflite_runtime":  # built against numpy 1.x: setup pinned it
        assert info["runtime"]["version"] == "2.14.0" and info["numpy"].startswith("1."), info
    else:
        assert info["runtime"]["version"].startswith("2.21"), info


def test_bench_on_the_board_agrees_with_litert_here(capsys, runtime_board, digits_export):
    runtime, _ = runtime_board
    code = main(["bench", str(digits_export), "--device", BOARD, "--device", "local", "--data", str(EVAL),
                 "--runs", "6", "--rounds", "2", "--warmup", "1", "-o", "results.json"])
    captured = capsys.readouterr()
    document = json.loads(Path("results.json").read_text())
    runs = {(run["device"], run["variant"]): run for run in document["runs"]}
    measured = {variant for (device, variant), run in runs.items() if device == BOARD and run["status"] == "ok"}
    for variant in measured:
        board, host = runs[BOARD, variant], runs["local", variant]
        assert board["runtime"]["name"] == runtime and host["runtime"]["name"] == "ai_edge_litert"
        # Same file, same inputs, same kernels' arithmetic: the same predictions.
        assert board["accuracy"]["top1"] == host["accuracy"]["top1"], variant
        assert board["accuracy"]["n"] == 450
    # The runtimes differ for this model, so every device cell says which one ran.
    version = runs[BOARD, "fp32"]["runtime"]["version"]
    assert f"{BOARD} ({runtime} {version})" in captured.out and "local (ai_edge_litert " in captured.out
    verdict = next(verdict for verdict in document["sparse_inference"]
                   if verdict["device"] == BOARD and verdict["variant"] == "fp32-sparse")
    assert verdict["applied"] is False and verdict["speedup"]["ratio"] > 0 and verdict["arch"] == "x86_64"
    assert main(["report", "results.json", "-o", "report.html", "--markdown", "report.md"]) == 0
    for report in ("report.html", "report.md"):
        assert f"{BOARD} ({runtime} {version})" in Path(report).read_text(), report
    if runtime == "tflite_runtime":
        # TF 2.21's converter writes FULLY_CONNECTED v12 for dynamic-range int8; tflite-runtime 2.14 stops at v10.
        assert code == 1
        assert measured == {"fp32", "fp32-sparse", "fp16", "fp16-sparse", "int8"}
        failed = runs[BOARD, "int8-dynamic"]
        assert failed["status"] == "failed"
        assert "tflite_runtime 2.14.0 cannot load int8-dynamic: it has no FULLY_CONNECTED v12" in failed["error"]
        assert f"install ai-edge-litert on the board (edgeprune devices setup {BOARD})" in failed["error"]
        assert "ship a variant it loads (fp32, fp32-sparse, fp16, fp16-sparse, int8)" in failed["error"]
        assert f"[{BOARD}] digits_cnn/int8-dynamic: not measured: tflite_runtime 2.14.0" in captured.err
        assert "tflite-runtime's x86 int8 kernels are an order of magnitude slower than LiteRT's" in captured.out
    else:
        assert code == 0 and len(measured) == 6


def test_devices_check_says_up_front_which_variants_the_runtime_loads(capsys, runtime_board, digits_export):
    runtime, _ = runtime_board
    code = main(["devices", "check", BOARD, "--model", str(digits_export), "--json"])
    loads = {load["variant"]: load for load in json.loads(capsys.readouterr().out)["variants"]}
    assert len(loads) == 6
    if runtime == "tflite_runtime":
        assert code == 1
        assert [variant for variant, load in loads.items() if not load["loads"]] == ["int8-dynamic"]
        assert "FULLY_CONNECTED v12" in loads["int8-dynamic"]["reason"]
    else:
        assert code == 0 and all(load["loads"] and load["reason"] is None for load in loads.values())


def test_a_forced_runtime_the_board_lacks_fails_with_the_fix(capsys, runtime_board, tiny_tflite):
    runtime, _ = runtime_board
    other = "tensorflow" if runtime == "tflite_runtime" else "tflite_runtime"
    code = main(["bench", str(tiny_tflite), "--device", BOARD, "--runtime", other, "--runs", "2", "-o", "r.json"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"runtime '{other}' is not installed for {VENVS / PACKAGES[runtime] / 'bin' / 'python'}" in err
    assert f"install it with 'edgeprune devices setup {BOARD} --package {PACKAGES[other]}', or leave --runtime out" in err


@pytest.fixture(scope="module")
def tflite_runtime_beside_numpy_2() -> Path:
    """A python as a board has it after ``pip install tflite-runtime`` alone: pip picks numpy 2."""
    venv = VENVS / "tflite-runtime-numpy-2"
    python = venv / "bin" / "python"
    installed = python.exists() and not subprocess.run(
        [python, "-c", "import importlib.util as u, numpy; assert u.find_spec('tflite_runtime') and "
                       "numpy.__version__ >= '2'"], capture_output=True).returncode
    if not installed:
        subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True)
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                        "tflite-runtime==2.14.0", "numpy>=2"], check=True, capture_output=True)
    return python


def test_tflite_runtime_beside_numpy_2_is_named_with_the_fix(capsys, isolated_cwd, tflite_runtime_beside_numpy_2):
    (isolated_cwd / "edgeprune.toml").write_text(f'[devices.local]\npython = "{tflite_runtime_beside_numpy_2}"\n')
    assert main(["devices", "check", "local", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runtime"] is None and info["runtimes_installed"] == ["tflite_runtime"]
    assert info["runtime_error"].startswith(f"tflite_runtime is installed for {tflite_runtime_beside_numpy_2} but "
                                            "does not work: ")
    assert info["runtime_error"].endswith(f"it was built against numpy 1.x and this python has numpy "
                                          f"{info['numpy']}: install numpy<2 beside it")


def test_runtime_forces_one_of_several_installed(isolated_cwd, tiny_tflite):
    """This machine's python has ai-edge-litert and TensorFlow: auto takes LiteRT, --runtime the one named."""
    (isolated_cwd / "edgeprune.toml").write_text(f'[devices.local]\nworkdir = "{isolated_cwd / "workdir"}"\n')
    for forced, expected in (("auto", "ai_edge_litert"), ("tensorflow", "tensorflow")):
        assert main(["bench", str(tiny_tflite), "--runtime", forced, "--runs", "3", "-o", f"{forced}.json"]) == 0
        run = json.loads(Path(f"{forced}.json").read_text())["runs"][0]
        assert run["runtime"]["name"] == expected and run["status"] == "ok"
