"""`--device pi4` on a real aarch64 userland: ARM wheels, ARM XNNPACK kernels, and the sparse path x86 never takes."""

import json
import re
import uuid

import pytest

from edgeprune.cli import main
from fixtures.board import BOARD_ALIAS

pytestmark = [pytest.mark.emulated_board, pytest.mark.slow]


@pytest.fixture
def pi4(isolated_cwd, board_home, emulated_board) -> str:
    workdir = f"/root/edgeprune-tests-{uuid.uuid4().hex[:8]}"
    (isolated_cwd / "edgeprune.toml").write_text(
        f'[devices.pi4]\nhost = "{BOARD_ALIAS}"\npython = "{emulated_board["EDGEPRUNE_BOARD_PYTHON"]}"\n'
        f'workdir = "{workdir}"\ntags = ["arm64"]\n'
    )
    return "pi4"


def test_devices_check_reports_an_arm_board(capsys, pi4):
    assert main(["devices", "check", pi4, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "aarch64"
    assert info["runtime"]["name"] == "ai_edge_litert" and info["xnnpack_available"] is True
    assert "Cortex-A72" in info["cpu_model"]


def test_sparse_inference_engages_on_arm_and_not_on_x86(capsys, pi4, mobilenet_export):
    code = main(["bench", str(mobilenet_export / "fp32.tflite"), str(mobilenet_export / "fp32-sparse.tflite"),
                 "--device", pi4, "--device", "local", "--runs", "12", "--rounds", "2", "--warmup", "2",
                 "-o", "results.json"])
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(open("results.json").read())
    verdicts = {verdict["device"]: verdict for verdict in document["sparse_inference"]}
    board, host = verdicts[pi4], verdicts["local"]
    # The emulated ratio is not a Pi's, but well above 1 only happens when XNNPACK runs the sparse kernels.
    assert board["arch"] == "aarch64" and board["speedup"]["ci_low"] > 1.3, board
    assert board["applied"] is True and board["eligible"] is True
    # On x86 the verdict follows from the CPU, not from the timing: a busy machine moves a 0.05 ms ratio by 20%.
    assert host["arch"] == "x86_64" and host["speedup"]["ratio"] > 0, host
    assert host["applied"] is False and any("x86" in reason for reason in host["reasons"])
    assert f"XNNPACK sparse inference on {pi4} (aarch64), mobilenet_digits: applied" in out


def test_devices_setup_installs_the_runtime_from_pushed_wheels(capsys, pi4):
    venv = f"/root/edgeprune-setup-{uuid.uuid4().hex[:8]}"
    assert main(["devices", "setup", pi4, "--offline", "--venv", venv, "--base-python", "python3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"architecture\s+aarch64", out) and re.search(r"runtime\s+ai_edge_litert", out)
    assert re.search(r"xnnpack\s+available", out)
    assert f'python = "{venv}/bin/python"' in out
