"""What a bench must never do: let a name reach a shell, leave the cache readable by others, trust a changed host
key, or write a secret anywhere."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from edgeprune.cli import main
from fixtures.sshd import SSHClientFiles, SSHServer, start_sshd

HOSTILE = "x $(touch {p}-subst) `touch {p}-tick`; touch {p}-semi && 'q' \"dq\" | >{p}-redir ~ *"


def hostile(tag: str) -> str:
    """A name that creates ``pwned-*`` files (in the working folder of whatever shell sees it unquoted)."""
    return HOSTILE.format(p=f"pwned-{tag}")


def pwned_files(folder: Path) -> list[str]:
    """Files a shell would have made; the test's folder holds the bench's and the SSH user's working folders."""
    return sorted(str(path) for path in folder.rglob("pwned*") if path.is_file())


def bench(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["bench", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def hostile_setup(isolated_cwd: Path, tiny_tflite: Path, request) -> tuple[str, Path, list[str]]:
    """An inventory whose workdir and python path, and a model whose folder and file names, are all hostile."""
    model_dir = isolated_cwd / hostile("model-dir")
    model_dir.mkdir(parents=True)
    model = model_dir / (hostile("model") + ".tflite")
    shutil.copy(tiny_tflite, model)
    python_dir = isolated_cwd / hostile("python")
    python_dir.mkdir(parents=True)
    python = python_dir / "python 'x'"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    workdir = isolated_cwd / hostile("workdir")
    device = "local"
    entry = f"[devices.local]\nworkdir = {json.dumps(str(workdir))}\npython = {json.dumps(str(python))}\n"
    if request.param == "ssh":
        ssh_home = request.getfixturevalue("ssh_home")
        device = "board"
        entry = (f"[devices.board]\nhost = \"{ssh_home.alias}\"\nworkdir = {json.dumps(str(workdir))}\n"
                 f"python = {json.dumps(str(python))}\n")
    (isolated_cwd / "edgeprune.toml").write_text(entry)
    return device, workdir, [str(model)]


@pytest.mark.parametrize("hostile_setup", ["local", pytest.param("ssh", marks=pytest.mark.ssh)], indirect=True)
def test_metacharacters_in_paths_workdirs_models_and_labels_never_reach_a_shell(capsys, isolated_cwd,
                                                                                  hostile_setup) -> None:
    device, workdir, models = hostile_setup
    label = "v1'; DROP TABLE runs; -- $(touch pwned-label)"

    code, out, err = bench(capsys, *models, "--device", device, "--runs", "2", "--rounds", "1", "--label", label,
                           "-o", "results.json")

    assert code == 0, err
    [run] = json.loads(Path("results.json").read_text())["runs"]
    assert run["status"] == "ok" and run["model"] == Path(models[0]).stem  # a loose file is a model of its own
    assert (workdir / "bench.lock").is_file()  # the hostile workdir was used as given
    assert pwned_files(isolated_cwd) == []
    assert main(["bench", *models, "--device", device, "--runs", "1", "--rounds", "1", "--label", label,
                 "-o", "again.json"]) == 0  # the history still has its tables


def test_device_names_with_metacharacters_are_refused(capsys, isolated_cwd, tiny_tflite) -> None:
    (isolated_cwd / "edgeprune.toml").write_text('[devices."pi; touch pwned"]\nhost = "pi"\n')

    code, _, err = bench(capsys, str(tiny_tflite), "--device", "pi; touch pwned")

    assert code == 2 and "pi; touch pwned" in err
    assert pwned_files(isolated_cwd) == []


def test_the_remote_cache_is_private_whatever_the_umask(capsys, isolated_cwd, bench_device, tiny_tflite) -> None:
    workdir = isolated_cwd / "device workdir"
    workdir.mkdir(mode=0o755)
    workdir.chmod(0o755)  # an existing, world-readable workdir is tightened too
    old_umask = os.umask(0)
    try:
        code, _, err = bench(capsys, str(tiny_tflite), "--device", bench_device, "--runs", "1", "--rounds", "1")
    finally:
        os.umask(old_umask)

    assert code == 0, err
    folders = [workdir, *(path for path in workdir.rglob("*") if path.is_dir())]
    assert len(folders) >= 4  # workdir, cache, the hash folder, the runner's folders
    assert {str(path): stat.S_IMODE(path.stat().st_mode) for path in folders} == {str(path): 0o700 for path in folders}
    assert stat.S_IMODE((workdir / "bench.lock").stat().st_mode) == 0o600


@pytest.mark.ssh
def test_a_changed_host_key_is_refused_even_when_accepting_new_keys(capsys, isolated_cwd, ssh_home, sshd_server,
                                                                    sshd_factory, tiny_tflite) -> None:
    impostor_key = sshd_factory().host_public_key
    ssh_home.trust_only(sshd_server.known_hosts_line(impostor_key))  # known_hosts records another key
    known_before = ssh_home.known_hosts.read_text()
    logins_before = sshd_server.logins()
    (isolated_cwd / "edgeprune.toml").write_text(f'[devices.board]\nhost = "{ssh_home.alias}"\n')

    code, _, err = bench(capsys, str(tiny_tflite), "--device", "board", "--accept-new-host-key", "-o", "results.json")

    assert code == 1
    [run] = json.loads(Path("results.json").read_text())["runs"]
    assert run["status"] == "failed" and "has CHANGED" in run["error"] and "ssh-keygen -R" in run["error"]
    assert ssh_home.known_hosts.read_text() == known_before
    assert sshd_server.logins() == logins_before  # refused before authenticating: no key was offered


# -- secrets -----------------------------------------------------------------------------------------------------

PASSPHRASE = "correct horse battery staple 7f3a9"


@pytest.fixture
def agent_board(tmp_path: Path, ssh_home: SSHClientFiles, monkeypatch) -> Iterator[tuple[SSHServer, Path, str]]:
    """A board reached only through an ssh-agent holding a passphrase-protected key; yields it, the key, the socket."""
    key = tmp_path / "agent-key" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "agent-key", "-f", str(key)],
                   check=True)
    server = start_sshd(tmp_path / "agent-sshd", client_key=key)
    socket_path = tmp_path / "agent" / "sock"
    socket_path.parent.mkdir()
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        askpass = tmp_path / "askpass"
        askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
        askpass.chmod(0o700)
        environment = {**os.environ, "SSH_AUTH_SOCK": str(socket_path), "SSH_ASKPASS": str(askpass),
                       "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
        for _ in range(50):  # the agent creates its socket shortly after starting
            if socket_path.exists():
                break
            subprocess.run(["sleep", "0.1"])
        subprocess.run(["ssh-add", str(key)], env=environment, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        with ssh_home.known_hosts.open("a") as known_hosts:
            known_hosts.write(server.known_hosts_line())
        yield server, key, str(socket_path)
    finally:
        agent.terminate()
        agent.wait()
        server.stop()


@pytest.mark.ssh
def test_no_secret_reaches_results_history_logs_or_reports(capfd, isolated_cwd, agent_board, tiny_tflite) -> None:
    server, key, agent_socket = agent_board
    workdir = isolated_cwd / "board workdir"
    (isolated_cwd / "edgeprune.toml").write_text(
        f'[devices.board]\nhost = "{server.host}"\nport = {server.port}\nuser = "{server.user}"\n'
        f'python = "{sys.executable}"\nworkdir = "{workdir}"\n'
    )

    code = main(["--debug", "bench", str(tiny_tflite), "--device", "board", "--runs", "2", "--rounds", "1",
                 "-o", "results.json", "--label", "secrets"])
    assert code == 0
    assert main(["report", "results.json", "-o", "report.html", "--markdown", "report.md"]) == 0
    captured = capfd.readouterr()

    private_key_lines = [line for line in key.read_text().splitlines() if line and not line.startswith("-----")]
    secrets = [PASSPHRASE, agent_socket, str(Path(agent_socket).parent), *private_key_lines]
    places = {
        "stdout": captured.out, "stderr": captured.err,
        **{name: (isolated_cwd / name).read_text() for name in ("results.json", "report.html", "report.md")},
        "history": (isolated_cwd / ".edgeprune" / "history.sqlite").read_bytes().decode("utf-8", "replace"),
        "board lock": (workdir / "bench.lock").read_text(),
    }
    assert server.logins() == 1  # the agent's key did log in: the secrets were in play
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"{place} contains a secret"
