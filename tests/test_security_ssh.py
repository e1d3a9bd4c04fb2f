"""Resolving and trusting SSH hosts (issue 12): names from an inventory or a board farm never reach a shell through
~/.ssh/config, host keys are judged as OpenSSH judges them, and ~/.ssh/config is read as OpenSSH reads it.

Each attack is performed for real: a marker file is what an injected command would have made; host-key decisions
are made against a real sshd and compared with what OpenSSH's own ``ssh`` decides with the same files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from fixtures.labgrid_farm import BOARD_PLACES, LOOPBACK, LabgridFarm, labgrid_tool
from fixtures.sshd import ALIAS, SSHClientFiles, SSHServer, host_entry, start_sshd

from edgeprune.cli import main
from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.devices.ssh.settings import SSHSettings
from edgeprune.errors import ConfigError, HostKeyError

OPENSSH = Path("/usr/bin/ssh")
BENCH_ARGS = ["--runs", "1", "--rounds", "1", "--warmup", "0", "--no-history", "-o", "results.json"]


def match_exec(marker: Path | str) -> str:
    """What an attacker appends after a newline: an ssh_config line that runs a command while the host resolves."""
    return f'\nMatch exec "touch {marker}"'


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string, escapes included


def device_table(name: str, **keys: str | int) -> str:
    lines = "".join(f"{key} = {toml_string(value) if isinstance(value, str) else value}\n"
                    for key, value in keys.items())
    return f"[devices.{name}]\n{lines}\n"


def runs_by_device(results: Path) -> dict[str, list[dict]]:
    by_device: dict[str, list[dict]] = {}
    for run in json.loads(results.read_text())["runs"]:
        by_device.setdefault(run["device"], []).append(run)
    return by_device


def bench(capsys: pytest.CaptureFixture[str], model: Path, *devices: str) -> tuple[int, str, dict[str, list[dict]]]:
    code = main(["bench", str(model), *(arg for device in devices for arg in ("--device", device)), *BENCH_ARGS])
    err = capsys.readouterr().err
    return code, err, runs_by_device(Path("results.json"))


# -- names from the inventory (items 1 and 2) ---------------------------------------------------------------------


@pytest.mark.ssh
@pytest.mark.parametrize("key", ["user", "host", "proxy_jump"])
def test_a_newline_and_match_exec_in_an_inventory_name_runs_nothing_and_the_clean_device_still_runs(
        capsys, key: str, isolated_cwd: Path, ssh_home: SSHClientFiles, sshd_server: SSHServer,
        tiny_tflite: Path) -> None:
    marker = "pwned"  # relative: the Match exec runs here; no '/', which a proxy_jump hop may not hold
    settings = dict(python=sys.executable, workdir=str(isolated_cwd / "workdir"))
    # A user or port given explicitly is what used to be spliced into the config text, host included.
    evil = {"host": ALIAS, "user": sshd_server.user, "port": sshd_server.port, **settings}
    if key == "proxy_jump":
        evil[key] = f"{sshd_server.user}@{ALIAS}{match_exec(marker)}"
    else:
        evil[key] += match_exec(marker)
    (isolated_cwd / "edgeprune.toml").write_text(device_table("evil", **evil) + device_table("good", host=ALIAS,
                                                                                                **settings))

    code, err, runs = bench(capsys, tiny_tflite, "evil", "good")

    assert not (isolated_cwd / marker).exists(), "the injected Match exec ran"
    assert code == 1  # some runs failed
    assert [run["status"] for run in runs["good"]] == ["ok"]
    [failed] = runs["evil"]
    assert failed["status"] == "failed"
    assert f"[devices.evil] key '{key}' is " in failed["error"] and "control character '\\n'" in failed["error"]
    # Its progress line and its run's error line: each whole on one line (the newline shown escaped).
    told = [line for line in err.splitlines() if "[devices.evil]" in line]
    assert len(told) == 2 and all(f"key '{key}' is " in line and line.endswith(("'\\n'", "(%h, %r))"))
                                  for line in told)


@pytest.mark.ssh
@pytest.mark.parametrize(("key", "value", "config_line"), [
    ("host", "$(touch {marker})", "ProxyCommand nc %h %p"),
    ("host", "$(touch {marker})", 'Match exec "test %h = nobody"'),
    ("host", "`touch {marker}`", "ProxyCommand nc %h %p"),
    ("user", "`touch {marker}`", "ProxyCommand ssh -l %r -W %h:%p gateway"),
    ("user", "x;touch${{IFS}}{marker}", "ProxyCommand ssh -l %r -W %h:%p gateway"),
    ("proxy_jump", "$(touch pwned)", "ProxyCommand nc %h %p"),  # no '/' in a hop: relative, run here
])
def test_shell_metacharacters_in_names_never_reach_a_proxy_command_or_match_exec(
        capsys, key: str, value: str, config_line: str, isolated_cwd: Path, ssh_home: SSHClientFiles,
        tiny_tflite: Path) -> None:
    """OpenSSH 9.6+ refuses such names on its command line (ssh_valid_hostname/ssh_valid_ruser); ssh_config's
    %h and %r would put them into the shell that runs a ProxyCommand or Match exec."""
    marker = isolated_cwd / "pwned"
    with ssh_home.config.open("a") as config:
        config.write(f"Host *\n    {config_line}\n")
    table = {"host": ALIAS, "python": sys.executable, key: value.format(marker=marker)}
    (isolated_cwd / "edgeprune.toml").write_text(device_table("evil", **table))

    code = main(["devices", "check", "evil"])
    err = capsys.readouterr().err

    assert not marker.exists(), "the name reached a shell"
    assert code == 2
    [line] = err.strip().splitlines()
    assert "[devices.evil]" in line and f"key '{key}'" in line and "OpenSSH refuses such names too" in line
    assert "metacharacter" in line


def test_names_openssh_accepts_still_resolve(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host *\n    ProxyCommand nc %h %p\n")
    settings = SSHSettings(ssh_config=config)
    for host in ("pi4.lab", "10.0.0.5", "fe80::1%eth0", "board_7"):
        assert SSHDevice("board", host=host, user="ci$", settings=settings).target.proxy_command == f"nc {host} 22"
    assert SSHDevice("board", host="pi4", user="LAB\\ci", settings=settings).target.user == "LAB\\ci"


# -- names from a board farm (item 1) ------------------------------------------------------------------------------

EVIL_EXPORTER = "rack-evil"


@pytest.fixture
def evil_places(labgrid_farm: LabgridFarm, isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch,
                ) -> Iterator[tuple[LabgridFarm, Path]]:
    """Places published by a second exporter on the same farm, whose NetworkService holds injected names; each
    points at a real board, so only the names stand between the attacker and a bench."""
    monkeypatch.setenv("HOME", str(isolated_cwd / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    farm = labgrid_farm
    marker = isolated_cwd / "pwned"
    board = farm.boards[BOARD_PLACES[0]]
    services = {
        "evil-user": {"address": LOOPBACK, "username": board.user + match_exec(marker)},
        "evil-address": {"address": LOOPBACK + match_exec(marker), "username": board.user},
        "evil-shell": {"address": f"$(touch {marker})", "username": board.user},
    }
    exporter_yaml = farm.folder / "evil-exporter.yaml"
    exporter_yaml.write_text("".join(
        f"{place}:\n  NetworkService:\n    address: {json.dumps(service['address'])}\n"
        f"    username: {json.dumps(service['username'])}\n    port: {board.port}\n"
        for place, service in services.items()))
    started = len(farm.processes)
    farm.start("evil-exporter", [labgrid_tool("labgrid-exporter"), "-c", farm.coordinator, "--name", EVIL_EXPORTER,
                                 str(exporter_yaml)])
    try:
        farm.wait_for("the evil exporter's resources",
                      lambda: farm.client("resources").count(f"{EVIL_EXPORTER}/") == len(services))
        for place in services:
            farm.client("create", place=place)
            farm.client("add-match", f"{EVIL_EXPORTER}/{place}/NetworkService", place=place)
        yield farm, marker
    finally:
        farm.reset()
        for place in services:
            farm.client("delete", place=place)
        for process in farm.processes[started:]:
            process.terminate()
            process.wait(timeout=10)
        del farm.processes[started:]


@pytest.mark.labgrid
@pytest.mark.ssh
def test_a_farm_exporters_injected_names_run_nothing_and_a_good_place_still_runs(
        capsys, evil_places: tuple[LabgridFarm, Path], isolated_cwd: Path, tiny_tflite: Path) -> None:
    farm, marker = evil_places
    key = next(iter(farm.boards.values())).client_key
    tables = [device_table(name, labgrid_place=place, labgrid_coordinator=farm.coordinator, identity_file=str(key),
                           python=sys.executable, workdir=str(isolated_cwd / "workdirs" / name))
              for name, place in (("evil-user", "evil-user"), ("evil-address", "evil-address"),
                                  ("evil-shell", "evil-shell"), ("good", BOARD_PLACES[1]))]
    (isolated_cwd / "edgeprune.toml").write_text("".join(tables))

    code = main(["bench", str(tiny_tflite), *(arg for name in ("evil-user", "evil-address", "evil-shell", "good")
                                              for arg in ("--device", name)), "--accept-new-host-key", *BENCH_ARGS])
    capsys.readouterr()
    runs = runs_by_device(Path("results.json"))

    assert not marker.exists(), "the exporter's names ran a command"
    assert code == 1
    assert [run["status"] for run in runs["good"]] == ["ok"]
    for place, key_name in (("evil-user", "username"), ("evil-address", "address"), ("evil-shell", "address")):
        [failed] = runs[place]
        assert failed["status"] == "failed"
        assert f"place {place}: exporter {EVIL_EXPORTER}'s NetworkService {key_name} " in failed["error"]
        assert "\n" not in failed["error"]
        assert farm.holder(place) is None  # released at once
    assert farm.reservation_tokens() == []


# -- host keys, side by side with OpenSSH (item 6) ------------------------------------------------------------------


@dataclass
class KnownHostsScene:
    """A client side for one host: an ssh config and its known_hosts files, all in one folder."""

    config: Path
    user_files: list[Path]
    global_file: Path

    def contents(self) -> list[str | None]:
        return [path.read_text() if path.exists() else None for path in (*self.user_files, self.global_file)]


def build_scene(folder: Path, server: SSHServer, user_texts: list[str | None], global_text: str) -> KnownHostsScene:
    folder.mkdir()
    user_files = [folder / f"known_hosts_{index}" for index in range(len(user_texts))]
    for path, text in zip(user_files, user_texts):
        if text is not None:
            path.write_text(text)
    global_file = folder / "ssh_known_hosts"
    global_file.write_text(global_text)
    config = folder / "config"
    config.write_text(host_entry(ALIAS, server, f"UserKnownHostsFile {' '.join(map(str, user_files))}",
                                 f"GlobalKnownHostsFile {global_file}"))
    return KnownHostsScene(config, user_files, global_file)


def openssh_accepts(scene: KnownHostsScene) -> bool:
    result = subprocess.run([str(OPENSSH), "-F", str(scene.config), "-o", "BatchMode=yes",
                             "-o", "StrictHostKeyChecking=accept-new", ALIAS, "true"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode in (0, 255), result.stderr
    return result.returncode == 0


def edgeprune_accepts(scene: KnownHostsScene) -> bool:
    device = SSHDevice("board", host=ALIAS, settings=SSHSettings(ssh_config=scene.config, accept_new_host_key=True))
    try:
        return device.run(["true"], timeout=60).ok
    except HostKeyError:
        return False
    finally:
        device.close()


def hashed(text: str, tmp_path: Path) -> str:
    """``text`` (known_hosts lines) with the names hashed by OpenSSH's own ssh-keygen -H."""
    path = tmp_path / "to-hash"
    path.write_text(text)
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    return path.read_text()


