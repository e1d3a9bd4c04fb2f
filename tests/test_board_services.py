"""The board services' own logic, on a FakeDevice: what the cache uploads and when, and how the board lock reads
the lines of its process on the board. That they work over every real transport, the bench tests show."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fixtures.fake_device import FakeDevice, Scripted

from edgeprune.board.cache import DeviceCache
from edgeprune.board.lock import BoardLock
from edgeprune.board.runner import RUNNER_FILENAME, runner_script
from edgeprune.errors import RunnerError

RUNNER = "/home/pi/.cache/edgeprune/cache/runner/0123456789abcdef/edgeprune_runner.py"
HOLDER = {"host": "ci-7", "pid": 4242, "since": "2026-12-03T10:00:00+00:00"}


def model_file(folder: Path, name: str, content: bytes = b"model bytes") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


# -- the cache ---------------------------------------------------------------------------------------------------


def test_the_cache_uploads_a_content_once_whatever_its_file_is_called(tmp_path: Path) -> None:
    device = FakeDevice()
    cache = DeviceCache(device)
    digest = hashlib.sha256(b"model bytes").hexdigest()

    remote = cache.ensure(model_file(tmp_path, "fp32.tflite"))

    assert cache.ensure(model_file(tmp_path, "copy.tflite")) == remote
    assert remote == f"{device.workdir}/cache/{digest[:2]}/{digest}.tflite"
    assert device.uploads == [remote] and cache.uploaded_bytes == len(b"model bytes")
    for folder in (device.workdir, f"{device.workdir}/cache", f"{device.workdir}/cache/{digest[:2]}"):
        assert device.folders[folder] == 0o700


def test_a_later_bench_finds_the_content_on_the_device_and_uploads_nothing(tmp_path: Path) -> None:
    device = FakeDevice()
    model = model_file(tmp_path, "fp32.tflite")
    remote = DeviceCache(device).ensure(model)

    later = DeviceCache(device)

    assert later.ensure(model) == remote
    assert device.uploads == [remote] and later.uploaded_bytes == 0


def test_the_runner_is_kept_under_its_own_content_hash() -> None:
    device = FakeDevice()
    script = runner_script().read_bytes()

    remote = DeviceCache(device).ensure_runner()

    folder = f"{device.workdir}/cache/runner/{hashlib.sha256(script).hexdigest()[:16]}"
    assert remote == f"{folder}/{RUNNER_FILENAME}" and device.files[remote] == script
    assert device.folders[folder] == 0o700


# -- the board lock ----------------------------------------------------------------------------------------------


def lock_device(stdout: bytes, *, stderr: bytes = b"", exit_code: int = 0, held: bool = True) -> FakeDevice:
    """A board whose lock command prints ``stdout``; ``held``: it then runs until its stdin closes."""
    return FakeDevice(commands={("python3", RUNNER, "lock"): Scripted(stdout, stderr, exit_code,
                                                                      until_stdin_closed=held)})


def events(*messages: object) -> bytes:
    return b"".join(json.dumps(message).encode() + b"\n" for message in messages)


def test_the_lock_skips_lines_that_are_not_its_protocol_and_says_who_it_waits_for() -> None:
    chatter = b"Welcome to pi4 (a shell rc file)\n[1, 2]\n"
    device = lock_device(chatter + events({"event": "waiting", "holder": HOLDER}, {"event": "acquired"}))
    messages: list[str] = []

    BoardLock.take(device, RUNNER, timeout_s=5, on_wait=messages.append).release()

    assert messages == [f"waiting for the board lock held by ci-7 (pid 4242) since {HOLDER['since']} (up to 5 s)"]
    [process] = device.started
    assert process.argv[3:5] == ("--path", f"{device.workdir}/bench.lock")
    assert process.stdin_closed and not process.killed  # released the way the runner expects: end of its input


def test_a_lock_process_that_ends_without_the_lock_is_a_crash_with_its_last_words() -> None:
    stderr = b"Traceback (most recent call last):\nPermissionError: [Errno 13] Permission denied: 'bench.lock'\n"
    device = lock_device(b"", stderr=stderr, exit_code=1, held=False)

    with pytest.raises(RunnerError) as error:
        BoardLock.take(device, RUNNER, timeout_s=5, on_wait=lambda message: None)

    assert error.value.kind == "crash"
    assert str(error.value) == ("device 'fake': board lock: runner exited with code 1 without a reply: Traceback "
                                "(most recent call last): | PermissionError: [Errno 13] Permission denied: "
                                "'bench.lock'")
