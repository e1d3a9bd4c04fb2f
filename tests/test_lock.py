"""The board lock: one bench per board at a time, held by the board, released whenever its holder goes away."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from edgeprune.cli import main
from edgeprune.board.lock import LOCK_FILENAME, BoardLock
from edgeprune.board.runner import runner_script
from edgeprune.devices.base import Device
from edgeprune.devices.local import LocalDevice
from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.devices.ssh.settings import SSHSettings
from edgeprune.errors import LockTimeout

RUNNER = str(runner_script())
HOLDER = f"{socket.gethostname()} (pid {os.getpid()}) since "


@pytest.fixture(params=["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def device_factory(request: pytest.FixtureRequest, tmp_path: Path):
    """Devices on one board (one workdir): each call is another bench's connection to it."""
    workdir = tmp_path / "board workdir"
    opened: list[Device] = []

    def open_device() -> Device:
        if request.param == "local":
            device: Device = LocalDevice(workdir=workdir)
        else:
            alias = request.getfixturevalue("ssh_home").alias
            device = SSHDevice("board", host=alias, settings=SSHSettings(workdir=str(workdir), python=sys.executable))
        opened.append(device)
        return device

    yield open_device
    for device in opened:
        device.close()


def take(device: Device, timeout_s: float, messages: list[str] | None = None) -> BoardLock:
    return BoardLock.take(device, RUNNER, timeout_s=timeout_s,
                          on_wait=(messages if messages is not None else []).append)


def test_a_busy_board_makes_the_second_bench_wait_then_fail_naming_the_holder(device_factory) -> None:
    first, second = device_factory(), device_factory()
    messages: list[str] = []
    began = time.monotonic()

    with take(first, 5):
        with pytest.raises(LockTimeout) as error:
            take(second, 1.0, messages)

    assert 1.0 <= time.monotonic() - began < 15
    assert f"device '{second.name}': the board is busy" in str(error.value) and HOLDER in str(error.value)
    assert "--lock-timeout" in str(error.value)
    assert len(messages) == 1 and messages[0].startswith(f"waiting for the board lock held by {HOLDER}")
    with take(second, 0):  # released: free at once
        pass


def test_a_waiting_bench_gets_the_lock_when_the_holder_releases_it(device_factory) -> None:
    first, second = device_factory(), device_factory()
    messages: list[str] = []
    held = take(first, 5)
    threading.Timer(1.0, held.release).start()

    with take(second, 30, messages):
        pass

    assert len(messages) == 1 and HOLDER in messages[0]


def test_the_lock_file_is_private_and_names_only_host_pid_and_time(device_factory) -> None:
    device = device_factory()
    with take(device, 5):
        lock_file = Path(device.workdir) / LOCK_FILENAME
        holder = json.loads(lock_file.read_text())
        assert set(holder) == {"host", "pid", "board_pid", "since"}
        assert (holder["host"], holder["pid"]) == (socket.gethostname(), os.getpid())
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(device.workdir).stat().st_mode) == 0o700


@pytest.mark.ssh
def test_a_dropped_ssh_session_releases_the_lock(ssh_home, tmp_path: Path) -> None:
    settings = SSHSettings(workdir=str(tmp_path / "workdir"), python=sys.executable)
    holder = SSHDevice("board", host=ssh_home.alias, settings=settings)
    other = SSHDevice("board", host=ssh_home.alias, settings=settings)
    take(holder, 5)

    holder.close()  # the connection goes, as when the bench machine dies: the board sees its session end

    with take(other, 10):
        pass
    other.close()


