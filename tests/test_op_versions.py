"""Op versions: read from a variant's flatbuffer, asked of a real runtime with one-op models, and the numpy a
runtime's setup pins. The reply checks and the labels are logic without I/O."""

import base64
import json
import runpy
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from ai_edge_litert import schema_py_generated as schema

from edgeprune.board.provision import pinned
from edgeprune.board.replies import ops_reply
from edgeprune.board.runner import runner_script
from edgeprune.errors import ModelLoadError, UsageError
from edgeprune.json_fields import FieldError, Fields
from edgeprune.model.op_codes import OpVersion, one_op_model, read_op_versions
from edgeprune.reports.device_label import device_labeller
from edgeprune.reports.runtime_notes import runtime_notes
from edgeprune.results.document import RunRecord

FULLY_CONNECTED = schema.BuiltinOperator.FULLY_CONNECTED
STABLEHLO_ADD = schema.BuiltinOperator.STABLEHLO_ADD  # above 127: its code lives only in the int32 field


def test_the_op_versions_of_a_converted_model(tiny_tflite, tiny_int8_tflite):
    assert [str(op) for op in read_op_versions(tiny_tflite)] == ["FULLY_CONNECTED v1", "SOFTMAX v1"]
    int8 = {op.name: op.version for op in read_op_versions(tiny_int8_tflite)}
    assert set(int8) == {"FULLY_CONNECTED", "SOFTMAX"} and int8["FULLY_CONNECTED"] > 1  # int8 kernels: newer versions


@pytest.mark.parametrize("op", [OpVersion("FULLY_CONNECTED", 12, FULLY_CONNECTED),
                                OpVersion("STABLEHLO_ADD", 1, STABLEHLO_ADD)])
def test_a_one_op_model_reads_back_as_that_op(tmp_path, op):
    path = tmp_path / "one.tflite"
    path.write_bytes(one_op_model(op))
    assert read_op_versions(path) == (op,)


def test_a_file_that_is_no_model_is_named(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 8)
    with pytest.raises(ModelLoadError, match="cannot read the op codes of .*notes.tflite"):
        read_op_versions(path)
    path.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a TFLite model"):
        read_op_versions(path)


def run_ops(bundle: Path) -> dict:
    completed = subprocess.run([sys.executable, str(runner_script()), "ops", "--bundle", str(bundle)],
                               capture_output=True, text=True, timeout=120)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_the_runner_says_which_op_versions_its_runtime_loads(tmp_path):
    asked = [OpVersion("FULLY_CONNECTED", 12, FULLY_CONNECTED), OpVersion("FULLY_CONNECTED", 99, FULLY_CONNECTED)]
    bundle = tmp_path / "ops.json"
    bundle.write_text(json.dumps({"ops": [{"op": op.name, "version": op.version,
                                           "model": base64.b64encode(one_op_model(op)).decode()} for op in asked]}))
    reply = run_ops(bundle)
    assert reply["ok"] and reply["runtime"]["name"] == "ai_edge_litert"
    checked = ops_reply(Fields.of(reply), asked=[(op.name, op.version) for op in asked])
    assert [answer["loads"] for answer in checked["ops"]] == [True, False]
    assert "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '99'" in checked["ops"][1]["error"]


def test_the_runner_refuses_a_damaged_bundle(tmp_path):
    bundle = tmp_path / "ops.json"
    bundle.write_text('{"ops": [{"op": "ADD", "version": 1, "model": "not base64!"}]}')
    reply = run_ops(bundle)
    assert reply["ok"] is False and reply["error"]["kind"] == "usage"
    assert "unreadable ops bundle ops.json" in reply["error"]["message"]


