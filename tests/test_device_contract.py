"""The behaviour every Device promises, checked identically on LocalDevice, on SSHDevice (reached directly and
through a jump host, ``ProxyJump``) and on LabgridDevice (a place of a real labgrid farm on 127.0.0.1).

The SSH devices talk to a real sshd on 127.0.0.1, and the farm's places are test sshd instances too, so their
"remote" files are on this machine and the tests can inspect them directly.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from edgeprune.devices.base import Device
from edgeprune.devices.labgrid.device import LabgridDevice
from edgeprune.devices.local import LocalDevice
from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.devices.ssh.settings import SSHSettings
from edgeprune.errors import DeviceError, DeviceTimeout
from fixtures.labgrid_farm import LabgridFarm
from fixtures.sshd import ALIAS_VIA_JUMP

PRINT_ARGV = [sys.executable, "-c", "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))"]


@pytest.fixture(params=["local", pytest.param("ssh", marks=pytest.mark.ssh),
                        pytest.param("ssh-via-jump", marks=pytest.mark.ssh),
                        pytest.param("labgrid", marks=pytest.mark.labgrid)])
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Device]:
    workdir = tmp_path / "workdir"
    if request.param == "labgrid":
        yield from farm_place(request.getfixturevalue("labgrid_farm"), tmp_path, workdir)
        return
    if request.param == "local":
        chosen: Device = LocalDevice(workdir=workdir)
    elif request.param == "ssh":
        ssh_home = request.getfixturevalue("ssh_home")
        chosen = SSHDevice("board", host=ssh_home.alias, settings=SSHSettings(workdir=str(workdir)))
    else:
        request.getfixturevalue("ssh_home_with_jump")
        chosen = SSHDevice("board", host=ALIAS_VIA_JUMP, settings=SSHSettings(workdir=str(workdir)))
    with chosen:
        yield chosen


def farm_place(farm: LabgridFarm, folder: Path, workdir: Path) -> Iterator[LabgridDevice]:
    """The farm's place pi4-a, claimed, its board's host key trusted and no ~/.ssh/config in the way.

    That closing it releases the place is tests/test_labgrid.py's to check (each check is a labgrid-client run,
    seconds per test); a place left held would fail the next claim here within 30 s."""
    board = farm.boards["pi4-a"]
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(board.known_hosts_line())
    settings = SSHSettings(workdir=str(workdir), identity_file=board.client_key, known_hosts=known_hosts,
                           ssh_config=folder / "no ssh config")
    with LabgridDevice("farm-board", place="pi4-a", coordinator=farm.coordinator, ssh=settings) as place:
        place.claim(timeout_s=30, on_wait=lambda message: None)
        yield place


def wait_until_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_run_returns_exit_code_stdout_and_stderr(device: Device) -> None:
    result = device.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30)

    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert not result.ok


def test_arguments_arrive_verbatim_and_are_never_interpreted(device: Device, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    arguments = [
        "with space",
        "it's",
        'double "quoted"',
        f"$(touch {pwned}-subst)",
        f"`touch {pwned}-backtick`",
        f"a; touch {pwned}-semicolon",
        f"&& touch {pwned}-and | touch {pwned}-pipe > {pwned}-redirect",
        "$HOME ~ * ?",
        "back\\slash",
        "new\nline",
        "",
        "-n",
        "ünïcödé",
    ]

    result = device.run([*PRINT_ARGV, *arguments], timeout=30)

    assert result.ok, result.stderr
    assert json.loads(result.stdout) == arguments
    assert sorted(path.name for path in tmp_path.glob("pwned*")) == []


def test_stdin_is_passed_even_when_larger_than_pipe_and_window_buffers(device: Device) -> None:
    data = os.urandom(3 * 1024 * 1024)

    result = device.run(["cat"], timeout=60, stdin=data)

    assert result.ok
    assert result.stdout == data


def test_missing_program_is_a_device_error(device: Device) -> None:
    with pytest.raises(DeviceError, match="no-such-program-edgeprune"):
        device.run(["no-such-program-edgeprune"], timeout=30)


def test_timeout_kills_the_command_on_the_device(device: Device, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()

    with pytest.raises(DeviceTimeout, match="ran longer than 1.5 s"):
        device.run(["sh", "-c", 'echo $$ > "$1"; exec sleep 60', "sh", str(pid_file)], timeout=1.5)

    assert time.monotonic() - started < 15
    assert wait_until_gone(int(pid_file.read_text()))


def test_upload_replaces_the_file_atomically_and_byte_identical(device: Device, tmp_path: Path) -> None:
    target_dir = tmp_path / "remote" / "new folder"
    target = target_dir / "model.tflite"
    target_dir.mkdir(parents=True)
    target.write_bytes(b"old content")
    payload = os.urandom(1024 * 1024 + 7)
    source = tmp_path / "model.tflite"
    source.write_bytes(payload)

    with target.open("rb") as old_reader:  # opened before: must keep seeing the complete old file
        device.upload(source, str(target))
        assert old_reader.read() == b"old content"

    assert target.read_bytes() == payload
    assert sorted(path.name for path in target_dir.iterdir()) == ["model.tflite"]  # no temporary left over


def test_upload_creates_missing_parent_folders(device: Device, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")
    target = tmp_path / "a" / "b c" / "file"

    device.upload(source, str(target))

    assert target.read_bytes() == b"x"


def test_download_copies_the_file(device: Device, tmp_path: Path) -> None:
    remote = tmp_path / "on device.bin"
    payload = os.urandom(300_000)
    remote.write_bytes(payload)
    local = tmp_path / "downloaded.bin"

    device.download(str(remote), local)

    assert local.read_bytes() == payload


def test_download_of_a_missing_file_is_a_device_error(device: Device, tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="missing.json"):
        device.download(str(tmp_path / "missing.json"), tmp_path / "local.json")


def test_exists_is_true_only_for_files(device: Device, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")

    assert device.exists(str(tmp_path / "file"))
    assert not device.exists(str(tmp_path / "missing"))
    assert not device.exists(str(tmp_path))


def test_make_private_dir_creates_parents_and_a_0700_leaf(device: Device, tmp_path: Path) -> None:
    leaf = tmp_path / f"we ird $(touch {tmp_path}/pwned); `touch {tmp_path}/pwned2`" / "leaf 'quoted'"

    device.make_private_dir(str(leaf))

    assert stat.S_IMODE(leaf.stat().st_mode) == 0o700
    assert not list(tmp_path.glob("pwned*"))


def test_make_private_dir_tightens_an_existing_folder(device: Device, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)

    device.make_private_dir(str(folder))
    device.make_private_dir(str(folder))  # and again: nothing to do, no error

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_workdir_is_absolute(device: Device, tmp_path: Path) -> None:
    assert device.workdir == str(tmp_path / "workdir")
    assert device.address


def wait_for_file(path: Path, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written")


# -- start(): a streaming process ------------------------------------------------------------------------------

ECHO_STDIN = [sys.executable, "-c",
              "import sys; print('ready', flush=True); data = sys.stdin.buffer.read(); print(len(data), flush=True)"]


def test_start_streams_lines_and_passes_stdin_until_closed(device: Device) -> None:
    process = device.start(ECHO_STDIN)

    assert process.readline(30) == b"ready\n"
    process.write(b"abc")
    process.write(b"de")
    process.close_stdin()
    assert process.readline(30) == b"5\n"
    assert process.readline(30) == b""
    assert process.wait(30) == 0


def test_start_passes_arguments_verbatim(device: Device, tmp_path: Path) -> None:
    arguments = ["with space", f"$(touch {tmp_path}/pwned)", "a;b|c>d", "'\"", "", "new\nline"]

    process = device.start([*PRINT_ARGV, *arguments])

    assert json.loads(process.readline(30)) == arguments  # the last line, without a newline
    assert process.wait(30) == 0
    assert not list(tmp_path.glob("pwned*"))


def test_readline_times_out_and_kill_ends_the_process_group(device: Device, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    process = device.start(["sh", "-c", 'sleep 60 & echo "$$ $!" > "$1"; wait', "sh", str(pids)])
    leader, child = (int(pid) for pid in wait_for_file(pids).split())

    with pytest.raises(DeviceTimeout, match="printed no line for 0.3 s"):
        process.readline(0.3)
    assert process.wait(0.1) is None
    process.kill()

    assert wait_until_gone(leader) and wait_until_gone(child)


def test_start_of_a_missing_program_is_a_device_error(device: Device) -> None:
    with pytest.raises(DeviceError, match="no-such-program-edgeprune"):
        device.start(["no-such-program-edgeprune"])


def test_interrupt_kills_what_run_and_start_are_running(device: Device, tmp_path: Path) -> None:
    run_pid, started_pid = tmp_path / "run.pid", tmp_path / "started.pid"
    outcome: list[object] = []

    def run_until_interrupted() -> None:
        try:
            outcome.append(device.run(["sh", "-c", 'echo $$ > "$1"; exec sleep 60', "sh", str(run_pid)], timeout=60))
        except DeviceError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run_until_interrupted)
    worker.start()
    started = device.start(["sh", "-c", 'echo $$ > "$1"; exec sleep 60', "sh", str(started_pid)])
    pids = [int(wait_for_file(run_pid)), int(wait_for_file(started_pid))]
    began = time.monotonic()

    device.interrupt()
    worker.join(20)

    assert not worker.is_alive() and time.monotonic() - began < 15
    assert isinstance(outcome[0], DeviceError) or not outcome[0].ok  # type: ignore[union-attr]
    assert started.readline(10) == b"" and started.wait(10) is not None
    assert all(wait_until_gone(pid) for pid in pids)
    assert device.run(["true"], timeout=30).ok  # the device still works afterwards
