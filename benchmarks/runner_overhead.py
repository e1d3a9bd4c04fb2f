"""What a runner call costs beyond the measurement itself: a fresh runner per call against one ``serve`` per bench.

Both designs are driven through the library's ``RunnerClient`` on the same opened devices, the same uploaded
files and the same settings, round by round in alternating order so that drift on a shared machine hits both:

* ``fresh``: ``RunnerClient(fresh_processes=True)``, a new SSH channel and a new Python that imports numpy and
  the runtime for every measurement (the design before ``serve``);
* ``served``: the default, one ``edgeprune_runner.py serve`` per device and bench that imports once and forks a
  child per measurement, on one SSH channel; its start-up is counted in its first call, its shutdown in the total.

Devices: ``local``; ``loopback``, this interpreter over a real OpenSSH ``sshd`` on 127.0.0.1
(``tests/fixtures/sshd.py``); ``pi4``, the emulated Cortex-A72 board (``scripts/emulated-board.sh``, root only,
started if it is down and stopped again afterwards; ``--skip-board`` leaves it out).

Per device and design it prints the wall time of all calls, the time spent inside model loading and invokes (the
runner's ``init_ns``, ``first_invoke_ns`` and ``samples_ns``; the plan has no warm-up, so no invoke goes
untimed), the overhead per call (the difference divided by the calls), the median peak RSS, and per device the
ratio of the two designs' p50 latencies on each variant (the measurement must not change: 0.97-1.03). Goals
(issue 17): overhead per call at most 0.25 s on the emulated board and 30 ms over loopback SSH.

Run from the repository root (needs /usr/sbin/sshd and ssh-keygen; root for the board):

    .venv/bin/python benchmarks/runner_overhead.py [--rounds N] [--skip-board]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeprune.board.cache import DeviceCache
from edgeprune.board.runner import BenchSettings, RunnerClient
from edgeprune.convert.export import ExportRequest, export
from edgeprune.devices.base import Device
from edgeprune.devices.inventory import Inventory
from edgeprune.reports.table import format_table
from edgeprune.variants import parse_variant_list

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the sshd fixture's helpers and the board's alias: reuse them

from fixtures.board import BOARD_ALIAS, BOOT_TIMEOUT_S, SCRIPT as BOARD_SCRIPT  # noqa: E402
from fixtures.sshd import ALIAS, SSHClientFiles, generate_key, start_sshd  # noqa: E402

MODEL = REPO / "models" / "mobilenet_digits.keras"
CALIBRATION = REPO / "models" / "mobilenet_digits_calibration.npz"
VARIANTS = "fp32,fp32-sparse,fp16,fp16-sparse,int8-dynamic,int8,int8-sparse"  # the 7 the sample ships
SETTINGS = BenchSettings(threads=1, warmup=0, runs=30, min_seconds=0.0, xnnpack=True, timeout_s=600.0)
DESIGNS = ("fresh", "served")
GOALS_S = {"pi4": 0.25, "loopback": 0.030}
P50_RATIO_RANGE = (0.97, 1.03)


@dataclass
class DesignCost:
    """One design's calls on one device."""
    calls: int = 0
    wall_s: float = 0.0
    inside_s: float = 0.0  # model loading and invokes, as the runner timed them
    p50_ms: dict[str, list[float]] = field(default_factory=dict)  # per variant, one per round
    peak_rss_mb: list[float] = field(default_factory=list)

    @property
    def overhead_per_call_s(self) -> float:
        return (self.wall_s - self.inside_s) / self.calls


def export_sample(outdir: Path) -> dict[str, Path]:
    manifest = export(ExportRequest(MODEL, outdir, parse_variant_list(VARIANTS), CALIBRATION),
                      progress=lambda message: print(f"  export: {message}", file=sys.stderr))
    invalid = [record.name for record in manifest.variants if not record.valid]
    if invalid:
        raise SystemExit(f"export produced invalid variants: {', '.join(invalid)}")
    return {record.name: outdir / f"{record.name}.tflite" for record in manifest.variants}


def measure_device(device: Device, models: dict[str, Path], rounds: int) -> dict[str, DesignCost]:
    """Like a bench: one client per design for all rounds (the served one starts its server in its first call and
    ends it after its last), the designs taking turns round by round."""
    cache = DeviceCache(device)
    runner = cache.ensure_runner()
    remote = {name: cache.ensure(path) for name, path in models.items()}
    costs = {design: DesignCost() for design in DESIGNS}
    clients = {design: RunnerClient(device, runner, fresh_processes=design == "fresh") for design in DESIGNS}
    try:
        for round_index in range(rounds):
            for design in DESIGNS if round_index % 2 == 0 else DESIGNS[::-1]:
                cost, client = costs[design], clients[design]
                started = time.perf_counter()
                for name, path in remote.items():
                    reply = client.bench(path, SETTINGS)
                    samples = reply["samples_ns"]
                    cost.calls += 1
                    cost.inside_s += (reply["init_ns"] + reply["first_invoke_ns"] + sum(samples)) / 1e9
                    cost.p50_ms.setdefault(name, []).append(statistics.median(samples) / 1e6)
                    if reply["peak_rss_mb"] is not None:
                        cost.peak_rss_mb.append(reply["peak_rss_mb"])
                    print(f"  {device.name} round {round_index + 1}/{rounds} {design} {name}", file=sys.stderr)
                cost.wall_s += time.perf_counter() - started
    finally:
        for design, client in clients.items():
            started = time.perf_counter()
            client.close()
            costs[design].wall_s += time.perf_counter() - started
    return costs


