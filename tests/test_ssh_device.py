"""SSH-only behaviour: host keys, ~/.ssh/config, connection failures and connection reuse, against a real sshd."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from fixtures.sshd import SSHClientFiles, SSHServer, generate_key

from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.devices.ssh.settings import SSHSettings
from edgeprune.errors import ConfigError, DeviceError, DeviceTimeout, HostKeyError

pytestmark = pytest.mark.ssh


@pytest.fixture
def open_device() -> Iterator[Callable[..., SSHDevice]]:
    """Build SSHDevices that are closed at the end of the test."""
    opened: list[SSHDevice] = []

    def build(host: str, *, name: str = "board", user: str | None = None, port: int | None = None,
              **settings: Any) -> SSHDevice:
        device = SSHDevice(name, host=host, user=user, port=port, settings=SSHSettings(**settings))
        opened.append(device)
        return device

    yield build
    for device in opened:
        device.close()


class FlakyProxy:
    """Forwards TCP to sshd, but hangs up on the first ``drop_first`` connections (like a throttling sshd)."""

    def __init__(self, target_port: int, drop_first: int) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._target_port = target_port
        self._drop_first = drop_first
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            if self.accepted <= self._drop_first:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_copy, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._listener.close()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def whoami(device: SSHDevice) -> str:
    return device.run(["id", "-un"], timeout=30).stdout.decode().strip()


def test_unknown_host_key_is_refused_with_how_to_trust_it(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    ssh_home.trust_only()

    with pytest.raises(HostKeyError) as refused:
        whoami(open_device(ssh_home.alias))

    message = str(refused.value)
    assert "device 'board'" in message
    assert f"[127.0.0.1]:{sshd_server.port}" in message
    assert "--accept-new-host-key" in message
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {ssh_home.known_hosts}" in message
    assert ssh_home.known_hosts.read_text() == ""


def test_accept_new_records_the_key_for_openssh_and_later_connects(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    ssh_home.known_hosts.unlink()

    assert whoami(open_device(ssh_home.alias, accept_new_host_key=True)) == sshd_server.user

    assert ssh_home.known_hosts.read_text() == sshd_server.known_hosts_line()
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd_server.port}", "-f", str(ssh_home.known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, "OpenSSH does not find the recorded key"
    assert whoami(open_device(ssh_home.alias)) == sshd_server.user


def test_hashed_known_hosts_entries_are_recognised(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    subprocess.run(["ssh-keygen", "-H", "-f", str(ssh_home.known_hosts)], check=True, capture_output=True)
    assert ssh_home.known_hosts.read_text().startswith("|1|")

    assert whoami(open_device(ssh_home.alias)) == sshd_server.user


def test_changed_host_key_is_refused_even_with_accept_new(
    ssh_home: SSHClientFiles,
    sshd_server: SSHServer,
    sshd_factory: Callable[[], SSHServer],
    open_device: Callable[..., SSHDevice],
) -> None:
    reinstalled = sshd_factory()  # same alias, same login, a different host key
    ssh_home.point_alias_at(reinstalled)
    stale_record = reinstalled.known_hosts_line(sshd_server.host_public_key)
    ssh_home.trust_only("# boards\n", sshd_server.known_hosts_line(), stale_record)

    with pytest.raises(HostKeyError) as refused:
        whoami(open_device(ssh_home.alias, accept_new_host_key=True))

    message = str(refused.value)
    assert "CHANGED" in message
    assert f"{ssh_home.known_hosts} line 3" in message
    assert f"ssh-keygen -R '[127.0.0.1]:{reinstalled.port}'" in message
    assert ssh_home.known_hosts.read_text().count("\n") == 3  # nothing recorded


def test_ssh_config_alias_supplies_hostname_port_user_and_identity(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    device = open_device(ssh_home.alias)

    assert (device.target.hostname, device.target.port, device.target.user) == (
        "127.0.0.1",
        sshd_server.port,
        sshd_server.user,
    )
    assert device.target.identity_files == (str(sshd_server.client_key),)
    assert device.address == f"{sshd_server.user}@127.0.0.1:{sshd_server.port}"
    # HOME holds no default keys and the agent is hidden: only the configured IdentityFile can log in.
    assert whoami(device) == sshd_server.user


def test_inventory_values_win_over_the_ssh_config(ssh_home: SSHClientFiles, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("")
    device = SSHDevice("board", host=ssh_home.alias, user="pi", port=2200,
                       settings=SSHSettings(identity_file=tmp_path / "key"))

    assert (device.target.hostname, device.target.port, device.target.user) == ("127.0.0.1", 2200, "pi")
    assert device.target.identity_files == (str(tmp_path / "key"),)


def test_missing_explicit_identity_file_is_a_config_error(ssh_home: SSHClientFiles, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"identity file \S*nokey for host .edgeprune-test-board. does not exist"):
        SSHDevice("board", host=ssh_home.alias, settings=SSHSettings(identity_file=tmp_path / "nokey"))


def test_missing_identity_files_in_the_ssh_config_are_skipped_like_openssh_does(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    config = ssh_home.config.read_text()
    ssh_home.config.write_text(config + "    IdentityFile ~/.ssh/id_missing\n")

    assert whoami(open_device(ssh_home.alias)) == sshd_server.user


def test_workdir_defaults_to_the_cache_folder_in_the_remote_home(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    remote_home = pwd.getpwnam(sshd_server.user).pw_dir

    assert open_device(ssh_home.alias).workdir == f"{remote_home}/.cache/edgeprune"
    assert open_device(ssh_home.alias, workdir="~/bench").workdir == f"{remote_home}/bench"


def test_closed_port_fails_fast_naming_device_address_and_cause(open_device: Callable[..., SSHDevice]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()

    with pytest.raises(DeviceError) as failed:
        open_device("127.0.0.1", name="pi", user="pi", port=port, connect_retries=2, retry_backoff=0.05).run(
            ["true"], timeout=30
        )

    assert time.monotonic() - started < 5
    assert str(failed.value).startswith(f"device 'pi': cannot connect to pi@127.0.0.1:{port}: connection refused")


def test_silent_server_times_out_after_the_connect_timeout(open_device: Callable[..., SSHDevice]) -> None:
    with socket.socket() as silent:  # accepts TCP connections (backlog) but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()

        with pytest.raises(DeviceTimeout) as failed:
            open_device(
                "127.0.0.1", name="pi", user="pi", port=port, connect_timeout=0.5, connect_retries=0
            ).run(["true"], timeout=30)

    assert time.monotonic() - started < 5
    assert f"device 'pi': no SSH answer from pi@127.0.0.1:{port} within 0.5 s" in str(failed.value)


def test_wrong_key_fails_authentication_without_leaking_secrets(
    ssh_home: SSHClientFiles, tmp_path: Path, open_device: Callable[..., SSHDevice]
) -> None:
    stranger = generate_key(tmp_path / "stranger", "not-authorized")
    device = open_device(ssh_home.alias, identity_file=stranger)

    with pytest.raises(DeviceError) as failed:
        whoami(device)

    message = str(failed.value)
    assert "SSH key authentication failed for" in message
    assert "ssh-copy-id" in message
    assert "PRIVATE KEY" not in message and stranger.read_text().splitlines()[1] not in message


def test_passphrase_protected_key_without_agent_is_an_authentication_error(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, tmp_path: Path, open_device: Callable[..., SSHDevice]
) -> None:
    locked = tmp_path / "locked"
    locked.write_bytes(sshd_server.client_key.read_bytes())
    locked.chmod(0o600)
    locked.with_suffix(".pub").write_bytes(sshd_server.client_key.with_suffix(".pub").read_bytes())
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-P", "", "-N", "hunter2-passphrase", "-f", str(locked)],
        check=True,
        capture_output=True,
    )

    with pytest.raises(DeviceError) as failed:
        whoami(open_device(ssh_home.alias, identity_file=locked))

    assert "authentication failed" in str(failed.value)
    assert "ssh-add" in str(failed.value)
    assert "hunter2" not in str(failed.value)


def test_transient_connect_failures_are_retried(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    proxy = FlakyProxy(sshd_server.port, drop_first=2)
    try:
        device = open_device(
            "127.0.0.1",
            port=proxy.port,
            identity_file=sshd_server.client_key,
            accept_new_host_key=True,
            connect_retries=2,
            retry_backoff=0.05,
        )
        assert whoami(device) == sshd_server.user
        assert proxy.accepted == 3
    finally:
        proxy.close()


def test_ssh_config_accept_new_and_known_hosts_file_are_honoured(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice]
) -> None:
    other_file = ssh_home.home / "lab_known_hosts"
    config = ssh_home.config.read_text()
    ssh_home.config.write_text(
        config + "    StrictHostKeyChecking accept-new\n    UserKnownHostsFile ~/lab_known_hosts\n"
    )

    assert whoami(open_device(ssh_home.alias)) == sshd_server.user
    assert other_file.read_text() == sshd_server.known_hosts_line()


def test_known_hosts_in_dev_null_connects_but_warns_that_nothing_is_checked(
    caplog: pytest.LogCaptureFixture, ssh_home: SSHClientFiles, sshd_server: SSHServer,
    open_device: Callable[..., SSHDevice]
) -> None:
    config = ssh_home.config.read_text()
    ssh_home.config.write_text(config + "    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n")

    assert whoami(open_device(ssh_home.alias)) == sshd_server.user
    assert f"device 'board': accepted the host key of [127.0.0.1]:{sshd_server.port}" in caplog.text
    assert "its known_hosts is /dev/null, so this host's identity is never checked" in caplog.text


def test_one_connection_serves_every_call_until_closed(
    ssh_home: SSHClientFiles, sshd_server: SSHServer, open_device: Callable[..., SSHDevice], tmp_path: Path
) -> None:
    logins_before = sshd_server.logins()
    device = open_device(ssh_home.alias, workdir=str(tmp_path / "work"))
    source = tmp_path / "source"
    source.write_bytes(b"payload")

    for _ in range(5):
        whoami(device)
    device.make_private_dir(device.workdir)
    device.upload(source, f"{device.workdir}/file")
    device.download(f"{device.workdir}/file", tmp_path / "back")
    assert device.exists(f"{device.workdir}/file")
    with pytest.raises(DeviceTimeout):
        device.run(["sleep", "30"], timeout=0.5)
    whoami(device)

    assert sshd_server.logins() - logins_before == 1
    device.close()
    whoami(device)  # a closed device reconnects when used again
    assert sshd_server.logins() - logins_before == 2


def test_timeout_kills_children_of_the_command_too(
    ssh_home: SSHClientFiles, open_device: Callable[..., SSHDevice], tmp_path: Path
) -> None:
    pid_file = tmp_path / "child-pid"
    script = 'sleep 60 & echo $! > "$1"; wait'

    with pytest.raises(DeviceTimeout):
        open_device(ssh_home.alias).run(["sh", "-c", script, "sh", str(pid_file)], timeout=1)

    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the command's child {child} survived the timeout")