# (user files, global file, OpenSSH's verdict: accepted?, a new key recorded in the first user file?)
# In each, edgeprune connects to a host that presents the key PRESENTED; REAL is another key (the host's true one,
# when the host is an impostor). {name} is [127.0.0.1]:port, {port} the port.
HOST_KEY_CASES = {
    "real key in GlobalKnownHostsFile": ([""], "{name} REAL", False, False),
    "@revoked marks the presented key": (["@revoked {name} PRESENTED\n"], "", False, False),
    "@revoked by pattern, key also recorded": (["{name} PRESENTED\n@revoked * PRESENTED\n"], "", False, False),
    "real key under a * pattern": (["[127.0.0.*]:{port} REAL\n"], "", False, False),
    "real key under a ? pattern": (["[127.0.0.?]:{port} REAL\n"], "", False, False),
    "presented key under a pattern": (["[127.0.0.*]:{port} PRESENTED\n"], "", True, False),
    "pattern negated for this host": (["[127.0.0.*]:{port},![127.0.0.1]:{port} REAL\n"], "", True, True),
    "real key under a hashed name": (["HASH:{name} REAL\n"], "", False, False),
    "presented key under a hashed name": (["HASH:{name} PRESENTED\n"], "", True, False),
    "@cert-authority is no host key": (["@cert-authority * PRESENTED\n"], "", True, True),
    "presented key in the second user file": (["", "{name} PRESENTED\n"], "", True, False),
    "real key in the second user file": (["", "{name} REAL\n"], "", False, False),
    "presented key under the name without port": (["127.0.0.1 PRESENTED\n"], "", True, False),
    "real key under the name without port": (["127.0.0.1 REAL\n"], "", True, True),
    "new host, first user file missing": ([None, ""], "", True, True),
}


