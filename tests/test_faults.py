"""Faults a bench must live through: each one gives a clear error for the device or variant it hits, and every
other result is kept.

The boards are real sshd servers on loopback (one of them inside a network namespace whose link the test takes
down); the benches are real ``edgeprune bench`` processes. Tests that need root (namespaces, tmpfs mounts) are
skipped without it, except under CI, where they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from edgeprune.cli import main
from edgeprune.board.lock import BoardLock
from edgeprune.board.runner import runner_script
from edgeprune.devices.local import LocalDevice
from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.devices.ssh.settings import SSHSettings
from edgeprune.errors import DeviceTimeout
from fixtures.frozen_exec_sshd import FrozenExecServer
from fixtures.held_runner import HeldRunner
from fixtures.sshd import SSHClientFiles, SSHServer, start_sshd
from test_documents_follow_schema import assert_follows_schema

pytestmark = pytest.mark.faults

WORKDIR = "device workdir"  # the bench_device fixture's workdir, under the test's folder


def require_root() -> None:
    if os.geteuid() == 0:
        return
    message = "needs root (network namespaces, tmpfs mounts)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# -- processes ---------------------------------------------------------------------------------------------------


def processes_with(*markers: str) -> list[int]:
    """Live processes whose command line contains every marker (the boards are this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended while we looked
        command_line = b" ".join(argv)
        if all(marker.encode() in command_line for marker in markers):
            found.append(int(entry.name))
    return found


def wait_until_none_with(marker: str, within: float = 120.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants: an sshd, its sessions and what they run."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def stop_sshd(server: SSHServer) -> None:
    """sshd stops as a service stop stops it: the listener first, gone before anything else happens (so no
    reconnect can reach it, however the scheduler orders the exits), then its sessions and what they run."""
    sessions = process_tree(server.process.pid)[1:]
    server.process.terminate()
    server.process.wait()
    for pid in sessions:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def signal_tree(root: int, signum: int) -> None:
    for pid in process_tree(root):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# -- benches and boards ------------------------------------------------------------------------------------------


class RunningBench:
    """An ``edgeprune bench`` process, its results file read while it runs."""

    def __init__(self, folder: Path, args: list[str], prefix: list[str] | None = None) -> None:
        self.results = folder / "results.json"
        self._stderr_path = folder / "bench.stderr"
        with self._stderr_path.open("w") as stderr:
            self.process = subprocess.Popen([*(prefix or []), sys.executable, "-m", "edgeprune", "bench", *args,
                                             "-o", str(self.results)], stdout=subprocess.DEVNULL, stderr=stderr)

    def runs(self, device: str | None = None) -> list[dict]:
        if not self.results.is_file():
            return []
        return [run for run in json.loads(self.results.read_text())["runs"] if device in (None, run["device"])]

    def hold(self, runner: HeldRunner) -> int:
        """The PID of the call ``runner`` holds, once it is held: it stays in progress until the test acts."""
        try:
            return runner.wait_until_held(self.process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the bench said:\n{self.stderr()}") from None

    def finish(self, within: float = 300.0) -> int:
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the bench did not end within {within:g} s:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return self._stderr_path.read_text()


@pytest.fixture(scope="session")
def slow_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32 and fp16 variants of a convolution stack taking milliseconds per invoke (made once).

    Slow enough that a fault lands in the middle of a round, few enough samples that results stay small.
    """
    from edgeprune import tfenv

    keras, tf = tfenv.tf_keras(), tfenv.tensorflow()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.Input((96, 96, 32)),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])
    folder = tmp_path_factory.mktemp("slow")
    (folder / "fp32.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    (folder / "fp16.tflite").write_bytes(converter.convert())
    return folder


@pytest.fixture
def variants(isolated_cwd: Path, slow_models: Path) -> list[str]:
    folder = isolated_cwd / "slow"
    shutil.copytree(slow_models, folder)
    return [str(folder / "fp32.tflite"), str(folder / "fp16.tflite")]


@pytest.fixture
def own_board(ssh_home: SSHClientFiles, ssh_client_key: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SSHServer]]:
    """Starts boards of the test's own (sshd servers it may kill, freeze or cut off), trusted by ``ssh_home``."""
    started: list[SSHServer] = []

    def start(netns: str | None = None) -> SSHServer:
        server = start_sshd(tmp_path_factory.mktemp("board"), client_key=ssh_client_key, netns=netns)
        started.append(server)
        with ssh_home.known_hosts.open("a") as known_hosts:
            known_hosts.write(server.known_hosts_line())
        return server

    yield start
    for server in started:
        signal_tree(server.process.pid, signal.SIGCONT)  # a frozen board must be able to die
        signal_tree(server.process.pid, signal.SIGKILL)
        server.process.wait()


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of the test's own, its loopback up; deleted afterwards."""
    require_root()
    name = f"edgeprune-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def write_inventory(folder: Path, board: SSHServer, python: Path) -> None:
    """``victim``, the board the fault hits (its runner started by ``python``), and ``local``, which must be
    unaffected."""
    (folder / "edgeprune.toml").write_text(
        f'[devices.local]\nworkdir = "{folder / "local workdir"}"\n\n'
        f'[devices.victim]\nhost = "{board.host}"\nport = {board.port}\nuser = "{board.user}"\n'
        f'identity_file = "{board.client_key}"\npython = "{python}"\nworkdir = "{folder / "victim workdir"}"\n'
    )


def use_python(folder: Path, python: Path) -> None:
    """Point the one device of ``bench_device``'s inventory at ``python``."""
    inventory = folder / "edgeprune.toml"
    lines = [line for line in inventory.read_text().splitlines() if not line.startswith("python = ")]
    inventory.write_text("\n".join([*lines, f'python = "{python}"']) + "\n")


# Two thread counts: the first group's runs land (and are kept) before the fault hits during the second, whose
# first call the victim's runner holds until the fault has struck.
TWO_GROUPS = ["--device", "victim", "--device", "local", "--threads", "1,2", "--rounds", "2", "--runs", "4",
              "--warmup", "1", "--min-seconds", "4"]


# The held call's time limit runs from its start: the fault must strike within it (a few polls of a file), so a
# generous limit keeps a busy machine from turning the test into a plain timeout.
HELD_CALL_TIMEOUT = "15"


def second_group_held(folder: Path) -> HeldRunner:
    return HeldRunner(folder / "held", "--threads 2")


def check_victim_lost_its_second_group(bench: RunningBench, *reasons: str) -> None:
    local = bench.runs("local")
    assert len(local) == 4 and all(run["status"] == "ok" for run in local), local
    victim = {(run["threads"], run["variant"]): run for run in bench.runs("victim")}
    assert len(victim) == 4
    for variant in ("fp32", "fp16"):
        assert victim[1, variant]["status"] == "ok", bench.stderr()
        failed = victim[2, variant]
        assert failed["status"] == "failed", bench.stderr()
        assert failed["error"].startswith(f"device 'victim', slow/{variant} (")
        assert any(reason in failed["error"] for reason in reasons), bench.stderr()
    stderr = bench.stderr()
    assert "edgeprune: victim slow/fp32:" in stderr and "Traceback" not in stderr


# -- the faults --------------------------------------------------------------------------------------------------


@pytest.mark.ssh
def test_sshd_stopped_in_the_middle_of_a_bench(isolated_cwd, variants, own_board) -> None:
    board = own_board()
    held = second_group_held(isolated_cwd)
    write_inventory(isolated_cwd, board, held.python)
    bench = RunningBench(isolated_cwd, [*variants, *TWO_GROUPS])
    bench.hold(held)

    stop_sshd(board)

    assert bench.finish() == 1
    check_victim_lost_its_second_group(bench, "lost the connection to", "cannot connect to")


@pytest.mark.ssh
def test_network_to_a_board_cut_in_the_middle_of_a_bench(isolated_cwd, variants, netns, own_board) -> None:
    board = own_board(netns=netns)  # the bench runs in that namespace too: both ends on its loopback
    held = second_group_held(isolated_cwd)
    write_inventory(isolated_cwd, board, held.python)
    bench = RunningBench(isolated_cwd, [*variants, *TWO_GROUPS, "--timeout", HELD_CALL_TIMEOUT],
                         prefix=["ip", "netns", "exec", netns])
    bench.hold(held)

    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "down"], check=True)  # packets now vanish

    assert bench.finish() == 1
    check_victim_lost_its_second_group(bench, f"ran longer than {HELD_CALL_TIMEOUT} s and could not be killed: "
                                       "the device does not answer",
                                       "cannot open an SSH session")


@pytest.mark.ssh
def test_a_board_that_stops_answering(isolated_cwd, variants, own_board) -> None:
    board = own_board()
    held = second_group_held(isolated_cwd)
    write_inventory(isolated_cwd, board, held.python)
    bench = RunningBench(isolated_cwd, [*variants, *TWO_GROUPS, "--timeout", HELD_CALL_TIMEOUT])
    bench.hold(held)

    signal_tree(board.process.pid, signal.SIGSTOP)  # frozen: connections stay open, nothing answers

    assert bench.finish() == 1
    frozen = f"ran longer than {HELD_CALL_TIMEOUT} s and could not be killed: the device does not answer"
    check_victim_lost_its_second_group(bench, frozen)
    # The call that met the frozen board waited; the one after it was not even tried (no second timeout).
    errors = sorted(run["error"].split(": ", 1)[1] for run in bench.runs("victim") if run["status"] == "failed")
    assert errors[0].endswith(frozen)
    assert errors[1] == f"not tried: lost earlier in this bench ('{held.python}' {frozen})"
    assert frozen in json.loads(bench.results.read_text())["devices"]["victim"]["error"]


@pytest.fixture
def frozen_exec_board(tmp_path: Path) -> Iterator[FrozenExecServer]:
    server = FrozenExecServer(tmp_path / "frozen board")
    yield server
    server.stop()


def test_a_board_that_freezes_as_a_command_starts_does_not_hang_it(frozen_exec_board, tmp_path, monkeypatch) -> None:
    board = frozen_exec_board
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # the developer's agent must not log the test in
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(board.known_hosts_line())
    settings = SSHSettings(identity_file=str(board.client_key), known_hosts=known_hosts,
                           ssh_config=tmp_path / "no ssh config", connect_timeout=2)
    device = SSHDevice("victim", host=board.host, port=board.port, user=board.user, settings=settings)
    started = time.monotonic()

    with pytest.raises(DeviceTimeout, match="did not answer within 2 s to start 'true'"):
        device.run(["true"], timeout=30)

    assert board.exec_requests == 1  # logged in and the session opened: only the command's start went unanswered
    assert time.monotonic() - started < 10
    device.close()


def test_the_runner_killed_on_the_board(isolated_cwd, bench_device, variants) -> None:
    fp16_sha = hashlib.sha256(Path(variants[1]).read_bytes()).hexdigest()
    held = HeldRunner(isolated_cwd / "held", f"{fp16_sha}.tflite")
    use_python(isolated_cwd, held.python)
    bench = RunningBench(isolated_cwd, [*variants, "--device", bench_device, "--rounds", "2", "--runs", "4",
                                        "--warmup", "1", "--min-seconds", "4"])

    os.kill(bench.hold(held), signal.SIGKILL)

    assert bench.finish() == 1
    runs = {run["variant"]: run for run in bench.runs()}
    assert runs["fp32"]["status"] == "ok" and finished(runs["fp32"])  # its second round after fp16's crash
    assert runs["fp16"]["status"] == "failed"
    assert runs["fp16"]["error"].startswith(f"device '{bench_device}', slow/fp16 (")
    assert "runner was killed by" in runs["fp16"]["error"] and "without a reply" in runs["fp16"]["error"]


def test_a_runner_killed_in_a_later_round_keeps_the_rounds_before(isolated_cwd, bench_device, variants) -> None:
    fp16_sha = hashlib.sha256(Path(variants[1]).read_bytes()).hexdigest()
    held = HeldRunner(isolated_cwd / "held", f"{fp16_sha}.tflite", nth=2)  # fp16's second round
    use_python(isolated_cwd, held.python)
    bench = RunningBench(isolated_cwd, [*variants, "--device", bench_device, "--rounds", "2", "--runs", "4",
                                        "--warmup", "1", "--min-seconds", "4"])

    os.kill(bench.hold(held), signal.SIGKILL)

    assert bench.finish() == 1
    fp16 = {run["variant"]: run for run in bench.runs()}["fp16"]
    assert fp16["status"] == "failed" and "runner was killed by" in fp16["error"]
    assert fp16["rounds"] == {"done": 1, "planned": 2} and fp16["latency_ms"]["n"] == len(fp16["samples_ms"]) > 0


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def gone(pid: int, within: float = 120.0) -> bool:
    """Whether ``pid`` has ended (a zombie counts as ended) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_a_hanging_measurement_fails_alone_and_the_runner_serves_on(isolated_cwd, bench_device, variants) -> None:
    fp16_sha = hashlib.sha256(Path(variants[1]).read_bytes()).hexdigest()
    held = HeldRunner(isolated_cwd / "held", f"{fp16_sha}.tflite")  # fp16's first round hangs
    use_python(isolated_cwd, held.python)
    bench = RunningBench(isolated_cwd, [*variants, "--device", bench_device, "--rounds", "2", "--runs", "4",
                                        "--warmup", "1", "--timeout", "20"])
    hung = bench.hold(held)
    server = parent_of(hung)

    assert bench.finish() == 1
    runs = {run["variant"]: run for run in bench.runs()}
    assert runs["fp16"]["status"] == "failed" and "ran longer than 20 s and was killed" in runs["fp16"]["error"]
    assert runs["fp32"]["status"] == "ok" and finished(runs["fp32"])  # both rounds, the second after the hang
    assert gone(hung) and gone(server)


def test_a_runner_killed_on_the_board_leaves_no_measurement_running(isolated_cwd, bench_device, variants) -> None:
    held = HeldRunner(isolated_cwd / "held", "--runs")  # the first measurement: fp32
    use_python(isolated_cwd, held.python)
    bench = RunningBench(isolated_cwd, [*variants, "--device", bench_device, "--rounds", "1", "--runs", "4"])
    measuring = bench.hold(held)

    os.kill(parent_of(measuring), signal.SIGKILL)  # the server, not the measurement it runs

    assert gone(measuring)  # it died with its server instead of measuring on
    assert bench.finish() == 1
    runs = {run["variant"]: run for run in bench.runs()}
    assert runs["fp32"]["status"] == "failed" and "without a reply" in runs["fp32"]["error"]
    assert runs["fp16"]["status"] == "ok"  # a new server took over


def test_a_full_disk_on_the_board_fails_only_the_variant_that_does_not_fit(capsys, isolated_cwd, bench_device,
                                                                           variants) -> None:
    require_root()
    big = Path(variants[0]).with_name("big.tflite")
    big.write_bytes(Path(variants[0]).read_bytes() + bytes(2 * 2**20))  # 2 MB: never fits in 1 MB
    workdir = isolated_cwd / WORKDIR
    workdir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(workdir)], check=True)
    try:
        code = main(["bench", variants[0], str(big), "--device", bench_device, "--runs", "2", "--rounds", "1",
                     "-o", "results.json"])
    finally:
        subprocess.run(["umount", "-l", str(workdir)], check=True)

    assert code == 1
    runs = {f"{run['model']}/{run['variant']}": run for run in json.loads(Path("results.json").read_text())["runs"]}
    assert runs["slow/fp32"]["status"] == "ok"
    assert runs["big/as-is"]["status"] == "failed"  # a file not named as an export names a variant: its own model
    assert runs["big/as-is"]["error"].startswith(f"device '{bench_device}', big/as-is (")
    assert "No space left on device" in runs["big/as-is"]["error"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_hung_runner_is_killed_on_the_board_at_its_timeout(capsys, isolated_cwd, bench_device, tiny_tflite) -> None:
    code = main(["bench", str(tiny_tflite), "--device", bench_device, "--runs", "1", "--rounds", "1",
                 "--min-seconds", "120", "--timeout", "3", "-o", "results.json"])  # it would run for 2 minutes

    assert code == 1
    [run] = json.loads(Path("results.json").read_text())["runs"]
    assert run["status"] == "failed" and "ran longer than 3 s and was killed" in run["error"]
    assert wait_until_none_with(str(isolated_cwd / WORKDIR)) == []


def finished(run: dict) -> bool:
    return run["rounds"] is None or run["rounds"]["done"] == run["rounds"]["planned"]


def test_ctrl_c_keeps_the_finished_runs_and_stops_the_runners(isolated_cwd, bench_device, variants) -> None:
    held = HeldRunner(isolated_cwd / "held", "--threads 2")
    use_python(isolated_cwd, held.python)
    bench = RunningBench(isolated_cwd, [*variants, "--device", bench_device, "--threads", "1,2", "--rounds", "2",
                                        "--runs", "4", "--warmup", "1", "--min-seconds", "4"])
    # The first thread count's two runs are in; the second's first call is held.
    bench.hold(held)

    bench.process.send_signal(signal.SIGINT)

    assert bench.finish() == 130
    assert "edgeprune: interrupted: kept the 2 finished runs (2 ok)" in bench.stderr()
    assert "Traceback" not in bench.stderr()
    document = json.loads(bench.results.read_text())
    assert_follows_schema(document, "results.schema.json")
    assert [(run["threads"], run["status"]) for run in document["runs"] if finished(run)] == [(1, "ok"), (1, "ok")]
    assert all(run["error"].startswith("interrupted: ") for run in document["runs"] if not finished(run))
    assert "interrupted" in document["devices"][bench_device]["error"]
    history = sqlite3.connect(isolated_cwd / ".edgeprune" / "history.sqlite")
    assert history.execute("SELECT COUNT(*) FROM runs").fetchone() == (2,)
    assert wait_until_none_with(str(isolated_cwd / WORKDIR)) == []  # runners and the board lock
    with BoardLock.take(LocalDevice(workdir=isolated_cwd / WORKDIR), str(runner_script()), timeout_s=0,
                        on_wait=print):
        pass  # the board is free again


def test_a_run_cut_short_keeps_the_rounds_it_measured(isolated_cwd, bench_device, variants) -> None:
    # fp16's second round is held: fp32's rounds are done (fp16's comes last), fp16 has one round on disk, and its
    # second is in progress when Ctrl-C comes, however busy the machine is.
    fp16_sha = hashlib.sha256(Path(variants[1]).read_bytes()).hexdigest()
    held = HeldRunner(isolated_cwd / "held", f"{fp16_sha}.tflite", nth=2)
    use_python(isolated_cwd, held.python)
    bench = RunningBench(isolated_cwd, [*variants, "--device", bench_device, "--rounds", "2", "--runs", "4",
                                        "--warmup", "1", "--min-seconds", "4"])
    bench.hold(held)
    checkpoint = next(run for run in bench.runs() if run["variant"] == "fp16")
    assert checkpoint["status"] == "failed" and checkpoint["rounds"] == {"done": 1, "planned": 2}
    assert checkpoint["error"] == "not finished when this was written: 1 of 2 rounds measured, their samples are kept"

    bench.process.send_signal(signal.SIGINT)

    assert bench.finish() == 130
    runs = {run["variant"]: run for run in bench.runs()}
    fp16 = runs["fp16"]  # its second round had not finished
    assert fp16["status"] == "failed" and fp16["rounds"] == {"done": 1, "planned": 2}
    assert fp16["error"] == "interrupted: 1 of 2 rounds measured, their samples are kept"
    assert fp16["latency_ms"]["n"] == len(fp16["samples_ms"]) > 0
    assert runs["fp32"]["status"] == "ok" and finished(runs["fp32"])
    history = sqlite3.connect(isolated_cwd / ".edgeprune" / "history.sqlite")
    assert history.execute("SELECT COUNT(*) FROM runs").fetchone() == (sum(map(finished, runs.values())),)


HISTORY_WRITER = """
import sys, time
from pathlib import Path
from edgeprune.results.document import ResultsDocument, RunRecord
from edgeprune.history.location import parse_location
from edgeprune.history.store import History

folder, start, runs = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
while time.time() < start:  # every writer opens the new history file at the same instant
    pass
history = History(parse_location(str(folder), "--history"))
bench_id = history.start_bench(ResultsDocument.new({}), None)
for index in range(runs):
    history.add_run(bench_id, RunRecord(device="d", model="m", variant=f"v{index}", model_sha256=None,
                                        size_bytes=None, threads=1, xnnpack=True, status="ok"))
history.close()
"""


def test_concurrent_benches_share_one_history(tmp_path: Path) -> None:
    writers, runs = 6, 20
    start = time.time() + 2.0  # after every interpreter has started
    processes = [subprocess.Popen([sys.executable, "-c", HISTORY_WRITER, str(tmp_path), repr(start), str(runs)],
                                  stderr=subprocess.PIPE, text=True) for _ in range(writers)]
    errors = [process.communicate(timeout=120)[1] for process in processes]

    assert [process.returncode for process in processes] == [0] * writers, errors
    history = sqlite3.connect(tmp_path / "history.sqlite")
    assert history.execute("SELECT COUNT(*) FROM benches").fetchone() == (writers,)
    assert history.execute("SELECT COUNT(*) FROM runs").fetchone() == (writers * runs,)
