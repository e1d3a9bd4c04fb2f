"""What bench reads and writes, attacked: a manifest pointing out of its export folder or crafted field by field, a
board answering what it likes, two benches on one results file, numbers no option means. Each attack runs against
real parts (a real sshd, real files, the real CLI) and checks that nothing happened beyond one clear line."""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edgeprune.cli import build_parser, main
from edgeprune.variants import VARIANTS
from edgeprune.hashing import file_sha256
from edgeprune.parsing import parse_json
from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.document import ResultsDocument, ResultsWriter, RunRecord, read_results
from edgeprune.results.manifest import read_manifest
from fixtures.sshd import ALIAS
from test_schemas import schema

SECRET = b"TOP-SECRET host file content 9f1c2a: must never reach a board\n"
HOLD_LIMIT_S = 300.0


def bench(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["bench", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err and "\x1b" not in err, err
    return [line for line in err.splitlines() if line.startswith("edgeprune:")]


def runs_by_variant(path: Path) -> dict[str, dict[str, Any]]:
    return {run["variant"]: run for run in parse_json(path.read_bytes())["runs"]}


def variant_entry(name: str, file: str | None, sha256: str | None = None) -> dict[str, Any]:
    spec = VARIANTS[name]
    return {"name": name, "quantization": spec.quantization, "sparse": spec.sparse, "file": file, "size_bytes": 1,
            "gzip_bytes": 1, "sha256": sha256, "sparse_tensors": 0, "valid": True, "error": None, "validation": None,
            "conversion_seconds": 0.5, "rejected_file": None}


def manifest_document(variants: list[dict[str, Any]]) -> dict[str, Any]:
    """A manifest as edgeprune export writes one, for the tiny 4 -> 3 model."""
    return {
        "schema_version": 1, "kind": "edgeprune.export-manifest",
        "source": {"path": "/models/tiny.keras", "sha256": "0" * 64, "format": "keras", "stripped": False},
        "input": {"shape": [None, 4], "dtype": "float32"},
        "calibration": None,
        "inspection": {
            "layers": [{"name": "dense", "op": "Dense", "params": 40, "weights": 32, "zeros": 16, "sparsity": 0.5}],
            "totals": {"params": 40, "zeros": 16},
            "xnnpack_sparse": {"eligible": False, "reasons": ["blocks: not a convolutional stem."]},
        },
        "variants": variants,
        "created": "2025-01-01T00:00:00+00:00", "edgeprune_version": "0.1.0", "tensorflow_version": "2.21.0",
    }


def write_export(folder: Path, model: Path, document_variants: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(model, folder / "fp32.tflite")
    (folder / "manifest.json").write_text(json.dumps(manifest_document(document_variants)))
    return folder


def ssh_inventory(folder: Path, name: str, workdir: Path, python: str = sys.executable) -> None:
    with (folder / "edgeprune.toml").open("a") as inventory:
        inventory.write(f'[devices.{name}]\nhost = "{ALIAS}"\nworkdir = "{workdir}"\npython = "{python}"\n')


# -- 5: a variant file must resolve inside its export folder -----------------------------------------------------


@pytest.mark.ssh
def test_a_manifest_file_outside_the_export_folder_is_neither_read_nor_uploaded(capsys, isolated_cwd, ssh_home,
                                                                               tiny_tflite) -> None:
    secret = isolated_cwd / "host" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    export = isolated_cwd / "exports" / "deep" / "tiny"
    traversal = "../../../host/shadow"
    assert (export / traversal).resolve() == secret.resolve()
    write_export(export, tiny_tflite, [
        variant_entry("fp32", "fp32.tflite", file_sha256(tiny_tflite)),
        variant_entry("fp16", traversal),
        variant_entry("int8-dynamic", str(secret)),  # absolute
        variant_entry("int8", "escape.tflite"),  # a symlink out of the folder
        variant_entry("fp32-sparse", "inside.tflite"),  # a symlink within it: fine
        variant_entry("fp16-sparse", "loop.tflite"),  # a symlink to itself
    ])
    (export / "escape.tflite").symlink_to(secret)
    (export / "inside.tflite").symlink_to("fp32.tflite")
    (export / "loop.tflite").symlink_to("loop.tflite")
    workdir = isolated_cwd / "board"
    ssh_inventory(isolated_cwd, "board", workdir)

    code, _, err = bench(capsys, str(export), "--device", "board", "--runs", "2", "--rounds", "1", "-o",
                         "results.json")

    assert code == 1
    runs = runs_by_variant(isolated_cwd / "results.json")
    assert runs["fp32"]["status"] == "ok" and runs["fp32-sparse"]["status"] == "ok"
    for variant, file in (("fp16", traversal), ("int8-dynamic", str(secret)), ("int8", "escape.tflite")):
        assert runs[variant]["status"] == "failed" and runs[variant]["model_sha256"] is None
        assert f"variant '{variant}' names the file '{file}', which is outside the export folder; it was not read" \
            in runs[variant]["error"]
        assert [line for line in error_lines(err) if f" tiny/{variant}:" in line] == [
            f"edgeprune: board tiny/{variant}: {runs[variant]['error']}"]
    assert "names the file 'loop.tflite', which cannot be resolved (a symlink loop); it was not read" in \
        runs["fp16-sparse"]["error"]
    # Nothing of the host file on the board: not in its cache, not anywhere in its workdir.
    board_files = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".tflite" for path in board_files)  # the good variant was uploaded
    assert not any(SECRET in path.read_bytes() for path in board_files)
    assert file_sha256(secret) not in {path.stem for path in board_files}


def test_only_refused_variants_is_a_usage_error_and_nothing_is_written(capsys, isolated_cwd, tiny_tflite) -> None:
    secret = isolated_cwd / "shadow"
    secret.write_bytes(SECRET)
    export = write_export(isolated_cwd / "tiny", tiny_tflite, [variant_entry("fp32", "../shadow")])

    code, _, err = bench(capsys, str(export), "-o", "results.json", "--no-history")

    assert code == 2
    assert error_lines(err) == [f"edgeprune: error: {export}/manifest.json: variant 'fp32' names the file "
                                "'../shadow', which is outside the export folder; it was not read (re-run edgeprune "
                                "export, or bench only manifests you trust)"]
    assert not (isolated_cwd / "results.json").exists() and not (isolated_cwd / "local").exists()


# -- 10: a manifest is checked whole when it is read ---------------------------------------------------------------

DELETE = object()
# (case, key path, crafted value, the key the one line names, whether the shipped schema rejects it too)
CRAFTED_MANIFESTS = [
    ("inspection-string", ("inspection",), "yes", "inspection must be an object or null, not a string", True),
    ("layers-object", ("inspection", "layers"), {"a": 1}, "inspection.layers must be an array", True),
    ("layer-number", ("inspection", "layers", 0), 5, "inspection.layers[0] must be an object", True),
    ("weights-string", ("inspection", "layers", 0, "weights"), "many",
     "inspection.layers[0].weights must be a whole number, not a string", True),
    ("zeros-above-weights", ("inspection", "layers", 0, "weights"), 0,
     "inspection.layers[0].zeros must be at most 0, not 16", False),
    ("layer-name-missing", ("inspection", "layers", 0, "name"), DELETE, "inspection.layers[0].name is missing", True),
    ("reasons-numbers", ("inspection", "xnnpack_sparse", "reasons"), [1, 2],
     "inspection.xnnpack_sparse.reasons[0] must be a string, not 1", True),
    ("eligible-string", ("inspection", "xnnpack_sparse", "eligible"), "yes",
     "inspection.xnnpack_sparse.eligible must be true or false, not a string", True),
    ("totals-missing", ("inspection", "totals"), DELETE, "inspection.totals is missing", True),
    ("sparsity-above-one", ("inspection", "layers", 0, "sparsity"), 7.5,
     "inspection.layers[0].sparsity must be a number from 0 to 1, not 7.5", True),
    ("size-string", ("variants", 0, "size_bytes"), "big", "variants[0].size_bytes must be a whole number or null",
     True),
    ("file-number", ("variants", 0, "file"), 7, "variants[0].file must be a string or null, not 7", True),
    ("sha-not-hex", ("variants", 0, "sha256"), "../../x", "variants[0].sha256 must be 64 lowercase hex digits",
     True),
    ("unknown-variant", ("variants", 0, "name"), "fp64", "variants[0].name must be one of fp16,", True),
    ("source-null", ("source",), None, "source must be an object, not null", True),
    ("shape-string", ("input", "shape"), "4", "input.shape must be an array, not a string", True),
    ("negative-dimension", ("input", "shape", 1), -4, "input.shape[1] must be at least 0, not -4", True),
    ("valid-without-file", ("variants", 0, "file"), None, "variants[0] is valid but names no file", True),
]


def crafted(document: dict[str, Any], keys: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(document)
    holder = document
    for key in keys[:-1]:
        holder = holder[key]
    if value is DELETE:
        del holder[keys[-1]]
    else:
        holder[keys[-1]] = value
    return document


@pytest.fixture
def crafted_export(isolated_cwd: Path, tiny_tflite: Path) -> tuple[Path, dict[str, Any]]:
    """An export of the tiny model whose manifest the test rewrites; read as it is, it is a good one."""
    export = write_export(isolated_cwd / "tiny", tiny_tflite, [variant_entry("fp32", "fp32.tflite")])
    original = json.loads((export / "manifest.json").read_text())
    read_manifest(export)
    jsonschema.validate(original, schema("manifest.schema.json"))
    return export, original


@pytest.mark.parametrize("case, keys, value, message, schema_rejects", CRAFTED_MANIFESTS,
                         ids=[case[0] for case in CRAFTED_MANIFESTS])
def test_a_crafted_manifest_is_one_line_naming_file_and_key_before_anything_is_written(
        capsys, isolated_cwd, crafted_export, case, keys, value, message, schema_rejects) -> None:
    export, original = crafted_export
    document = crafted(original, keys, value)
    (export / "manifest.json").write_text(json.dumps(document))

    code, _, err = bench(capsys, str(export), "-o", "results.json", "--runs", "1", "--rounds", "1")

    assert code == 2
    [line] = error_lines(err)
    assert line.startswith(f"edgeprune: error: {export}/manifest.json: {message}"), line
    assert not (isolated_cwd / "results.json").exists()  # not even a document with `devices: {}`
    assert not (isolated_cwd / ".edgeprune").exists()
    if schema_rejects:  # the shipped schema says the same as the reader
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, schema("manifest.schema.json"))


def test_report_names_a_crafted_manifest_instead_of_failing(capsys, isolated_cwd, crafted_export) -> None:
    export, original = crafted_export
    assert bench(capsys, str(export), "--runs", "2", "--rounds", "1", "-o", "results.json", "--no-history")[0] == 0
    for case, keys, value, message, _ in CRAFTED_MANIFESTS:
        (export / "manifest.json").write_text(json.dumps(crafted(original, keys, value)))
        code = main(["report", "results.json", "-o", f"{case}.html"])
        captured = capsys.readouterr()
        assert code == 0, (case, captured.err)
        assert "Traceback" not in captured.err
        assert message.split(" must ")[0].split(" is ")[0] in (isolated_cwd / f"{case}.html").read_text(), case


# -- 9: a board's reply is hostile input -------------------------------------------------------------------------

RUNS = 2
TIMEOUT_S = 60


def bench_reply(**changes: Any) -> dict[str, Any]:
    """A reply as the runner gives it for --runs 2 --rounds 1 --warmup 1 --threads 1, with ``changes``."""
    state = {"soc_temp_c": None, "throttled": None, "cpu_governor": None}
    return {"protocol": 1, "ok": True, "command": "bench", "runtime": {"name": "ai_edge_litert", "version": "2.1"},
            "threads": 1, "xnnpack": {"requested": True, "delegate_created": True, "log_warnings": []},
            "init_ns": 2_000_000, "first_invoke_ns": 600_000, "warmup": 1, "samples_ns": [5_000_000, 5_200_000],
            "peak_rss_mb": 31.5, "state_before": state, "state_after": state, "elapsed_ns": 90_000_000, **changes}


def without(key: str) -> dict[str, Any]:
    reply = bench_reply()
    del reply[key]
    return reply


ANSI = "\x1b[2J\x1b[31m\x1b]0;owned\x07"
# case -> (the bytes the "board" prints, what the run's error says; None: the run is ok)
CRAFTED_REPLIES: dict[str, tuple[bytes, str | None]] = {
    "only-ok": (b'{"protocol":1,"ok":true}', "invalid reply from the board: command is not 'bench'"),
    "no-samples": (json.dumps(without("samples_ns")).encode(), "invalid reply from the board: samples_ns is missing"),
    "nan-latency": (json.dumps(bench_reply(samples_ns=[float("nan"), 5_000_000])).encode(),
                    "invalid reply from the board: not JSON ('NaN' is not a JSON number)"),
    "infinite-init": (json.dumps(bench_reply()).replace('"init_ns": 2000000', '"init_ns": 1e999').encode(),
                      "invalid reply from the board: not JSON ('1e999' is not a finite number)"),
    "negative-latency": (json.dumps(bench_reply(samples_ns=[-5_000_000, -5_000_000])).encode(),
                         "invalid reply from the board: samples_ns[0] must be at least 1, not -5000000"),
    "rss-string": (json.dumps(bench_reply(peak_rss_mb="lots")).encode(),
                   "invalid reply from the board: peak_rss_mb must be a finite number or null, not a string"),
    "samples-string": (json.dumps(bench_reply(samples_ns="fast")).encode(),
                       "invalid reply from the board: samples_ns must be an array, not a string"),
    "huge-array": (json.dumps(bench_reply(samples_ns=[1000] * 200_000)).encode(),
                   "invalid reply from the board: samples_ns has 200000 samples, more than the 2 asked for in 0 s"),
    "longer-than-allowed": (json.dumps(bench_reply(samples_ns=[5_000_000, (TIMEOUT_S + 1) * 10**9])).encode(),
                            "invalid reply from the board: samples_ns[1] must be at most 60000000000, not 61000000000"),
    "other-threads": (json.dumps(bench_reply(threads=64)).encode(),
                      "invalid reply from the board: threads is not the 1 asked for"),
    "garbage": (f"{ANSI}all good, trust me\n".encode(), "invalid reply from the board: not JSON (Expecting value"),
    "protocol-string": (json.dumps(bench_reply(protocol=f"1{ANSI}")).encode(),
                        "runner speaks an unknown protocol, this edgeprune speaks protocol 1"),
    "ansi-error": (json.dumps({"protocol": 1, "ok": False, "command": "bench",
                               "error": {"kind": f"load{ANSI}", "message": f"{ANSI}cannot\nload\tit{ANSI}"}}).encode(),
                   "cannot load it"),
    "ansi-in-ok-reply": (json.dumps(bench_reply(runtime={"name": f"ai_edge_litert{ANSI}\u202e", "version": "2.1"},
                                                xnnpack={"requested": True, "delegate_created": True,
                                                         "log_warnings": [f"{ANSI}warning"]})).encode(), None),
}


def reply_faking_python(folder: Path, replies: dict[str, bytes]) -> Path:
    """A ``python`` for the inventory that answers with a crafted reply where one is kept for the call: for a
    ``probe`` (key 'probe') or a served ``bench`` request (key: its model's content hash), it prints that reply,
    the request's id spliced in as text (so that non-JSON numbers stay as crafted); every other call and request
    goes to the real runner."""
    folder.mkdir(parents=True)
    for key, reply in replies.items():
        (folder / key).write_bytes(reply)
    python = folder / "python"
    python.write_text(
        f"#!{sys.executable}\n"
        "import json, os, subprocess, sys\n"
        f"folder = {str(folder)!r}\n"
        "def crafted(key):\n"
        "    path = os.path.join(folder, key)\n"
        "    return open(path, 'rb').read() if os.path.isfile(path) else None\n"
        "args = sys.argv[1:]\n"
        "command = args[1] if len(args) > 1 else ''\n"
        "if command == 'probe' and crafted('probe') is not None:\n"
        "    sys.stdout.buffer.write(crafted('probe'))\n"
        "    sys.exit(0)\n"
        "if command != 'serve':\n"
        "    os.execv(sys.executable, [sys.executable, *args])\n"
        "real = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
        "out = sys.stdout.buffer\n"
        "out.write(real.stdout.readline())\n"
        "out.flush()\n"
        "for line in sys.stdin.buffer:\n"
        "    request = json.loads(line)\n"
        "    argv = request['argv']\n"
        "    reply = crafted(os.path.basename(argv[argv.index('--model') + 1]).split('.')[0])\n"
        "    if reply is None:\n"
        "        real.stdin.write(line)\n"
        "        real.stdin.flush()\n"
        "        reply = real.stdout.readline()\n"
        "    elif reply.startswith(b'{'):\n"
        "        reply = b'{\"id\": %d, ' % request['id'] + reply[1:]\n"
        "    out.write(reply.rstrip(b'\\n') + b'\\n')\n"
        "    out.flush()\n")
    python.chmod(0o755)
    return python


@pytest.mark.ssh
def test_each_crafted_reply_fails_its_run_with_one_clean_line_and_the_others_are_measured(
        capsys, isolated_cwd, ssh_home, tiny_tflite, tiny_int8_tflite) -> None:
    models = isolated_cwd / "models"
    models.mkdir()
    shutil.copy(tiny_tflite, models / "fp32.tflite")
    shutil.copy(tiny_int8_tflite, models / "int8.tflite")
    replies = {}
    for case, (reply, _) in CRAFTED_REPLIES.items():
        (models / f"{case}.tflite").write_bytes(f"not a model: {case}".encode())
        replies[file_sha256(models / f"{case}.tflite")] = reply
    ssh_inventory(isolated_cwd, "board", isolated_cwd / "board",
                  str(reply_faking_python(isolated_cwd / "fake", replies)))

    code, out, err = bench(capsys, *sorted(str(path) for path in models.iterdir()), "--device", "board",
                           "--runs", str(RUNS), "--rounds", "1", "--warmup", "1", "--timeout", str(TIMEOUT_S),
                           "-o", "results.json")

    assert code == 1
    assert "\x1b" not in out
    # fp32.tflite and int8.tflite are variants of model "models"; each crafted file is a model of its own.
    runs = {f"{run['model']}/{run['variant']}": run for run in parse_json(Path("results.json").read_bytes())["runs"]}
    assert runs["models/fp32"]["status"] == "ok" and runs["models/int8"]["status"] == "ok"
    lines = error_lines(err)
    for case, (_, message) in CRAFTED_REPLIES.items():
        run = runs[f"{case}/as-is"]
        if message is None:
            assert run["status"] == "ok", run["error"]
            assert run["runtime"]["name"] == "ai_edge_litert" and run["xnnpack_delegate"]["log_warnings"] == ["warning"]
            continue
        assert run["status"] == "failed" and run["latency_ms"] is None, case
        assert message in run["error"], (case, run["error"])
        assert not any(char in run["error"] for char in "\x1b\x07\n\t"), case
        assert [line for line in lines if f" {case}/as-is:" in line] == [
            f"edgeprune: board {case}/as-is: {run['error']}"]
    # What gate and report read is a valid document: strict JSON, every number where a number goes.
    assert len(read_results(isolated_cwd / "results.json").runs) == len(CRAFTED_REPLIES) + 2
    (isolated_cwd / "policy.toml").write_text("[defaults]\nmax_p50_ms = 1000\n")
    assert main(["gate", "results.json", "--policy", "policy.toml"]) == 1  # the failed runs fail it; read, it was
    assert "gate FAILED" in capsys.readouterr().out


@pytest.mark.ssh
def test_a_crafted_probe_reply_fails_that_device_only(capsys, isolated_cwd, ssh_home, tiny_tflite) -> None:
    probe = {"protocol": 1, "ok": True, "command": "probe", "hostname": f"{ANSI}pi", "arch": "aarch64"}
    ssh_inventory(isolated_cwd, "liar", isolated_cwd / "liar",
                  str(reply_faking_python(isolated_cwd / "fake", {"probe": json.dumps(probe).encode()})))
    with (isolated_cwd / "edgeprune.toml").open("a") as inventory:
        inventory.write(f'[devices.local]\nworkdir = "{isolated_cwd / "local"}"\n')

    code, _, err = bench(capsys, str(tiny_tflite), "--device", "liar", "--device", "local", "--runs", "2",
                         "--rounds", "1", "-o", "results.json")

    assert code == 1
    runs = {run["device"]: run for run in read_results(isolated_cwd / "results.json").to_json()["runs"]}
    assert runs["local"]["status"] == "ok"
    assert runs["liar"]["status"] == "failed"
    assert "device 'liar': invalid reply from the board: os is missing" in runs["liar"]["error"]
    assert [line for line in error_lines(err) if " liar " in line] == [
        f"edgeprune: liar {tiny_tflite.parent.name}/fp32: {runs['liar']['error']}"]


# -- 8: two benches, one results file ------------------------------------------------------------------------------


def runner_held_until(folder: Path, go: Path) -> tuple[Path, Path]:
    """A ``python`` whose runner server (what measures: ``serve``) announces itself in ``started`` and waits until
    ``go`` exists before it starts."""
    started = folder / "started"
    python = folder / "held-python"
    python.write_text("#!/bin/sh\n"
                      f'if [ "$2" = serve ]; then\n'
                      f'    touch "{started}"\n'
                      f'    while [ ! -e "{go}" ]; do sleep 0.05; done\n'
                      "fi\n"
                      f'exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return python, started


def logging_python(folder: Path) -> tuple[Path, Path]:
    """A ``python`` that notes every call it runs."""
    calls = folder / "calls"
    python = folder / "logging-python"
    python.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return python, calls


@pytest.mark.ssh
def test_a_second_bench_on_the_same_results_file_is_refused_before_it_measures(capsys, isolated_cwd, ssh_home,
                                                                                tiny_tflite) -> None:
    go = isolated_cwd / "go"
    held_python, started = runner_held_until(isolated_cwd, go)
    (isolated_cwd / "first.toml").write_text(f'[devices.local]\nworkdir = "{isolated_cwd / "local"}"\n'
                                             f'python = "{held_python}"\n')
    second_python, second_calls = logging_python(isolated_cwd)
    ssh_inventory(isolated_cwd, "board", isolated_cwd / "board", str(second_python))
    args = [str(tiny_tflite), "--runs", "2", "--rounds", "1", "-o", "results.json"]
    first = subprocess.Popen([sys.executable, "-m", "edgeprune", "bench", *args, "--inventory", "first.toml"],
                             cwd=isolated_cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(started, first)  # the first bench is measuring now, and stays so until `go`

        code, _, err = bench(capsys, *args, "--device", "board")

        assert code == 2
        [line] = error_lines(err)
        assert re.fullmatch(
            rf"edgeprune: error: results file 'results.json' is being written by another bench \(pid {first.pid} on "
            rf"{re.escape(socket.gethostname())} since [0-9T:+-]+\) \(give each bench its own -o FILE, or measure "
            r"the devices in one bench \(--device A --device B\)\)", line), line
        assert not second_calls.exists() and not (isolated_cwd / "board").exists()  # nothing ran on its board
        go.touch()
        assert first.wait(HOLD_LIMIT_S) == 0, first.stderr.read().decode()
    finally:
        go.touch()
        if first.poll() is None:
            first.kill()
            first.wait()
    document = parse_json((isolated_cwd / "results.json").read_bytes())
    assert [(run["device"], run["status"]) for run in document["runs"]] == [("local", "ok")]
    assert list(document["devices"]) == ["local"]
    assert not (isolated_cwd / ".results.json.lock").exists()
    # Once the first is done, the file is free again.
    assert bench(capsys, *args, "--device", "board")[0] == 0
    assert [run["device"] for run in parse_json((isolated_cwd / "results.json").read_bytes())["runs"]] == ["board"]


def wait_for(marker: Path, process: subprocess.Popen[bytes]) -> None:
    """Until ``marker`` exists; the bound only catches a broken bench, the hold does not depend on speed."""
    deadline = time.monotonic() + HOLD_LIMIT_S
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, f"{marker} did not appear"
        time.sleep(0.05)


def test_a_lock_file_planted_as_a_symlink_is_not_written_through(capsys, isolated_cwd, tiny_tflite) -> None:
    victim = isolated_cwd / "victim.txt"
    victim.write_text("keep me\n")
    (isolated_cwd / ".results.json.lock").symlink_to(victim)

    code, _, err = bench(capsys, str(tiny_tflite), "--runs", "1", "--rounds", "1", "-o", "results.json")

    assert code == 2
    assert error_lines(err) == ["edgeprune: error: cannot write results file 'results.json': Too many levels of "
                                "symbolic links (choose a writable path)"]
    assert victim.read_text() == "keep me\n" and not (isolated_cwd / "results.json").exists()


def test_the_results_writer_never_writes_nan_or_infinity(isolated_cwd) -> None:
    document = ResultsDocument.new({"devices": ["local"]})
    writer = ResultsWriter(document, isolated_cwd / "results.json")
    writer.add(RunRecord(device="local", model="m", variant="fp32", model_sha256=None, size_bytes=1, threads=1,
                         xnnpack=True, status="ok", peak_rss_mb=float("nan"), init_ms=float("inf"),
                         accuracy=AccuracyFigures(snr_db=float("inf"), max_abs_error=float("-inf"), top1=None, n=3)))
    writer.update(lambda doc: doc.devices.update(local={"wall_seconds": float("nan")}))

    written = parse_json((isolated_cwd / "results.json").read_bytes())  # strict: no NaN, no Infinity

    [run] = written["runs"]
    assert run["peak_rss_mb"] is None and run["init_ms"] is None
    assert run["accuracy"] == {"snr_db": None, "max_abs_error": None, "top1": None, "n": 3, "top1_agreement": None,
                               "mean_abs_error": None, "reference": None, "data": None}
    assert written["devices"]["local"]["wall_seconds"] is None
    assert read_results(isolated_cwd / "results.json").runs[0].peak_rss_mb is None


# -- 12: numbers in options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option, value", [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "1e999"),
    ("--min-seconds", "inf"), ("--min-seconds", "nan"), ("--min-seconds", "-1"), ("--min-seconds", "1e6"),
    ("--lock-timeout", "nan"), ("--lock-timeout", "-1"), ("--lock-timeout", "inf"),
    ("--runs", "0"), ("--runs", "1e3"), ("--runs", "9" * 5000), ("--runs", "10000001"),
    ("--warmup", "-1"), ("--warmup", "nan"), ("--rounds", "0"), ("--rounds", "100000"),
    ("--threads", "0"), ("--threads", "1,nan"), ("--threads", "100000"), ("--image-range", "nan:1"),
])
def test_a_number_no_option_means_is_a_usage_error(capsys, isolated_cwd, tiny_tflite, option, value) -> None:
    code, _, err = bench(capsys, str(tiny_tflite), f"{option}={value}")

    assert code == 2
    [line] = error_lines(err)
    assert line.startswith(f"edgeprune: error: argument {option}: ") and line.endswith("(see 'edgeprune bench --help')")
    assert len(line) < 200 and not (isolated_cwd / "results.json").exists()


def test_every_numeric_option_of_every_command_is_checked() -> None:
    """No option takes a bare int or float (which let nan, inf and negative counts through)."""

    def actions(parser):
        for action in parser._actions:
            yield action
            for sub in (action.choices or {}).values() if hasattr(action, "choices") and isinstance(
                    action.choices, dict) else ():
                yield from actions(sub)

    unchecked = [action.option_strings for action in actions(build_parser()) if action.type in (int, float)]
    assert unchecked == []