@pytest.mark.ssh
@pytest.mark.skipif(not OPENSSH.is_file(), reason="OpenSSH's ssh client is not installed")
@pytest.mark.parametrize("case", HOST_KEY_CASES)
def test_accept_new_decides_like_openssh(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         sshd_server: SSHServer, sshd_factory: Callable[[], SSHServer]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # nothing of the developer's ~/.ssh
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    host = sshd_factory()
    user_texts, global_text, accepted, recorded = HOST_KEY_CASES[case]
    name = f"[127.0.0.1]:{host.port}"

    def fill(text: str | None) -> str | None:
        if text is None:
            return None
        text = text.format(name=name, port=host.port).replace("PRESENTED", host.host_public_key).replace(
            "REAL", sshd_server.host_public_key)
        return "".join(hashed(line[5:] + "\n", tmp_path) if line.startswith("HASH:") else line + "\n"
                       for line in text.splitlines())

    users, global_file = [fill(text) for text in user_texts], fill(global_text) or ""
    for_openssh = build_scene(tmp_path / "openssh", host, users, global_file)
    for_edgeprune = build_scene(tmp_path / "edgeprune", host, users, global_file)
    before = for_edgeprune.contents()

    assert openssh_accepts(for_openssh) is accepted  # the case says what OpenSSH does: checked first
    assert edgeprune_accepts(for_edgeprune) is accepted
    assert for_edgeprune.contents() == for_openssh.contents()  # the same key recorded in the same file, or none
    after = for_edgeprune.contents()
    expected = list(before)
    if recorded:
        expected[0] = (before[0] or "") + f"{name} {host.host_public_key}\n"
    assert after == expected


@pytest.mark.ssh
@pytest.mark.skipif(not OPENSSH.is_file(), reason="OpenSSH's ssh client is not installed")
def test_a_host_with_several_keys_is_asked_for_the_recorded_type_first_like_openssh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ssh_client_key: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    ecdsa_key = tmp_path / "ssh_host_ecdsa_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa_key)], check=True)
    # Offers its ed25519 key (paramiko's first choice) and an ecdsa one; only the ecdsa one is recorded.
    host = start_sshd(tmp_path / "sshd", client_key=ssh_client_key, extra_config=f"HostKey {ecdsa_key}\n")
    try:
        recorded = f"[127.0.0.1]:{host.port} {' '.join(ecdsa_key.with_suffix('.pub').read_text().split()[:2])}\n"
        scenes = [build_scene(tmp_path / tool, host, [recorded], "") for tool in ("openssh", "edgeprune")]

        assert openssh_accepts(scenes[0]) and edgeprune_accepts(scenes[1])
        assert scenes[1].contents() == scenes[0].contents() == [recorded, ""]  # no CHANGED, nothing recorded
    finally:
        host.stop()


@pytest.mark.ssh
def test_hash_known_hosts_records_a_hashed_name_that_openssh_finds(ssh_home: SSHClientFiles,
                                                                   sshd_server: SSHServer) -> None:
    ssh_home.trust_only()
    with ssh_home.config.open("a") as config:
        config.write("    HashKnownHosts yes\n")

    with SSHDevice("board", host=ssh_home.alias, settings=SSHSettings(accept_new_host_key=True)) as device:
        assert device.run(["true"], timeout=30).ok

    name = f"[127.0.0.1]:{sshd_server.port}"
    assert ssh_home.known_hosts.read_text().startswith("|1|") and name not in ssh_home.known_hosts.read_text()
    found = subprocess.run(["ssh-keygen", "-F", name, "-f", str(ssh_home.known_hosts)], capture_output=True,
                           text=True, check=False)
    assert found.returncode == 0 and sshd_server.host_public_key in found.stdout


@pytest.mark.ssh
def test_a_revoked_key_is_refused_with_the_line_that_revokes_it(ssh_home: SSHClientFiles,
                                                                 sshd_server: SSHServer) -> None:
    ssh_home.trust_only(sshd_server.known_hosts_line(), f"@revoked * {sshd_server.host_public_key}\n")
    device = SSHDevice("board", host=ssh_home.alias, settings=SSHSettings(accept_new_host_key=True))

    with pytest.raises(HostKeyError, match=rf"the host key of \[127.0.0.1\]:{sshd_server.port} \(ssh-ed25519 \S+\) "
                                           rf"is REVOKED in {ssh_home.known_hosts} line 2"):
        device.run(["true"], timeout=30)


# -- reading ~/.ssh/config (items 7 and 10) -------------------------------------------------------------------------


@pytest.mark.ssh
def test_include_follows_relative_paths_and_globs_within_their_block(ssh_home: SSHClientFiles,
                                                                     sshd_server: SSHServer) -> None:
    dot_ssh = ssh_home.config.parent
    (dot_ssh / "boards.d").mkdir()
    # The glob's files in sorted order: the first value wins, so 10-board's Port must beat 20-decoy's.
    (dot_ssh / "boards.d" / "10-board.conf").write_text(
        f"Host {ALIAS}\n    HostName {sshd_server.host}\n    Port {sshd_server.port}\n")
    (dot_ssh / "boards.d" / "20-decoy.conf").write_text(f"Host {ALIAS}\n    Port 1\n")
    (dot_ssh / "boards.d" / "ignored.txt").write_text(f"Host {ALIAS}\n    Port 2\n")
    # Included inside a Host block: only hosts of that block get the key, and the block goes on after it.
    (dot_ssh / "lab-keys").write_text(f"IdentityFile {sshd_server.client_key}\nIdentitiesOnly yes\n")
    ssh_home.config.write_text(f"Include boards.d/*.conf\nHost edgeprune-*\n    Include lab-keys\n"
                               f"    User {sshd_server.user}\nHost other\n    Include lab-keys\n")

    with SSHDevice("board", host=ALIAS) as device:
        assert device.run(["id", "-un"], timeout=30).stdout.decode().strip() == sshd_server.user
        assert (device.target.hostname, device.target.port) == ("127.0.0.1", sshd_server.port)
        assert device.target.identity_files == (str(sshd_server.client_key),)
    unrelated = SSHDevice("unrelated", host="pi4").target
    assert (unrelated.identity_files, unrelated.port) == ((), 22)


def test_include_loops_and_files_others_may_write_are_config_errors(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    dot_ssh = tmp_path / ".ssh"
    dot_ssh.mkdir()
    config = dot_ssh / "config"
    config.write_text("Include config\n")
    with pytest.raises(ConfigError, match="Includes nest more than 16 deep"):
        SSHDevice("board", host="pi4")

    marker = tmp_path / "pwned"
    (dot_ssh / "shared").write_text(f'Match exec "touch {marker}"\n')
    (dot_ssh / "shared").chmod(0o666)
    config.write_text("Include shared\n")
    with pytest.raises(ConfigError, match=rf"{dot_ssh / 'shared'}: bad owner or permissions"):
        SSHDevice("board", host="pi4")
    assert not marker.exists()


def test_a_non_utf8_ssh_config_is_one_config_error_naming_it(capsys, isolated_cwd: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(isolated_cwd / "home"))
    config = isolated_cwd / "home" / ".ssh" / "config"
    config.parent.mkdir(parents=True)
    config.write_bytes(b"Host pi4\n    User p\xe9\n")
    (isolated_cwd / "edgeprune.toml").write_text(device_table("pi4", host="pi4"))

    assert main(["devices", "check", "pi4"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"{config}: cannot read SSH config: not UTF-8 text (byte 19)" in line


@pytest.mark.parametrize(("content", "reason"), [
    (b'[devices.pi4]\nhost = "p\xe9"\n', "not UTF-8 text"),
    (b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
])
def test_an_unreadable_inventory_is_one_config_error_naming_it(capsys, isolated_cwd: Path, content: bytes,
                                                                reason: str) -> None:
    (isolated_cwd / "edgeprune.toml").write_bytes(content)

    assert main(["devices", "list"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "edgeprune.toml" in line and reason in line