def test_a_dead_bench_process_releases_a_local_lock(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from edgeprune.devices.local import LocalDevice\n"
        "from edgeprune.board.lock import BoardLock\n"
        f"BoardLock.take(LocalDevice(workdir={str(tmp_path)!r}), {RUNNER!r}, timeout_s=5, on_wait=print)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    bench = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bench.stdout.readline() == b"held\n"

    bench.kill()  # SIGKILL: no cleanup runs in the bench; the runner sees its stdin close
    bench.wait()

    with take(LocalDevice(workdir=tmp_path), 10):
        pass


def test_the_board_gives_the_lock_up_without_heartbeats(tmp_path: Path) -> None:
    device = LocalDevice(workdir=tmp_path)
    process = device.start([sys.executable, RUNNER, "lock", "--path", str(tmp_path / LOCK_FILENAME),
                            "--heartbeat-timeout", "1"])
    assert json.loads(process.readline(30))["event"] == "acquired"

    reply = json.loads(process.readline(10))  # nothing written to its stdin: released after about 1 s

    assert reply["ok"] and reply["released_by"] == "heartbeat-lost"
    assert process.wait(10) == 0


# -- the bench ---------------------------------------------------------------------------------------------------


@pytest.fixture
def board_lock_holder(bench_device: str, isolated_cwd: Path) -> Iterator[BoardLock]:
    """Another bench holding the board of ``bench_device`` (the loopback board is this machine: same file)."""
    lock = take(LocalDevice(workdir=isolated_cwd / "device workdir"), 5)
    yield lock
    lock.release()


def test_bench_fails_a_board_busy_for_longer_than_lock_timeout(capsys, bench_device, board_lock_holder,
                                                                tiny_tflite) -> None:
    code = main(["bench", str(tiny_tflite), "--device", bench_device, "--runs", "2", "--rounds", "1",
                 "--lock-timeout", "1", "-o", "results.json"])

    err = capsys.readouterr().err
    assert code == 1
    assert f"[{bench_device}] waiting for the board lock held by {HOLDER}" in err
    document = json.loads(Path("results.json").read_text())
    [run] = document["runs"]
    assert run["status"] == "failed" and "the board is busy" in run["error"] and HOLDER in run["error"]
    assert document["devices"][bench_device]["error"] == run["error"]
    assert f"edgeprune: {bench_device} " in err and f"device '{bench_device}': the board is busy" in err


def test_bench_waits_for_a_busy_board(capsys, bench_device, board_lock_holder, tiny_tflite) -> None:
    threading.Timer(2.0, board_lock_holder.release).start()

    code = main(["bench", str(tiny_tflite), "--device", bench_device, "--runs", "2", "--rounds", "1",
                 "-o", "results.json"])

    assert code == 0
    assert f"[{bench_device}] waiting for the board lock held by {HOLDER}" in capsys.readouterr().err
    assert json.loads(Path("results.json").read_text())["runs"][0]["status"] == "ok"


def test_two_concurrent_benches_take_turns_on_one_board(isolated_cwd: Path, tiny_tflite: Path) -> None:
    workdir = isolated_cwd / "board"
    (isolated_cwd / "edgeprune.toml").write_text(f'[devices.local]\nworkdir = "{workdir}"\n')
    shutil.copy(tiny_tflite, isolated_cwd / "model.tflite")
    benches = [
        subprocess.Popen([sys.executable, "-m", "edgeprune", "bench", "model.tflite", "--runs", "3", "--rounds", "2",
                          "--min-seconds", "2", "-o", f"results-{index}.json", "--history", ".edgeprune"],
                         stderr=subprocess.PIPE, text=True)
        for index in range(2)
    ]
    errors = [bench.communicate(timeout=300)[1] for bench in benches]

    assert [bench.returncode for bench in benches] == [0, 0], errors
    assert sum("waiting for the board lock held by" in err for err in errors) == 1
    for index in range(2):
        assert json.loads((isolated_cwd / f"results-{index}.json").read_text())["runs"][0]["status"] == "ok"


def test_ctrl_c_while_waiting_for_the_board_lock_stops_at_once(isolated_cwd: Path, tiny_tflite: Path) -> None:
    workdir = isolated_cwd / "board"
    (isolated_cwd / "edgeprune.toml").write_text(f'[devices.local]\nworkdir = "{workdir}"\n')
    stderr_path = isolated_cwd / "bench.stderr"
    with take(LocalDevice(workdir=workdir), 5), stderr_path.open("w") as stderr:
        bench = subprocess.Popen([sys.executable, "-m", "edgeprune", "bench", str(tiny_tflite), "--runs", "2",
                                  "--rounds", "1", "-o", "results.json"], stderr=stderr)
        deadline = time.monotonic() + 60
        while "waiting for the board lock" not in stderr_path.read_text():
            assert bench.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.1)

        bench.send_signal(signal.SIGINT)

        assert bench.wait(15) == 130
    assert "edgeprune: interrupted: kept the 0 finished runs" in stderr_path.read_text()
    assert json.loads((isolated_cwd / "results.json").read_text())["runs"] == []
