"""What reaching a board over SSH costs a bench, against the same bench on ``local``, in one run.

Starts a real OpenSSH ``sshd`` on 127.0.0.1 (``tests/fixtures/sshd.py``), points a temporary HOME's
``~/.ssh/config`` alias and ``known_hosts`` at it, and writes an ``edgeprune.toml`` in a temporary working
folder with a device ``board`` on that alias (``python`` = this interpreter, a temporary workdir) and ``local``
with its own temporary workdir. It exports three variants of ``models/mobilenet_digits.keras`` through the
library API, then benches them alternately on ``local`` and ``board``, twice each (cold cache, then cached).

Per bench it prints the device's wall time, the time the runner processes report for themselves
(``runner_seconds``), the overhead (wall minus runner: connecting, uploads, the board lock, process start and
transport) in total and per runner call, and the bytes uploaded. A cached (second) bench must upload nothing.
Last, the round trip of a no-op command (``true``) on each device over an open connection: the fixed cost that
every runner call pays before the runner even starts.

Run from the repository root (needs /usr/sbin/sshd and ssh-keygen):

    .venv/bin/python benchmarks/ssh_overhead.py
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeprune.bench.run import BenchRequest, bench
from edgeprune.bench.plan import BenchPlan
from edgeprune.convert.export import ExportRequest, export
from edgeprune.variants import parse_variant_list
from edgeprune.devices.inventory import Inventory
from edgeprune.reports.table import format_table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the sshd fixture's helpers are plain functions: reuse them

from fixtures.sshd import ALIAS, SSHClientFiles, SSHServer, generate_key, start_sshd

MODEL = REPO / "models" / "mobilenet_digits.keras"
VARIANTS = "fp32,fp32-sparse,fp16"
BOARD = "board"
LOCAL = "local"
PLAN = BenchPlan(runs=60, warmup=5, rounds=3, threads=(1,))
NOOP_REPEATS = 10


@dataclass(frozen=True)
class BenchCost:
    device: str
    attempt: str
    wall_seconds: float
    runner_seconds: float
    runner_calls: int
    uploaded_bytes: int

    @property
    def overhead_seconds(self) -> float:
        return self.wall_seconds - self.runner_seconds

    @property
    def overhead_per_call_ms(self) -> float:
        return 1000 * self.overhead_seconds / self.runner_calls


def write_ssh_home(home: Path, server: SSHServer) -> None:
    """Like the ``ssh_home`` fixture: the alias reaches ``server``, whose host key is already trusted."""
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(parents=True, mode=0o700)
    files = SSHClientFiles(home=home, config=dot_ssh / "config", known_hosts=dot_ssh / "known_hosts", alias=ALIAS)
    files.point_alias_at(server)
    files.trust_only(server.known_hosts_line())


def write_inventory(folder: Path) -> None:
    (folder / "edgeprune.toml").write_text(
        f'[devices.{BOARD}]\nhost = "{ALIAS}"\npython = "{sys.executable}"\nworkdir = "{folder / "board-workdir"}"\n\n'
        f'[devices.{LOCAL}]\nworkdir = "{folder / "local-workdir"}"\n'
    )


@contextlib.contextmanager
def client_environment(home: Path, cwd: Path) -> Iterator[None]:
    """HOME and cwd as edgeprune will read them (~/.ssh/config, ./edgeprune.toml), restored afterwards."""
    saved_environ, saved_cwd = dict(os.environ), Path.cwd()
    os.environ["HOME"] = str(home)
    os.environ.pop("SSH_AUTH_SOCK", None)  # the developer's agent must not be what logs in
    os.environ.pop("EDGEPRUNE_INVENTORY", None)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)


def export_sample(outdir: Path) -> None:
    manifest = export(ExportRequest(MODEL, outdir, parse_variant_list(VARIANTS)))
    invalid = [record.name for record in manifest.variants if not record.valid]
    if invalid:
        raise SystemExit(f"export produced invalid variants: {', '.join(invalid)}")


def bench_cost(export_dir: Path, device: str, attempt: str) -> BenchCost:
    document = bench(BenchRequest([export_dir], plan=PLAN, devices=[device]),
                     progress=lambda name, message: print(f"  {name} ({attempt}): {message}", file=sys.stderr))
    failed = [run.error for run in document.runs if not run.ok]
    if failed:
        raise SystemExit(f"bench on {device} failed: {failed[0]}")
    summary = document.devices[device]
    # One probe, then one measurement per variant and round (the lock holder and the runner server's start-up
    # report no runner time: they count as overhead).
    calls = 1 + len(document.runs) * PLAN.rounds
    return BenchCost(device, attempt, summary["wall_seconds"], summary["runner_seconds"], calls,
                     summary["uploaded_bytes"])


def measure(export_dir: Path) -> list[BenchCost]:
    """local and board alternate, so drift on this shared machine hits both alike."""
    return [bench_cost(export_dir, device, attempt)
            for attempt in ("1st (cold cache)", "2nd (cached)") for device in (LOCAL, BOARD)]


def noop_command_ms(device_name: str) -> float:
    """Median round trip of ``true`` over an already open connection: the floor under every runner call."""
    device = Inventory.load().open(device_name)
    try:
        device.run(["true"], timeout=30)  # connects (SSH): not part of the per-command floor
        durations = []
        for _ in range(NOOP_REPEATS):
            started = time.perf_counter()
            device.run(["true"], timeout=30)
            durations.append(time.perf_counter() - started)
    finally:
        device.close()
    return 1000 * statistics.median(durations)


def print_table(costs: list[BenchCost]) -> None:
    print(format_table(
        ["device", "bench", "wall s", "runner s", "overhead s", "calls", "overhead/call ms", "uploaded bytes"],
        [[cost.device, cost.attempt, f"{cost.wall_seconds:.2f}", f"{cost.runner_seconds:.2f}",
          f"{cost.overhead_seconds:.2f}", cost.runner_calls, f"{cost.overhead_per_call_ms:.1f}",
          f"{cost.uploaded_bytes:,}"] for cost in costs]))


def verdict(costs: list[BenchCost]) -> str:
    cached = {cost.device: cost for cost in costs if cost.attempt.startswith("2nd")}
    reuploads = {device: cost.uploaded_bytes for device, cost in cached.items() if cost.uploaded_bytes}
    ssh_extra_ms = cached[BOARD].overhead_per_call_ms - cached[LOCAL].overhead_per_call_ms
    caching = "cached benches uploaded 0 bytes" if not reuploads else f"cached benches RE-UPLOADED {reuploads}"
    status = "PASS" if not reuploads else "FAIL"
    return f"{status}: {caching}; SSH adds {ssh_extra_ms:.1f} ms per runner call over local (cached benches)"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgeprune-ssh-overhead-") as folder:
        scratch = Path(folder)
        server = start_sshd(scratch / "sshd", client_key=generate_key(scratch / "id_ed25519", "edgeprune-bench"))
        try:
            write_ssh_home(scratch / "home", server)
            (scratch / "cwd").mkdir()
            write_inventory(scratch / "cwd")
            export_dir = scratch / "mobilenet_digits"
            export_sample(export_dir)
            with client_environment(scratch / "home", scratch / "cwd"):
                costs = measure(export_dir)
                floors = {device: noop_command_ms(device) for device in (LOCAL, BOARD)}
            logins = server.logins()
        finally:
            server.stop()
    print(f"\n{MODEL.name} variants {VARIANTS}; {PLAN.runs} runs + {PLAN.warmup} warmup in {PLAN.rounds} rounds, "
          f"1 thread; board = {sys.executable} over OpenSSH on 127.0.0.1 ({logins} SSH logins in all)\n")
    print_table(costs)
    print(f"\nNo-op command ('true') over an open connection, median of {NOOP_REPEATS}: "
          f"{LOCAL} {floors[LOCAL]:.1f} ms, {BOARD} {floors[BOARD]:.1f} ms")
    print(f"\nVERDICT: {verdict(costs)}")


if __name__ == "__main__":
    main()
