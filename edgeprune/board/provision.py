"""``edgeprune devices setup``: give a board a Python venv with numpy and a TFLite runtime.

A board with internet installs from its package index; a board without gets wheels that the host downloads
for the board's architecture, Python and glibc, pushed over the same connection.
"""

from __future__ import annotations

import posixpath
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..devices.base import Device
from ..errors import DeviceError, UsageError
from ..text import one_line
from .cache import DeviceCache
from .runner import RunnerClient

DEFAULT_PACKAGES = ("numpy", "ai-edge-litert")
# The pip package of each runtime the runner can use (its --runtime names).
RUNTIME_PACKAGES = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}
# Every tflite-runtime release (the last, 2.14.0, is from 2023) was built against numpy 1.x, yet declares no upper
# bound: beside numpy 2 it imports, then fails in its first interpreter.
NUMPY_PIN = {"tflite-runtime": "numpy<2"}
OLDEST_MANYLINUX_GLIBC_MINOR = 17
INSTALL_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class SetupRequest:
    venv: str | None = None  # default: WORKDIR/venv
    base_python: str = "python3"
    packages: Sequence[str] = DEFAULT_PACKAGES
    offline: bool = False  # push wheels from the host instead of letting the board download
    wheels: Path | None = None  # push these wheels (implies offline)


def setup_device(device: Device, request: SetupRequest, progress: Callable[[str], None]) -> dict[str, Any]:
    packages = pinned(request.packages)
    cache = DeviceCache(device)
    device.python = request.base_python
    bare = RunnerClient(device, cache.ensure_runner()).probe()
    venv = request.venv or posixpath.join(device.workdir, "venv")
    venv_python = posixpath.join(venv, "bin", "python")
    if not device.exists(venv_python):
        progress(f"creating {venv} with {request.base_python} (Python {bare['python']}, {bare['arch']})")
        run_checked(device, [request.base_python, "-m", "venv", venv], "create the venv",
                    hint="install python3-venv on the board (apt install python3-venv)")
    pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    if request.offline or request.wheels:
        remote_wheels = push_wheels(device, request, packages, bare, progress)
        pip += ["--no-index", "--find-links", remote_wheels]
    progress(f"installing {', '.join(packages)} on the board (slow boards take minutes)")
    run_checked(device, [*pip, *packages], "install the runtime",
                hint="check the board's network and index, or use --offline")
    device.python = venv_python
    info = RunnerClient(device, cache.ensure_runner()).probe()
    if info.get("runtime") is None:
        raise DeviceError(device.name, f"the runtime does not import after setup: {info.get('runtime_error')}")
    return info


def pinned(packages: Sequence[str]) -> list[str]:
    """``packages`` with the numpy their runtime was built against: ``tflite-runtime`` gets ``numpy<2`` (a bare
    ``numpy`` becomes it, a numpy 1.x pin of the user's stays); a numpy requirement that allows 2.x is refused."""
    requirements = [requirement_of(package) for package in packages]
    runtimes = sorted({canonicalize_name(requirement.name) for requirement in requirements} & set(NUMPY_PIN))
    if not runtimes:
        return list(packages)
    pin = Requirement(NUMPY_PIN[runtimes[0]])
    kept = []
    for package, requirement in zip(packages, requirements):
        if canonicalize_name(requirement.name) == "numpy":
            if not requirement.specifier:
                continue  # the pin replaces a bare numpy
            if allows_numpy_2(requirement):
                raise UsageError(f"--package '{package}' allows numpy 2, which {', '.join(runtimes)} cannot run with",
                                 hint=f"drop it (edgeprune installs {pin}) or pin numpy below 2")
        kept.append(package)
    user_pin = any(canonicalize_name(requirement_of(package).name) == "numpy" for package in kept)
    return kept if user_pin else [str(pin), *kept]


def allows_numpy_2(requirement: Requirement) -> bool:
    """Whether the requirement lets pip pick a numpy of 2.0 or later: tried at 2.0, at every version it names from
    2 up (``==2.2.0``, ``>=2.1``), and far above."""
    named = [spec.version for spec in requirement.specifier if spec.version.split(".")[0].isdigit()
             and int(spec.version.split(".")[0]) >= 2]
    return any(requirement.specifier.contains(version, prereleases=True)
               for version in ("2.0.0", *named, "2.99", "99.0"))


def requirement_of(package: str) -> Requirement:
    try:
        return Requirement(package)
    except InvalidRequirement as exc:
        raise UsageError(f"--package '{package}' is not a pip requirement: {one_line(exc)}",
                         hint="name a package, optionally with a version: tflite-runtime==2.14.0") from None


def run_checked(device: Device, argv: list[str], what: str, *, hint: str) -> None:
    result = device.run(argv, timeout=INSTALL_TIMEOUT_S)
    if not result.ok:
        tail = [line for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()][-2:]
        raise DeviceError(device.name, f"could not {what} (exit {result.exit_code}): {' | '.join(tail)}", hint=hint)


def push_wheels(device: Device, request: SetupRequest, packages: Sequence[str], bare: dict[str, Any],
                progress: Callable[[str], None]) -> str:
    remote = posixpath.join(device.workdir, "wheels")
    device.make_private_dir(device.workdir)
    device.make_private_dir(remote)
    with tempfile.TemporaryDirectory(prefix="edgeprune-wheels-") as scratch:
        folder = request.wheels or download_wheels(packages, bare, Path(scratch), progress)
        wheels = sorted(Path(folder).glob("*.whl"))
        if not wheels:
            raise UsageError(f"no .whl files in '{folder}'", hint="pass a folder of wheels for the board")
        for wheel in wheels:
            # pip reads the platform from the file name, so wheels keep their names (not content hashes).
            target = posixpath.join(remote, wheel.name)
            if not device.exists(target):
                device.upload(wheel, target)
        progress(f"pushed {len(wheels)} wheels to {remote}")
    return remote


def download_wheels(packages: Sequence[str], bare: dict[str, Any], folder: Path,
                    progress: Callable[[str], None]) -> Path:
    """Wheels for the board's platform, fetched by the host's pip (the host has the network)."""
    platforms = platform_tags(str(bare.get("arch")), bare.get("libc"))
    python_version = "".join(str(bare.get("python", "")).split(".")[:2])
    progress(f"downloading wheels for {bare.get('arch')}, Python {bare.get('python')}, {bare.get('libc')}")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp", "-d", str(folder)]
    for tag in platforms:
        argv += ["--platform", tag]
    completed = subprocess.run([*argv, *packages], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        reason = [line for line in completed.stderr.splitlines() if "ERROR" in line][-1:] or ["pip download failed"]
        raise UsageError(f"cannot download wheels for the board: {reason[0]}",
                         hint="check the host's network, or pass --wheels DIR")
    return folder


def platform_tags(arch: str, libc: str | None) -> list[str]:
    """manylinux tags a board with this glibc can install, newest first (pip tries them all)."""
    if not libc or not libc.startswith("glibc-"):
        raise UsageError(f"cannot tell which wheels fit a board with libc '{libc}'", hint="pass --wheels DIR")
    major, minor = (int(part) for part in libc.removeprefix("glibc-").split(".")[:2])
    if major != 2:
        raise UsageError(f"unexpected glibc version {libc}", hint="pass --wheels DIR")
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, OLDEST_MANYLINUX_GLIBC_MINOR - 1, -1)]
    return tags + [f"manylinux2014_{arch}"]
