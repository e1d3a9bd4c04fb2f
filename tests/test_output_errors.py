"""Output paths that cannot be written: one line naming the path and what to do, exit 2, never a traceback.

The unwritable place is a path under a regular file: that stops root too (CI runs the tests as root, whom a
chmod-ed folder does not stop).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgeprune.results.latency import Latency
from edgeprune.cli import main
from fixtures.models import MODELS
from fixtures.privileges import unprivileged
from edgeprune.errors import UsageError
from edgeprune.fsutil import os_reason, write_json_atomic
from edgeprune.results.document import ResultsDocument, RunRecord

BLOCKER = "blocker"  # a regular file, made by the fixture below, where a folder would have to be


@pytest.fixture
def blocked_cwd(isolated_cwd: Path) -> Path:
    """An isolated folder with a one-run results file, a policy it passes, the file ``blocker`` and a folder."""
    run = RunRecord(device="local", model="digits_cnn", variant="int8", model_sha256=None, size_bytes=100_000,
                    threads=1, xnnpack=True, status="ok", latency_ms=Latency.from_values([4.0, 4.1, 4.2]))
    write_json_atomic(Path("results.json"), ResultsDocument(created="2025-01-01T00:00:00+00:00", settings={},
                                                            runs=[run]).to_json())
    Path("policy.toml").write_text("[defaults]\nmax_p50_ms = 20\n", encoding="utf-8")
    Path(BLOCKER).write_text("not a folder\n", encoding="utf-8")
    Path("folder").mkdir()
    return isolated_cwd


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("edgeprune: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["gate", "results.json", "--policy", "policy.toml", "--junit", f"{BLOCKER}/gate.xml"],
     f"cannot write JUnit file '{BLOCKER}/gate.xml': '{BLOCKER}' is a file, not a folder (choose a writable path)"),
    (["gate", "results.json", "--policy", "policy.toml", "--junit", f"{BLOCKER}/ci/gate.xml"],
     f"cannot write JUnit file '{BLOCKER}/ci/gate.xml': '{BLOCKER}' is a file, not a folder (choose a writable path)"),
    (["report", "results.json", "-o", f"{BLOCKER}/report.html"],
     f"cannot write HTML report '{BLOCKER}/report.html': '{BLOCKER}' is a file, not a folder (choose a writable "
     "path)"),
    (["report", "results.json", "-o", "folder"],
     "cannot write HTML report 'folder': Is a directory (choose a writable path)"),
    (["report", "results.json", "--markdown", f"{BLOCKER}/report.md"],
     f"cannot write Markdown report '{BLOCKER}/report.md': '{BLOCKER}' is a file, not a folder (choose a writable "
     "path)"),
])
def test_unwritable_gate_and_report_outputs_exit_2_naming_the_path(blocked_cwd, capsys, argv, message):
    assert main(argv) == 2
    assert one_error_line(capsys) == f"edgeprune: error: {message}"
    assert not [path.name for path in blocked_cwd.iterdir() if path.name.startswith(".")]  # no temp file left


def test_unwritable_step_summary_is_a_warning_and_the_verdict_stands(blocked_cwd, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(blocked_cwd / BLOCKER / "summary.md"))
    assert main(["gate", "results.json", "--policy", "policy.toml"]) == 0
    captured = capsys.readouterr()
    assert "gate passed" in captured.out and "Traceback" not in captured.err
    assert captured.err == (f"edgeprune: warning: cannot append the gate summary to $GITHUB_STEP_SUMMARY file "
                            f"'{blocked_cwd / BLOCKER / 'summary.md'}': '{blocked_cwd / BLOCKER}' is a file, not a "
                            "folder; the gate verdict is unaffected\n")
    Path("policy.toml").write_text("[defaults]\nmax_p50_ms = 1\n", encoding="utf-8")
    assert main(["gate", "results.json", "--policy", "policy.toml"]) == 1  # a failure stays a failure
    assert "gate FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (["-o", f"{BLOCKER}/results.json", "--no-history"],
     f"cannot write results file '{BLOCKER}/results.json': '{BLOCKER}' is a file, not a folder (choose a writable path)"),
    (["-o", "results.json", "--history", f"{BLOCKER}/history"],
     f"cannot create the results history in '{BLOCKER}/history': '{BLOCKER}' is a file, not a folder "
     "(choose a writable folder with --history DIR; bench also takes --no-history)"),
])
def test_unwritable_bench_outputs_exit_2_before_measuring(blocked_cwd, capsys, tiny_tflite, options, message):
    Path("results.json").unlink()
    assert main(["bench", str(tiny_tflite), "--runs", "1", "--rounds", "1", *options]) == 2
    assert one_error_line(capsys) == f"edgeprune: error: {message}"
    assert not Path("results.json").exists()


def test_default_history_folder_that_cannot_be_made_exits_2(isolated_cwd, capsys, tiny_tflite):
    Path(".edgeprune").write_text("a file where the history folder goes\n", encoding="utf-8")
    assert main(["bench", str(tiny_tflite), "--runs", "1", "--rounds", "1"]) == 2
    assert one_error_line(capsys) == ("edgeprune: error: cannot create the results history in '.edgeprune': "
                                      "'.edgeprune' is a file, not a folder (choose a writable folder with --history DIR; bench also takes --no-history)")
    assert not Path("results.json").exists()


TOO_LONG = "x" * 300  # a file name no file system takes: looking at a path under it fails, for root too


def test_an_output_path_that_cannot_be_looked_at_exits_2_with_the_os_reason(blocked_cwd, capsys, tiny_tflite):
    Path("results.json").unlink()
    assert main(["bench", str(tiny_tflite), "--runs", "1", "--rounds", "1", "-o", f"{TOO_LONG}/results.json",
                 "--no-history"]) == 2
    assert one_error_line(capsys) == (f"edgeprune: error: cannot write results file '{TOO_LONG}/results.json': "
                                      "File name too long (choose a writable path)")


def test_a_step_summary_that_cannot_be_looked_at_is_still_only_a_warning(blocked_cwd, capsys, monkeypatch):
    summary = blocked_cwd / TOO_LONG / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["gate", "results.json", "--policy", "policy.toml"]) == 0
    captured = capsys.readouterr()
    assert "gate passed" in captured.out
    assert captured.err == (f"edgeprune: warning: cannot append the gate summary to $GITHUB_STEP_SUMMARY file "
                            f"'{summary}': File name too long; the gate verdict is unaffected\n")




def test_a_folder_the_user_may_not_enter_gives_the_os_reason_not_a_traceback():
    """-o /root/x/results.json as a user: the walk looking for a file in the way must not raise."""
    with tempfile.TemporaryDirectory() as base:
        locked = Path(base) / "locked"
        locked.mkdir(mode=0o700)
        os.chmod(base, 0o755)
        os.chmod(locked, 0o000)
        target = locked / "x" / "results.json"
        try:
            with unprivileged():
                with pytest.raises(PermissionError) as raised:
                    target.parent.exists()  # the premise: merely looking raises
                assert os_reason(raised.value, target.parent) == "Permission denied"
                with pytest.raises(UsageError) as error:
                    write_json_atomic(target, {}, what="results file")
            assert error.value.message == f"cannot write results file '{target}': Permission denied"
        finally:
            os.chmod(locked, 0o700)


def test_os_reason_falls_back_to_the_exception_text():
    assert os_reason(PermissionError(13, "Permission denied"), Path(TOO_LONG) / "x") == "Permission denied"
    assert os_reason(OSError("no strerror"), Path(TOO_LONG)) == "no strerror"


def test_a_usage_error_names_the_command_once(capsys):
    assert main(["bench", "--threads", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "edgeprune: error: argument --threads: 0 is not between 1 and 1024 (see 'edgeprune bench --help')\n"


def test_the_top_level_help_speaks_to_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "bench them on devices over SSH" in out and "Exit status: 0 ok" in out
    assert "``" not in out and "argument parsing" not in out  # not the module docstring, meant for developers


def run_cli_in_fresh_process(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """As a user runs it: a new process, none of the test session's TensorFlow settings in the environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "EDGEPRUNE_"))}
    return subprocess.run([sys.executable, "-m", "edgeprune", *args], capture_output=True, text=True, cwd=tmp_path,
                          env=env)


@pytest.mark.slow
def test_a_run_that_loads_tensorflow_prints_no_tensorflow_log(tmp_path):
    done = run_cli_in_fresh_process(tmp_path, "inspect", str(MODELS / "digits_cnn.keras"))
    assert done.returncode == 0 and "totals:" in done.stdout
    assert done.stderr == ""  # no cuInit error, no oneDNN or CPU-feature notices


@pytest.mark.slow
def test_an_error_after_tensorflow_loaded_is_still_one_line(tmp_path):
    np.savez(tmp_path / "wrong.npz", x=np.zeros((4, 3), np.float32))
    done = run_cli_in_fresh_process(tmp_path, "export", str(MODELS / "digits_cnn.keras"), "-o", "out",
                                    "--calibration", "wrong.npz")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "edgeprune: error: 'wrong.npz': array 'x' has shape [4, 3], the model expects [N, 8, 8, 1]"], done.stderr
