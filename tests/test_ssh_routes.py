"""Boards behind jump hosts: ProxyJump (from ~/.ssh/config or the inventory) and ProxyCommand, against real sshd
bastions that log every connection they forward, so each test can tell the route was really taken."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fixtures.sshd import ALIAS, ALIAS_VIA_JUMP, JUMP_ALIAS, SSHClientFiles, SSHServer, generate_key, start_sshd

from edgeprune.cli import main
from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.devices.ssh.settings import SSHSettings
from edgeprune.devices.ssh.target import resolve_target
from edgeprune.errors import ConfigError, DeviceError, HostKeyError

pytestmark = pytest.mark.ssh


def whoami(device: SSHDevice) -> str:
    result = device.run(["id", "-un"], timeout=30)
    assert result.ok, result.stderr
    return result.stdout.decode().strip()


@pytest.fixture
def bastion(tmp_path: Path, ssh_client_key: Path) -> SSHServer:
    """A bastion of the test's own (its log holds only this test's forwards)."""
    server = start_sshd(tmp_path / "bastion", client_key=ssh_client_key, extra_config="LogLevel DEBUG1\n")
    yield server
    server.stop()


def test_a_board_behind_a_jump_host_in_the_ssh_config(ssh_home_with_jump: SSHClientFiles, sshd_server: SSHServer,
                                                      jump_server: SSHServer) -> None:
    forwarded = jump_server.forwards_to(sshd_server)

    with SSHDevice("board", host=ALIAS_VIA_JUMP) as device:
        assert whoami(device) == sshd_server.user
        assert whoami(device) == sshd_server.user  # the route is reused, not built per command

    assert jump_server.forwards_to(sshd_server) == forwarded + 1
    assert device.facts() == {"via": [f"{jump_server.user}@127.0.0.1:{jump_server.port}"]}  # as results record it


def test_the_inventorys_proxy_jump_crosses_two_bastions(capsys, isolated_cwd: Path,
                                                        ssh_home_with_jump: SSHClientFiles, sshd_server: SSHServer,
                                                        jump_server: SSHServer, bastion: SSHServer) -> None:
    ssh_home_with_jump.add_host("inner-bastion", bastion)
    ssh_home_with_jump.trust_only(sshd_server.known_hosts_line(), jump_server.known_hosts_line(),
                                  bastion.known_hosts_line())
    # The alias reaches the board directly in ~/.ssh/config; the inventory routes it through both bastions.
    (isolated_cwd / "edgeprune.toml").write_text(
        f'[devices.board]\nhost = "{ALIAS}"\nproxy_jump = "{JUMP_ALIAS},inner-bastion"\npython = "{sys.executable}"\n'
        f'workdir = "{isolated_cwd / "workdir"}"\n')
    outer_forwards = jump_server.forwards_to(bastion)

    assert main(["devices", "check", "board"]) == 0

    assert jump_server.forwards_to(bastion) > outer_forwards
    assert bastion.forwards_to(sshd_server) >= 1
    assert "x86_64" in capsys.readouterr().out


def test_proxy_jump_none_in_the_inventory_connects_directly(ssh_home_with_jump: SSHClientFiles,
                                                            sshd_server: SSHServer, jump_server: SSHServer) -> None:
    forwarded = jump_server.forwards_to(sshd_server)

    with SSHDevice("board", host=ALIAS_VIA_JUMP, settings=SSHSettings(proxy_jump="none")) as device:
        assert whoami(device) == sshd_server.user

    assert jump_server.forwards_to(sshd_server) == forwarded


def test_a_proxy_command_runs_through_the_shell_like_openssh(ssh_home_with_jump: SSHClientFiles,
                                                             sshd_server: SSHServer, jump_server: SSHServer) -> None:
    # OpenSSH's own client as the proxy, reading the same config (it finds no HOME of ours on its own).
    ssh_home_with_jump.add_host(
        "board-via-command", sshd_server,
        f"ProxyCommand ssh -F {ssh_home_with_jump.config} -o BatchMode=yes -W %h:%p {JUMP_ALIAS} 2>/dev/null")
    with ssh_home_with_jump.config.open("a") as config:
        config.write(f"Host *\n    UserKnownHostsFile {ssh_home_with_jump.known_hosts}\n")
    forwarded = jump_server.forwards_to(sshd_server)

    with SSHDevice("board", host="board-via-command") as device:
        assert whoami(device) == sshd_server.user
        assert device.facts() == {"via": ["ProxyCommand"]}  # never the command line: it may hold secrets

    assert jump_server.forwards_to(sshd_server) == forwarded + 1


def test_a_changed_host_key_behind_a_proxy_command_is_reported_as_such(ssh_home_with_jump: SSHClientFiles,
                                                                        sshd_server: SSHServer,
                                                                        jump_server: SSHServer) -> None:
    ssh_home_with_jump.add_host(
        "board-via-command", sshd_server,
        f"ProxyCommand ssh -F {ssh_home_with_jump.config} -o BatchMode=yes -W %h:%p {JUMP_ALIAS} 2>/dev/null")
    with ssh_home_with_jump.config.open("a") as config:
        config.write(f"Host *\n    UserKnownHostsFile {ssh_home_with_jump.known_hosts}\n")
    ssh_home_with_jump.trust_only(sshd_server.known_hosts_line(public_key=jump_server.host_public_key),
                                  jump_server.known_hosts_line())

    # The proxy was still running: the handshake's own verdict counts, not "the ProxyCommand ended".
    with pytest.raises(HostKeyError, match=rf"host key of \[127.0.0.1\]:{sshd_server.port} has CHANGED"):
        SSHDevice("board", host="board-via-command").run(["true"], timeout=30)


def test_proxy_jump_none_also_bypasses_a_proxy_command(ssh_home: SSHClientFiles, sshd_server: SSHServer) -> None:
    ssh_home.add_host("board-via-command", sshd_server, "ProxyCommand sh -c 'exit 3'")

    with SSHDevice("board", host="board-via-command", settings=SSHSettings(proxy_jump="none")) as device:
        assert whoami(device) == sshd_server.user


def test_the_inventorys_port_and_user_reach_the_proxy_commands_tokens(tmp_path: Path) -> None:
    config = write_config(tmp_path, "Host pi\n  HostName 10.0.0.5\n  User pi\n  ProxyCommand ssh -W %h:%p -l %r gw\n")

    assert resolve_target("pi", ssh_config=config).proxy_command == "ssh -W 10.0.0.5:22 -l pi gw"
    assert resolve_target("pi", ssh_config=config, port=2222, user="ops").proxy_command == \
        "ssh -W 10.0.0.5:2222 -l ops gw"


def test_a_proxy_command_that_fails_says_why_at_once(ssh_home: SSHClientFiles, sshd_server: SSHServer) -> None:
    ssh_home.add_host("board-via-command", sshd_server, "ProxyCommand sh -c 'echo no route to lab >&2; exit 3'")
    started = time.monotonic()

    with pytest.raises(DeviceError, match=r"ProxyCommand for \S+ ended without a connection: exit status 3: "
                                          r"no route to lab \(run the host's ProxyCommand") as error:
        SSHDevice("board", host="board-via-command", settings=SSHSettings(connect_timeout=20)).run(["true"], timeout=30)

    assert "sh -c" not in str(error.value)  # errors land in results: never the command line, it may hold secrets

    assert time.monotonic() - started < 10  # not the connect timeout: the command's end is the answer


def test_a_jump_host_that_forbids_forwarding_is_named(tmp_path: Path, ssh_home: SSHClientFiles,
                                                      sshd_server: SSHServer, ssh_client_key: Path) -> None:
    closed = start_sshd(tmp_path / "closed", client_key=ssh_client_key, extra_config="AllowTcpForwarding no\n")
    try:
        ssh_home.add_host("closed-bastion", closed)
        ssh_home.trust_only(sshd_server.known_hosts_line(), closed.known_hosts_line())

        with pytest.raises(DeviceError) as error:
            SSHDevice("board", host=ALIAS, settings=SSHSettings(proxy_jump="closed-bastion")).run(["true"], timeout=30)
    finally:
        closed.stop()

    message = str(error.value)
    assert message.startswith(f"device 'board': jump host {closed.user}@127.0.0.1:{closed.port} cannot reach "
                              f"127.0.0.1:{sshd_server.port}: ")
    assert "prohibited" in message and "AllowTcpForwarding" in message


def test_an_unknown_jump_host_key_is_refused_unless_new_keys_are_accepted(
    ssh_home_with_jump: SSHClientFiles, sshd_server: SSHServer, jump_server: SSHServer
) -> None:
    ssh_home_with_jump.trust_only(sshd_server.known_hosts_line())  # the board, not the bastion

    with pytest.raises(HostKeyError, match=rf"unknown host key for \[127.0.0.1\]:{jump_server.port} "):
        SSHDevice("board", host=ALIAS_VIA_JUMP).run(["true"], timeout=30)

    with SSHDevice("board", host=ALIAS_VIA_JUMP, settings=SSHSettings(accept_new_host_key=True)) as device:
        assert whoami(device) == sshd_server.user
    assert jump_server.known_hosts_line() in ssh_home_with_jump.known_hosts.read_text()


def test_a_changed_jump_host_key_is_refused(ssh_home_with_jump: SSHClientFiles, sshd_server: SSHServer,
                                            jump_server: SSHServer) -> None:
    ssh_home_with_jump.trust_only(sshd_server.known_hosts_line(),
                                  jump_server.known_hosts_line(public_key=sshd_server.host_public_key))

    device = SSHDevice("board", host=ALIAS_VIA_JUMP, settings=SSHSettings(accept_new_host_key=True))

    with pytest.raises(HostKeyError, match=rf"host key of \[127.0.0.1\]:{jump_server.port} has CHANGED"):
        device.run(["true"], timeout=30)


def test_a_jump_host_refusing_the_key_is_named(tmp_path: Path, ssh_home_with_jump: SSHClientFiles,
                                               jump_server: SSHServer) -> None:
    stranger = generate_key(tmp_path / "stranger", "not-authorized")
    ssh_home_with_jump.add_host("picky-bastion", jump_server)
    config = ssh_home_with_jump.config.read_text()
    ssh_home_with_jump.config.write_text(config.replace(
        f"Host picky-bastion\n    HostName 127.0.0.1\n    Port {jump_server.port}\n    User {jump_server.user}\n"
        f"    IdentityFile {jump_server.client_key}",
        f"Host picky-bastion\n    HostName 127.0.0.1\n    Port {jump_server.port}\n    User {jump_server.user}\n"
        f"    IdentityFile {stranger}"))

    with pytest.raises(DeviceError, match=rf"SSH key authentication failed for jump host \S+:{jump_server.port}"):
        SSHDevice("board", host=ALIAS, settings=SSHSettings(proxy_jump="picky-bastion")).run(["true"], timeout=30)


# -- resolution alone (no connection) ----------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config"
    path.write_text(text)
    return path


def test_jump_hops_follow_their_own_config_entries(tmp_path: Path) -> None:
    config = write_config(tmp_path, "Host board\n  HostName 10.0.0.5\n  ProxyJump admin@gw.lab:2200,inner\n"
                                    "Host inner\n  HostName 192.168.1.1\n  User pi\n  Port 2222\n")

    target = resolve_target("board", user="root", ssh_config=config)

    assert [hop.address for hop in target.jumps] == ["admin@gw.lab:2200", "pi@192.168.1.1:2222"]
    assert resolve_target("board", ssh_config=config, proxy_jump="ssh://ops@[fe80::1]:22").jumps[0].address == \
        "ops@fe80::1:22"


def test_a_proxy_jump_loop_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")

    with pytest.raises(ConfigError, match=r"ProxyJump goes round in a loop: a -> b -> a"):
        resolve_target("a", ssh_config=config)


def test_proxy_jump_and_proxy_command_together_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "Host a\n  ProxyJump b\n  ProxyCommand nc %h %p\n")

    with pytest.raises(ConfigError, match=r"host 'a' sets both ProxyJump and ProxyCommand"):
        resolve_target("a", ssh_config=config)
    # The inventory's proxy_jump is an explicit choice that wins.
    assert resolve_target("a", ssh_config=config, proxy_jump="b").proxy_command is None