@pytest.mark.parametrize("answers, problem", [
    ([{"op": "ADD", "version": 1, "loads": True, "error": None}], "not the 2 asked"),
    ([{"op": "ADD", "version": 2, "loads": True, "error": None},
      {"op": "ADD", "version": 1, "loads": True, "error": None}], "in their order"),
    ([{"op": "ADD", "version": 1, "loads": False, "error": None},
      {"op": "ADD", "version": 2, "loads": True, "error": None}], "error"),
])
def test_an_ops_reply_must_answer_what_was_asked(answers, problem):
    reply = {"runtime": {"name": "tflite_runtime", "version": "2.14.0"}, "ops": answers}
    with pytest.raises(FieldError, match=problem):
        ops_reply(Fields.of(reply), asked=[("ADD", 1), ("ADD", 2)])


@pytest.mark.parametrize("asked, installed", [
    (["tflite-runtime"], ["numpy<2", "tflite-runtime"]),
    (["numpy", "tflite_runtime==2.14.0"], ["numpy<2", "tflite_runtime==2.14.0"]),
    (["numpy==1.26.4", "tflite-runtime"], ["numpy==1.26.4", "tflite-runtime"]),
    (["numpy", "ai-edge-litert"], ["numpy", "ai-edge-litert"]),
    (["tensorflow"], ["tensorflow"]),
])
def test_setup_installs_the_numpy_a_runtime_was_built_for(asked, installed):
    assert pinned(asked) == installed


@pytest.mark.parametrize("asked, problem", [
    (["numpy>=2", "tflite-runtime"], "--package 'numpy>=2' allows numpy 2, which tflite-runtime cannot run with"),
    (["numpy>1.20", "tflite-runtime"], "allows numpy 2"),
    (["numpy>=2.1", "tflite-runtime"], "allows numpy 2"),
    (["numpy==2.2.0", "tflite-runtime"], "allows numpy 2"),
    (["tflite runtime!"], "--package 'tflite runtime!' is not a pip requirement"),
])
def test_setup_refuses_what_cannot_work(asked, problem):
    with pytest.raises(UsageError, match=problem.replace("(", r"\(")):
        pinned(asked)


def run_record(device: str, model: str, runtime: dict | None, device_info: dict | None = None) -> RunRecord:
    return RunRecord(device=device, model=model, variant="fp32", model_sha256=None, size_bytes=None, threads=1,
                     xnnpack=True, status="ok" if runtime else "failed", runtime=runtime, device_info=device_info)


def test_the_runtime_is_shown_beside_the_device_only_where_runtimes_differ():
    litert, tflite = {"name": "ai_edge_litert", "version": "2.3.0"}, {"name": "tflite_runtime", "version": "2.14.0"}
    runs = [run_record("local", "cnn", litert), run_record("pi4", "cnn", tflite),
            run_record("pi4b", "cnn", None, {"runtime": tflite}),  # failed before measuring: the device's runtime
            run_record("local", "mobilenet", litert), run_record("pi4", "mobilenet", litert)]
    label = device_labeller(runs)
    assert [label(run) for run in runs] == ["local (ai_edge_litert 2.3.0)", "pi4 (tflite_runtime 2.14.0)",
                                            "pi4b (tflite_runtime 2.14.0)", "local", "pi4"]


def test_known_runtime_differences_are_said():
    assert "x86 int8 kernels are an order of magnitude slower" in runtime_notes("x86_64", "tflite_runtime", True)[0]
    assert "without XNNPACK" in runtime_notes("armv7l", "tflite_runtime", False)[0]
    assert runtime_notes("aarch64", "tflite_runtime", True) == runtime_notes("x86_64", "ai_edge_litert", True) == []


def test_aarch64_hwcaps_are_read_from_the_auxiliary_vector():
    """The runner stands alone (a script on the board): its auxv decoding, fed the words a kernel writes."""
    runner = runpy.run_path(str(runner_script()))
    fphp, asimdhp = 1 << 9, 1 << 10
    auxv = struct.pack("<6Q", 6, 4096, runner["AT_HWCAP"], 0b11 | fphp | asimdhp, 0, 0)  # AT_PAGESZ, AT_HWCAP, AT_NULL
    assert runner["hwcap_names"](auxv) == ["fp", "asimd", "fphp", "asimdhp"]
    assert runner["hwcap_names"](struct.pack("<2Q", 0, 0)) == [] and runner["hwcap_names"](b"") == []