def p50_ratios(costs: dict[str, DesignCost]) -> dict[str, float]:
    """served p50 / fresh p50 per variant, each the median over the rounds."""
    fresh, served = costs["fresh"].p50_ms, costs["served"].p50_ms
    return {name: statistics.median(served[name]) / statistics.median(fresh[name]) for name in fresh}


def write_client_files(home: Path, cwd: Path, loopback_server, board: dict[str, str] | None) -> None:
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(parents=True, mode=0o700)
    files = SSHClientFiles(home=home, config=dot_ssh / "config", known_hosts=dot_ssh / "known_hosts", alias=ALIAS)
    files.point_alias_at(loopback_server)
    files.trust_only(loopback_server.known_hosts_line())
    devices = (f'[devices.local]\nworkdir = "{cwd / "local-workdir"}"\n\n'
               f'[devices.loopback]\nhost = "{ALIAS}"\npython = "{sys.executable}"\n'
               f'workdir = "{cwd / "loopback-workdir"}"\n')
    if board:
        with files.config.open("a") as config:
            config.write("\n" + Path(board["EDGEPRUNE_BOARD_SSH_CONFIG"]).read_text())
        devices += (f'\n[devices.pi4]\nhost = "{BOARD_ALIAS}"\npython = "{board["EDGEPRUNE_BOARD_PYTHON"]}"\n'
                    f'workdir = "/root/edgeprune-runner-overhead"\n')
    (cwd / "edgeprune.toml").write_text(devices)


def board_command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(BOARD_SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def start_board() -> tuple[dict[str, str], bool]:
    """The board's env values, and whether this run started it (and so stops it)."""
    if os.geteuid() != 0:
        raise SystemExit("the emulated board needs root: run as root or pass --skip-board")
    was_up = board_command("status").returncode == 0
    if not was_up:
        print("  starting the emulated board (a cold build takes minutes)", file=sys.stderr)
        started = board_command("up", timeout=BOOT_TIMEOUT_S)
        if started.returncode != 0:
            raise SystemExit(f"the emulated board did not start:\n{started.stderr[-2000:]}")
    values = dict(line.split("=", 1) for line in board_command("env").stdout.splitlines() if "=" in line)
    return {key: value.strip("'\"") for key, value in values.items()}, not was_up


def print_results(results: dict[str, dict[str, DesignCost]], rounds: int) -> list[str]:
    rows, failures = [], []
    for device, costs in results.items():
        ratios = p50_ratios(costs)
        for design in DESIGNS:
            cost = costs[design]
            rows.append([device, design, cost.calls, f"{cost.wall_s:.2f}", f"{cost.inside_s:.2f}",
                         f"{1000 * cost.overhead_per_call_s:.1f}",
                         f"{statistics.median(cost.peak_rss_mb):.1f}" if cost.peak_rss_mb else "-",
                         f"{statistics.median(ratios.values()):.3f}" if design == "served" else ""])
        overhead = costs["served"].overhead_per_call_s
        if device in GOALS_S and overhead > GOALS_S[device]:
            failures.append(f"{device}: {1000 * overhead:.1f} ms per call, goal {1000 * GOALS_S[device]:.0f} ms")
        low, high = P50_RATIO_RANGE
        outside = {name: ratio for name, ratio in ratios.items() if not low <= ratio <= high}
        if not low <= statistics.median(ratios.values()) <= high:
            failures.append(f"{device}: median p50 ratio served/fresh outside {low}-{high} ({outside})")
    print(f"\n{MODEL.name}, variants {VARIANTS}; per call {SETTINGS.runs} timed runs, no warm-up, 1 thread, "
          f"XNNPACK on; {rounds} rounds per design, designs alternating\n")
    print(format_table(["device", "design", "calls", "wall s", "inside s", "overhead/call ms", "peak RSS MB",
                        "p50 served/fresh"], rows))
    for device, costs in results.items():
        ratios = p50_ratios(costs)
        print(f"\n{device}: p50 served/fresh per variant: "
              + ", ".join(f"{name} {ratio:.3f}" for name, ratio in ratios.items()))
        fresh, served = costs["fresh"].overhead_per_call_s, costs["served"].overhead_per_call_s
        print(f"{device}: overhead per call {1000 * fresh:.1f} ms -> {1000 * served:.1f} ms "
              f"({fresh / served:.1f}x less)")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per design and device (default 3)")
    parser.add_argument("--skip-board", action="store_true", help="leave out the emulated board")
    args = parser.parse_args()
    board, started_board = (None, False) if args.skip_board else start_board()
    results: dict[str, dict[str, DesignCost]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="edgeprune-runner-overhead-") as folder:
            scratch = Path(folder)
            models = export_sample(scratch / "mobilenet_digits")
            server = start_sshd(scratch / "sshd", client_key=generate_key(scratch / "id_ed25519", "edgeprune-bench"))
            saved_environ, saved_cwd = dict(os.environ), Path.cwd()
            try:
                (scratch / "cwd").mkdir()
                write_client_files(scratch / "home", scratch / "cwd", server, board)
                os.environ["HOME"] = str(scratch / "home")
                os.environ.pop("SSH_AUTH_SOCK", None)
                os.environ.pop("EDGEPRUNE_INVENTORY", None)
                os.chdir(scratch / "cwd")
                inventory = Inventory.load()
                for name in ("local", "loopback") + (("pi4",) if board else ()):
                    device = inventory.open(name)
                    try:
                        results[name] = measure_device(device, models, args.rounds)
                    finally:
                        device.close()
            finally:
                os.chdir(saved_cwd)
                os.environ.clear()
                os.environ.update(saved_environ)
                server.stop()
    finally:
        if started_board:
            board_command("down")
    failures = print_results(results, args.rounds)
    print("\nVERDICT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
