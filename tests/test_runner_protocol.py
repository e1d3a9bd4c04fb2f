"""The device runner as a board sees it: a standalone script, one JSON reply on stdout, errors included."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeprune.board.protocol import PROTOCOL
from edgeprune.board.runner import runner_script


def run_runner(*args: str) -> tuple[int, dict, str]:
    completed = subprocess.run([sys.executable, str(runner_script()), *args], capture_output=True, text=True,
                               timeout=120)
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must hold exactly the JSON reply, got: {completed.stdout!r}"
    return completed.returncode, json.loads(lines[0]), completed.stderr


def test_probe_reports_the_machine_and_runtime(tmp_path):
    code, reply, _ = run_runner("probe", "--workdir", str(tmp_path / "not" / "yet"))
    assert code == 0 and reply["ok"] and reply["protocol"] == PROTOCOL
    assert reply["arch"] and reply["cpu_cores"] >= 1 and reply["python"]
    assert reply["runtime"]["name"] == "ai_edge_litert"
    assert reply["xnnpack_available"] is True
    assert reply["workdir_free_mb"] > 0
    assert isinstance(reply["cpu_features"], list) and all(isinstance(flag, str) for flag in reply["cpu_features"])


def test_serve_answers_each_request_line_by_id_and_serves_on_after_a_bad_one(tiny_tflite):
    bench = ["bench", "--model", str(tiny_tflite), "--runs", "3", "--warmup", "0"]
    requests = [{"id": 1, "argv": bench, "timeout_s": 60},
                "not json",
                {"id": 2, "argv": ["probe"], "timeout_s": 60},  # not a served command
                {"id": 3, "argv": bench, "timeout_s": 7 * 86400}]  # bench --timeout's limit
    stdin = "".join((request if isinstance(request, str) else json.dumps(request)) + "\n" for request in requests)
    completed = subprocess.run([sys.executable, str(runner_script()), "serve"], input=stdin, capture_output=True,
                               text=True, timeout=120)
    ready, *replies, last = [json.loads(line) for line in completed.stdout.splitlines()]
    assert completed.returncode == 0
    assert ready["event"] == "ready" and ready["protocol"] == PROTOCOL and ready["runtime"]["name"] == "ai_edge_litert"
    assert [(reply.get("id"), reply["ok"]) for reply in replies] == [(1, True), (None, False), (2, False), (3, True)]
    assert len(replies[0]["samples_ns"]) == 3 and replies[0]["peak_rss_mb"] > 1
    assert replies[1]["error"]["kind"] == "usage" and "not a request" in replies[1]["error"]["message"]
    assert last == {"protocol": PROTOCOL, "ok": True, "command": "serve", "served": 4,
                    "elapsed_ns": last["elapsed_ns"]}
    assert "XNNPACK" in completed.stderr  # each child's runtime log is passed on


def test_bench_times_every_invoke(tiny_tflite):
    code, reply, stderr = run_runner("bench", "--model", str(tiny_tflite), "--runs", "7", "--warmup", "2",
                                     "--threads", "1")
    assert code == 0 and reply["ok"]
    assert len(reply["samples_ns"]) == 7 and all(sample > 0 for sample in reply["samples_ns"])
    assert reply["xnnpack"]["delegate_created"] is True
    assert "XNNPACK" in stderr  # the runtime's log is passed on, not swallowed
    assert reply["peak_rss_mb"] > 1 and reply["init_ns"] > 0 and reply["first_invoke_ns"] > 0


def test_bench_min_seconds_extends_the_run(tiny_tflite):
    _, reply, _ = run_runner("bench", "--model", str(tiny_tflite), "--runs", "1", "--min-seconds", "0.05")
    assert len(reply["samples_ns"]) > 1


def test_bench_without_xnnpack_uses_builtin_kernels(tiny_tflite):
    _, reply, _ = run_runner("bench", "--model", str(tiny_tflite), "--runs", "3", "--xnnpack", "off")
    assert reply["xnnpack"] == {"requested": False, "delegate_created": False, "log_warnings": []}


@pytest.mark.parametrize(
    "args, kind",
    [
        (["bench", "--model", "/nonexistent/model.tflite"], "load"),
        (["bench"], "usage"),
        (["bench", "--model", "x", "--runtime", "nonsense"], "usage"),
        (["frobnicate"], "usage"),
    ],
)
def test_errors_are_json_too(args, kind):
    code, reply, _ = run_runner(*args)
    assert code == 3 and reply["ok"] is False and reply["error"]["kind"] == kind and reply["error"]["message"]


def test_corrupt_model_is_a_load_error(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3" + b"\x00" * 64)
    code, reply, _ = run_runner("bench", "--model", str(broken))
    assert code == 3 and reply["error"]["kind"] == "load" and "broken.tflite" in reply["error"]["message"]


def test_infer_writes_binary_outputs(tiny_tflite, tmp_path):
    inputs = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", inputs)
    code, reply, _ = run_runner("infer", "--model", str(tiny_tflite), "--inputs", str(tmp_path / "x.npy"),
                                "--outputs", str(tmp_path / "out.npz"))
    assert code == 0 and reply["n"] == 5 and reply["output_shapes"] == {"output_0": [5, 3]}
    with np.load(tmp_path / "out.npz") as archive:
        outputs = archive["output_0"]
    assert outputs.dtype == np.float32 and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-5)


def test_infer_quantizes_int8_inputs_and_dequantizes_outputs(tiny_tflite, tiny_int8_tflite, tmp_path):
    inputs = np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", inputs)
    outputs = {}
    for name, model in (("fp32", tiny_tflite), ("int8", tiny_int8_tflite)):
        run_runner("infer", "--model", str(model), "--inputs", str(tmp_path / "x.npy"),
                   "--outputs", str(tmp_path / f"{name}.npz"))
        with np.load(tmp_path / f"{name}.npz") as archive:
            outputs[name] = archive["output_0"]
    # Softmax probabilities: the int8 model's must be dequantized back to [0, 1] and close to fp32's.
    assert outputs["int8"].min() >= 0 and outputs["int8"].max() <= 1.0
    assert np.abs(outputs["int8"] - outputs["fp32"]).max() < 0.05


def test_infer_rejects_inputs_of_the_wrong_shape(tiny_tflite, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 5), np.float32))
    code, reply, _ = run_runner("infer", "--model", str(tiny_tflite), "--inputs", str(tmp_path / "x.npy"),
                                "--outputs", str(tmp_path / "out.npz"))
    assert code == 3 and reply["error"]["kind"] == "data"
    assert "[3, 5]" in reply["error"]["message"] and "[N, 4]" in reply["error"]["message"]
