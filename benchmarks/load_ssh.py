"""Load: one bench over 8 SSH boards x 4 variants at once, against the same bench over 1 board.

Starts 8 real OpenSSH ``sshd`` servers on 127.0.0.1 (``tests/fixtures/sshd.py``), each a "board" whose python is
this interpreter, trusts their host keys in a temporary HOME, and converts a tiny Dense classifier into 4
variants (fp32, fp16, dynamic-range int8, full int8). Then it runs ``edgeprune bench`` as a CLI process, the
1-board bench and the 8-board bench (``--tag load``) alternately, each with fresh workdirs (cold caches, so
uploads count too), and prints per bench:

- the wall time of the whole process and the slowest device's own wall time,
- the CPU time the whole machine spent meanwhile (bench, sshd sessions and runners: the boards' work is here),
- the runs kept in the results file and in the history, and how many are ok.

The boards all run on this machine, so they share its cores: the ideal for 8 real boards is the 1-board wall
time, while here the wall time cannot go below the CPU time spent divided by the cores. Both bounds are printed.

Run from the repository root (needs /usr/sbin/sshd and ssh-keygen):

    .venv/bin/python benchmarks/load_ssh.py
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the sshd fixture's helpers are plain functions: reuse them

from edgeprune.reports.table import format_table  # noqa: E402
from fixtures.models import build_tiny_classifier, convert  # noqa: E402
from fixtures.sshd import SSHServer, generate_key, start_sshd  # noqa: E402

BOARDS = 8
TAG = "load"
BENCH_OPTIONS = ["--runs", "20", "--warmup", "2", "--rounds", "2", "--threads", "1"]
REPEATS = 2


@dataclass(frozen=True)
class LoadResult:
    boards: int
    wall_seconds: float
    slowest_device_seconds: float
    cpu_seconds: float
    runs_in_results: int
    runs_ok: int
    runs_in_history: int


def make_variants(folder: Path) -> Path:
    import numpy as np

    from edgeprune import tfenv

    tf = tfenv.tensorflow()
    model = build_tiny_classifier()
    variants = folder / "tiny"
    variants.mkdir()
    (variants / "fp32.tflite").write_bytes(convert(model))
    calibration = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    (variants / "int8.tflite").write_bytes(convert(model, int8_calibration=calibration))
    for name, supported_types in (("fp16", [tf.float16]), ("int8-dynamic", [])):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = supported_types
        (variants / f"{name}.tflite").write_bytes(converter.convert())
    return variants


def write_home(home: Path, servers: list[SSHServer]) -> None:
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(parents=True, mode=0o700)
    (dot_ssh / "known_hosts").write_text("".join(server.known_hosts_line() for server in servers))


def write_inventory(folder: Path, servers: list[SSHServer], attempt: str) -> None:
    """Boards ``b0``..``b7`` tagged ``load``; fresh workdirs per attempt, so every bench starts cold."""
    entries = [
        f'[devices.b{index}]\nhost = "{server.host}"\nport = {server.port}\nuser = "{server.user}"\n'
        f'identity_file = "{server.client_key}"\npython = "{sys.executable}"\n'
        f'workdir = "{folder / "workdirs" / attempt / f"b{index}"}"\ntags = ["{TAG}"]\n'
        for index, server in enumerate(servers)
    ]
    (folder / "edgeprune.toml").write_text("\n".join(entries))


def busy_cpu_seconds() -> float:
    """CPU time this machine has spent on anything but idling, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_bench(folder: Path, home: Path, variants: Path, boards: int, attempt: str) -> LoadResult:
    results = folder / f"results-{attempt}.json"
    selection = ["--tag", TAG] if boards == BOARDS else ["--device", "b0"]
    environment = {**os.environ, "HOME": str(home)}
    environment.pop("SSH_AUTH_SOCK", None)
    started, cpu_before = time.perf_counter(), busy_cpu_seconds()
    completed = subprocess.run(
        [sys.executable, "-m", "edgeprune", "bench", *map(str, sorted(variants.glob("*.tflite"))), *selection,
         *BENCH_OPTIONS, "-o", str(results), "--label", attempt, "--history", str(folder / "history"),
         "--inventory", str(folder / "edgeprune.toml")],  # not a $EDGEPRUNE_INVENTORY of the caller's
        cwd=folder, env=environment, capture_output=True, text=True, check=False,
    )
    wall, cpu = time.perf_counter() - started, busy_cpu_seconds() - cpu_before
    if completed.returncode != 0:
        raise SystemExit(f"bench {attempt} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    document = json.loads(results.read_text())
    history = sqlite3.connect(folder / "history" / "history.sqlite")
    try:
        (in_history,) = history.execute(
            "SELECT COUNT(*) FROM runs r JOIN benches b ON r.bench_id = b.id WHERE b.label = ?", (attempt,)
        ).fetchone()
    finally:
        history.close()
    devices = document["devices"].values()
    return LoadResult(
        boards=boards,
        wall_seconds=wall,
        slowest_device_seconds=max(device["wall_seconds"] for device in devices),
        cpu_seconds=cpu,
        runs_in_results=len(document["runs"]),
        runs_ok=sum(run["status"] == "ok" for run in document["runs"]),
        runs_in_history=in_history,
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgeprune-load-") as scratch:
        folder = Path(scratch)
        key = generate_key(folder / "id_ed25519", "edgeprune-load")
        servers = [start_sshd(folder / f"sshd-{index}", client_key=key) for index in range(BOARDS)]
        try:
            write_home(folder / "home", servers)
            variants = make_variants(folder)
            results = []
            for repeat in range(REPEATS):
                for boards in (1, BOARDS):  # alternately, so drift on this shared machine hits both alike
                    attempt = f"{boards}-boards-{repeat}"
                    write_inventory(folder, servers, attempt)
                    results.append(run_bench(folder, folder / "home", variants, boards, attempt))
                    print(f"  {attempt}: {results[-1].wall_seconds:.1f} s", file=sys.stderr)
        finally:
            for server in servers:
                server.stop()
    report(results)


def report(results: list[LoadResult]) -> None:
    variants = 4
    print(f"\n{BOARDS} loopback OpenSSH boards, {variants} tiny variants, bench options {' '.join(BENCH_OPTIONS)}; "
          f"{os.cpu_count()} CPU cores shared by every board\n")
    print(format_table(
        ["boards", "wall s", "slowest device s", "CPU s (machine)", "runs kept", "ok", "in history"],
        [[result.boards, f"{result.wall_seconds:.1f}", f"{result.slowest_device_seconds:.1f}",
          f"{result.cpu_seconds:.1f}", f"{result.runs_in_results}/{result.boards * variants}", result.runs_ok,
          result.runs_in_history] for result in results]))
    one = min(result.wall_seconds for result in results if result.boards == 1)
    many = [result for result in results if result.boards == BOARDS]
    eight = min(result.wall_seconds for result in many)
    cpu_bound = min(result.cpu_seconds for result in many) / (os.cpu_count() or 1)
    lost = [result for result in results if not (result.runs_in_results == result.runs_ok == result.runs_in_history
                                                  == result.boards * variants)]
    print(f"\n{BOARDS} boards: {eight:.1f} s wall vs 1 board: {one:.1f} s, ratio {eight / one:.2f} "
          f"(one board after another: about {BOARDS * one:.1f} s; the CPU time spent needs "
          f">= {cpu_bound:.1f} s on {os.cpu_count()} cores)")
    print(f"VERDICT: {'PASS' if not lost else 'FAIL'}: "
          + ("every run kept in results and history" if not lost else f"runs lost in {len(lost)} benches"))


if __name__ == "__main__":
    main()
