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
    assert "Cortex-A72" in info["cpu_model"] and info["cpu_part"] == "0xd08"
    assert {"fp", "asimd"} <= set(info["cpu_features"]) and "asimdhp" not in info["cpu_features"]


def test_every_sparse_variant_gets_its_verdict_on_arm_and_on_x86(capsys, pi4, mobilenet_export):
    variants = ("fp32", "fp32-sparse", "fp16", "fp16-sparse", "int8", "int8-sparse")
    code = main(["bench", *(str(mobilenet_export / f"{variant}.tflite") for variant in variants),
                 "--device", pi4, "--device", "local", "--runs", "12", "--rounds", "2", "--warmup", "2",
                 "-o", "results.json"])
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(open("results.json").read())
    verdicts = {(verdict["device"], verdict["variant"]): verdict for verdict in document["sparse_inference"]}
    assert len(verdicts) == 6
    for sparse, dense in (("fp32-sparse", "fp32"), ("fp16-sparse", "fp16")):
        board, host = verdicts[pi4, sparse], verdicts["local", sparse]
        # The emulated ratio is not a Pi's, but well above 1 only happens when XNNPACK runs the sparse kernels:
        # fp16 weights are widened to fp32 and take the same fp32 sparse kernel.
        assert board["dense_variant"] == dense and board["arch"] == "aarch64", board
        assert board["speedup"]["ci_low"] > 1.3 and board["applied"] is True and board["eligible"] is True, board
        # On x86 the verdict follows from the CPU, not from the timing: a busy machine moves a 0.05 ms ratio by 20%.
        assert host["arch"] == "x86_64" and host["speedup"]["ratio"] > 0, host
        assert host["applied"] is False and any("x86 CPU with AVX" in reason for reason in host["reasons"])
    assert any("this CPU lacks fp16 arithmetic" in reason for reason in verdicts[pi4, "fp16-sparse"]["reasons"])
    for device in (pi4, "local"):
        int8 = verdicts[device, "int8-sparse"]
        # Densified at load time, int8-sparse runs int8's dense kernels whatever the CPU: the verdict follows from
        # the data type, not from the timing.
        assert int8["dense_variant"] == "int8" and int8["applied"] is False and int8["speedup"]["ratio"] > 0, int8
        assert any(reason.startswith("int8: XNNPACK's sparse path takes only fp32 and fp16") for reason in int8["reasons"])
    assert f"XNNPACK sparse inference on {pi4} (aarch64), mobilenet_digits, fp16-sparse vs fp16, 1 thread: applied" in out
    assert f"XNNPACK sparse inference on {pi4} (aarch64), mobilenet_digits, int8-sparse vs int8, 1 thread: not applied" in out


def test_devices_setup_installs_the_runtime_from_pushed_wheels(capsys, pi4):
    venv = f"/root/edgeprune-setup-{uuid.uuid4().hex[:8]}"
    assert main(["devices", "setup", pi4, "--offline", "--venv", venv, "--base-python", "python3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"architecture\s+aarch64", out) and re.search(r"runtime\s+ai_edge_litert", out)
    assert re.search(r"xnnpack\s+available", out)
    assert f'python = "{venv}/bin/python"' in out
