"""``edgeprune bench`` end to end, the same checks on the local device and over a real loopback sshd."""

import json
import re
import shutil
import sqlite3

import pytest

from edgeprune.cli import main


def bench(capsys, *args):
    code = main(["bench", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def two_variants(isolated_cwd, tiny_tflite, tiny_int8_tflite):
    folder = isolated_cwd / "tiny"
    folder.mkdir()
    shutil.copy(tiny_tflite, folder / "fp32.tflite")
    shutil.copy(tiny_int8_tflite, folder / "int8.tflite")
    return folder


def test_bench_measures_every_variant(capsys, bench_device, two_variants):
    code, out, err = bench(capsys, str(two_variants / "fp32.tflite"), str(two_variants / "int8.tflite"),
                           "--device", bench_device, "--runs", "12", "--rounds", "3", "--warmup", "1",
                           "-o", "results.json", "--label", "first")
    assert code == 0, err
    document = json.loads(open("results.json").read())
    assert document["schema_version"] == 1 and document["kind"] == "edgeprune.results"
    runs = {run["variant"]: run for run in document["runs"]}
    assert set(runs) == {"fp32", "int8"}
    for run in runs.values():
        assert run["device"] == bench_device and run["status"] == "ok" and run["error"] is None
        assert set(run["latency_ms"]) == {"p50", "p90", "p99", "mean", "std", "min", "max", "n"}
        assert run["latency_ms"]["n"] == 12 and len(run["samples_ms"]) == 12
        assert run["latency_ms"]["min"] <= run["latency_ms"]["p50"] <= run["latency_ms"]["p99"]
        assert run["runtime"]["name"] == "ai_edge_litert" and run["threads"] == 1 and run["xnnpack"] is True
        assert run["init_ms"] > 0 and run["first_invoke_ms"] > 0 and run["peak_rss_mb"] > 0
        assert run["device_info"]["arch"] and run["model_sha256"] and run["size_bytes"] > 0
    assert "speed-up vs fp32" in out and "int8" in out
    # Interleaved rounds: A B, A B, A B.
    order = [line.split()[3] for line in err.splitlines() if " round " in line]
    assert order == ["tiny/fp32", "tiny/int8"] * 3
    history = sqlite3.connect(".edgeprune/history.sqlite")
    assert history.execute("SELECT COUNT(*) FROM runs r JOIN benches b ON r.bench_id = b.id "
                           "WHERE b.label = 'first'").fetchone() == (2,)


def test_second_bench_uploads_nothing(capsys, bench_device, two_variants):
    args = [str(two_variants / "fp32.tflite"), "--device", bench_device, "--runs", "3", "--rounds", "1",
            "-o", "results.json"]
    assert bench(capsys, *args)[0] == 0
    first = json.loads(open("results.json").read())["devices"][bench_device]
    assert first["uploaded_bytes"] > 0
    assert bench(capsys, *args)[0] == 0
    second = json.loads(open("results.json").read())["devices"][bench_device]
    assert second["uploaded_bytes"] == 0


def test_a_broken_variant_fails_alone(capsys, bench_device, two_variants):
    (two_variants / "broken.tflite").write_bytes(b"\x00" * 200)
    code, out, err = bench(capsys, str(two_variants / "fp32.tflite"), str(two_variants / "broken.tflite"),
                           "--device", bench_device, "--runs", "3", "-o", "results.json")
    assert code == 1
    runs = {run["model"]: run for run in json.loads(open("results.json").read())["runs"]}
    assert runs["tiny"]["status"] == "ok" and runs["tiny"]["variant"] == "fp32"
    # Not named as an export names a variant: its own model, named by its file.
    assert runs["broken"]["variant"] == "as-is"
    assert runs["broken"]["status"] == "failed" and "broken.tflite" in runs["broken"]["error"]
    assert f"edgeprune: {bench_device} broken/as-is:" in err
    assert "Traceback" not in err


def test_xnnpack_off_is_a_baseline_of_its_own(capsys, isolated_cwd, tiny_tflite):
    code, _, _ = bench(capsys, str(tiny_tflite), "--xnnpack", "both", "--threads", "1,2", "--runs", "2",
                       "--rounds", "1", "-o", "r.json", "--no-history")
    assert code == 0
    runs = json.loads(open("r.json").read())["runs"]
    assert sorted((run["threads"], run["xnnpack"]) for run in runs) == [(1, False), (1, True), (2, False), (2, True)]
    delegate = {run["xnnpack"]: run["xnnpack_delegate"]["delegate_created"] for run in runs}
    assert delegate == {True: True, False: False}
    assert not (isolated_cwd / ".edgeprune").exists()


def test_a_device_that_cannot_be_opened_fails_its_runs_and_the_others_are_measured(capsys, isolated_cwd, tiny_tflite):
    (isolated_cwd / "edgeprune.toml").write_text('[devices.pi4]\nhost = "pi4"\nidentity_file = "keys/missing"\n')

    code, _, err = bench(capsys, str(tiny_tflite), "--device", "pi5", "--device", "pi4", "--device", "local",
                         "--runs", "2", "--rounds", "1", "-o", "results.json", "--no-history")

    assert code == 1
    document = json.loads(open("results.json").read())
    runs = {run["device"]: run for run in document["runs"]}
    assert runs["local"]["status"] == "ok"
    assert runs["pi5"]["status"] == "failed" and runs["pi5"]["error"].startswith("unknown device 'pi5' (known: ")
    assert runs["pi4"]["status"] == "failed" and "[devices.pi4] identity_file" in runs["pi4"]["error"]
    assert document["devices"]["pi5"]["error"] == runs["pi5"]["error"]
    assert re.search(r"^edgeprune: pi5 \S+: unknown device 'pi5'", err, re.MULTILINE), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "nowhere"], "unknown device 'nowhere'"),
        (["--runs", "0"], "--runs"),
        ([], None),
    ],
)
def test_bad_bench_input_is_one_line(capsys, isolated_cwd, tiny_tflite, args, message):
    paths = [] if not args else [str(tiny_tflite)]
    code, _, err = bench(capsys, *paths, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error:")
    assert message is None or message in lines[0]
    assert not (isolated_cwd / "results.json").exists()


def test_runs_is_the_total_split_across_rounds(capsys, isolated_cwd, tiny_tflite):
    code, _, err = bench(capsys, str(tiny_tflite), "--runs", "10", "--warmup", "0", "-o", "r.json", "--no-history")
    assert code == 0, err
    [run] = json.loads(open("r.json").read())["runs"]
    assert run["latency_ms"]["n"] == 10 and len(run["samples_ms"]) == 10 and run["rounds"]["done"] == 3


def test_fewer_runs_than_rounds_fill_fewer_rounds(capsys, isolated_cwd, tiny_tflite):
    code, _, err = bench(capsys, str(tiny_tflite), "--runs", "2", "--warmup", "0", "-o", "r.json", "--no-history")
    assert code == 0, err
    document = json.loads(open("r.json").read())
    assert document["settings"]["rounds"] == 2 and document["runs"][0]["latency_ms"]["n"] == 2


def test_round_shares_add_up_to_the_runs_asked_for():
    from edgeprune.bench.plan import BenchPlan

    for runs, rounds, shares in [(10, 3, [4, 3, 3]), (12, 3, [4, 4, 4]), (3, 3, [1, 1, 1]), (7, 1, [7]),
                                 (100, 7, [15, 15, 14, 14, 14, 14, 14])]:
        plan = BenchPlan(runs=runs, rounds=rounds)
        assert [plan.round_settings(index, 1, True).runs for index in range(rounds)] == shares


def test_variants_picks_variants_of_export_folders(capsys, isolated_cwd, digits_export):
    code, out, err = bench(capsys, str(digits_export), "--variants", "fp32,int8", "--runs", "1", "--rounds", "1",
                           "-o", "r.json", "--no-history")
    assert code == 0, err
    assert sorted(run["variant"] for run in json.loads(open("r.json").read())["runs"]) == ["fp32", "int8"]


@pytest.mark.parametrize("variants, message", [
    ("fp32,bogus", "argument --variants: unknown variant 'bogus' (choose from all, fp32, "),
    (",", "argument --variants: empty list"),
    ("int8-dynamic-sparse", "no variant of the given export folders is one of --variants int8-dynamic-sparse "
                            "(they offer: fp32, fp32-sparse, fp16, fp16-sparse, int8-dynamic, int8)"),
])
def test_variants_that_select_nothing_are_one_clear_line(capsys, isolated_cwd, digits_export, variants, message):
    code, _, err = bench(capsys, str(digits_export), "--variants", variants, "-o", "r.json")
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (isolated_cwd / "r.json").exists()


def test_variants_leaves_the_others_unread_and_loose_files_in(capsys, isolated_cwd, digits_export, tiny_tflite):
    export = isolated_cwd / "digits_cnn"
    shutil.copytree(digits_export, export)
    (export / "int8.tflite").unlink()  # not asked for: never read, so its absence cannot stop the bench
    loose = isolated_cwd / "palm.tflite"
    shutil.copy(tiny_tflite, loose)
    code, _, err = bench(capsys, str(export), str(loose), "--variants", "fp32", "--runs", "1", "--rounds", "1",
                         "-o", "r.json", "--no-history")
    assert code == 0, err
    runs = json.loads(open("r.json").read())["runs"]
    assert sorted(f"{run['model']}/{run['variant']}" for run in runs) == ["digits_cnn/fp32", "palm/as-is"]
