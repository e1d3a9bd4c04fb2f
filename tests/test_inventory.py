"""The inventory file: parsing, strictness, where it is found, and choosing devices by name and tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.devices.inventory import DeviceSpec, Inventory
from edgeprune.devices.local import LocalDevice
from edgeprune.devices.ssh.device import SSHDevice
from edgeprune.errors import ConfigError, UsageError

VALID = """\
[devices.pi4]
host = "pi4.lan"
user = "pi"
port = 2222
identity_file = "keys/pi4"
python = "/usr/bin/python3"
workdir = "/srv/edgeprune"
threads = 4
tags = ["arm64", "pi"]

[devices.jetson]
host = "jetson"
tags = ["arm64", "gpu"]

[devices.local]
threads = 2
workdir = "/tmp/edgeprune-local"
tags = ["x86"]
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer inventory, environment or ~/.ssh leaks into these tests."""
    monkeypatch.delenv("EDGEPRUNE_INVENTORY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "edgeprune.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_file_gives_frozen_specs_with_local_first(tmp_path: Path) -> None:
    inventory = Inventory.load(write(tmp_path, VALID))

    assert inventory.names() == ["local", "pi4", "jetson"]
    assert inventory.spec("pi4") == DeviceSpec(
        name="pi4",
        host="pi4.lan",
        user="pi",
        port=2222,
        identity_file="keys/pi4",
        python="/usr/bin/python3",
        workdir="/srv/edgeprune",
        threads=4,
        tags=("arm64", "pi"),
    )
    assert inventory.spec("local") == DeviceSpec(
        name="local", threads=2, workdir="/tmp/edgeprune-local", tags=("x86",)
    )
    with pytest.raises(AttributeError):
        inventory.spec("pi4").host = "other"  # type: ignore[misc]


def test_open_builds_local_and_ssh_devices_without_connecting(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "pi4").write_text("")
    inventory = Inventory.load(write(tmp_path, VALID))

    local = inventory.open("local")
    board = inventory.open("pi4", accept_new_host_key=True)

    assert isinstance(local, LocalDevice)
    assert (local.workdir, local.threads, local.tags) == ("/tmp/edgeprune-local", 2, ("x86",))
    assert isinstance(board, SSHDevice)
    assert board.address == "pi@pi4.lan:2222"
    assert (board.python, board.threads, board.tags) == ("/usr/bin/python3", 4, ("arm64", "pi"))
    assert board.target.accept_new_host_key
    # A relative identity_file is relative to the inventory file, not to where edgeprune runs.
    assert board.target.identity_files == (str(tmp_path / "keys" / "pi4"),)


def test_missing_identity_file_names_file_device_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)

    with pytest.raises(ConfigError, match=r"edgeprune.toml: \[devices.pi4\] identity_file .*keys/pi4 does not exist"):
        Inventory.load(path).open("pi4")


def test_unknown_key_names_file_line_device_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[devices.local]\nthreads = 1\n\n[devices.pi4]\nhots = "pi4"\n')

    with pytest.raises(ConfigError) as error:
        Inventory.load(path)

    assert str(error.value) == f"{path}:5: [devices.pi4] unknown key 'hots' (did you mean 'host'?)"


JUMP_HINT = '(e.g. proxy_jump = "bastion" or "admin@gw.lab:2222,inner" for several hops)'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('port = "22"', "key 'port' must be an integer, not a string"),
        ("port = true", "key 'port' must be an integer, not a boolean"),
        ("port = 70000", "port 70000 is not between 1 and 65535"),
        ("threads = 0", "threads must be at least 1, not 0"),
        ('tags = "arm64"', "key 'tags' must be a list of strings, not a string"),
        ("tags = [64]", "tags must be a list of non-empty strings"),
        ('user = ""', "key 'user' is empty"),
        ('proxy_jump = "a@@gw"', "proxy_jump 'a@@gw' is not [user@]host[:port] " + JUMP_HINT),
        ('proxy_jump = "gw,"', "proxy_jump 'gw,' is not [user@]host[:port] " + JUMP_HINT),
    ],
)
def test_wrong_types_and_values_name_file_line_device_and_key(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, f'[devices.pi4]\nhost = "pi4"\n{line}\n')

    with pytest.raises(ConfigError) as error:
        Inventory.load(path)

    assert str(error.value) == f"{path}:3: [devices.pi4] {expected}"


def test_ssh_keys_do_not_apply_to_local(tmp_path: Path) -> None:
    path = write(tmp_path, '[devices.local]\nhost = "example"\n')

    with pytest.raises(ConfigError, match=r":2: \[devices.local\] key 'host' does not apply"):
        Inventory.load(path)


def test_a_remote_device_needs_a_host(tmp_path: Path) -> None:
    path = write(tmp_path, "[devices.pi4]\nthreads = 4\n")

    with pytest.raises(ConfigError, match=r":1: \[devices.pi4\] has no 'host'"):
        Inventory.load(path)


def test_invalid_toml_and_unknown_top_level_keys_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        Inventory.load(write(tmp_path, "[devices.pi4\n"))
    with pytest.raises(ConfigError, match="unknown top-level key 'device'"):
        Inventory.load(write(tmp_path, '[device.pi4]\nhost = "x"\n'))


def test_unknown_device_lists_the_known_ones(tmp_path: Path) -> None:
    inventory = Inventory.load(write(tmp_path, VALID))

    with pytest.raises(UsageError, match=r"unknown device 'pi5' \(known: local, pi4, jetson\)"):
        inventory.open("pi5")


def test_file_resolution_explicit_then_environment_then_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Inventory.load(None).names() == ["local"]  # no ./edgeprune.toml: just this machine

    write(tmp_path, '[devices.from_cwd]\nhost = "a"\n')
    assert Inventory.load(None).names() == ["local", "from_cwd"]

    monkeypatch.setenv("EDGEPRUNE_INVENTORY", str(write(tmp_path, '[devices.from_env]\nhost = "b"\n', "env.toml")))
    assert Inventory.load(None).names() == ["local", "from_env"]

    explicit = write(tmp_path, '[devices.explicit]\nhost = "c"\n', "explicit.toml")
    assert Inventory.load(explicit).names() == ["local", "explicit"]


def test_missing_explicit_or_environment_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="inventory file .*nope.toml does not exist"):
        Inventory.load(tmp_path / "nope.toml")

    monkeypatch.setenv("EDGEPRUNE_INVENTORY", str(tmp_path / "gone.toml"))
    with pytest.raises(UsageError, match=r"gone.toml \(from \$EDGEPRUNE_INVENTORY\) does not exist"):
        Inventory.load(None)


def test_select_by_names_and_tags(tmp_path: Path) -> None:
    inventory = Inventory.load(write(tmp_path, VALID))

    assert inventory.select() == ["local", "pi4", "jetson"]
    assert inventory.select(tags=["arm64"]) == ["pi4", "jetson"]
    assert inventory.select(tags=["arm64", "gpu"]) == ["jetson"]
    assert inventory.select(["jetson", "pi4", "jetson"]) == ["jetson", "pi4"]
    assert inventory.select(["local", "pi4"], ["arm64"]) == ["pi4"]


def test_select_rejects_unknown_names_unknown_tags_and_empty_results(tmp_path: Path) -> None:
    inventory = Inventory.load(write(tmp_path, VALID))

    with pytest.raises(UsageError, match="unknown device 'nano'"):
        inventory.select(["nano"])
    with pytest.raises(UsageError, match=r"no device has tag 'riscv' \(known tags: arm64, gpu, pi, x86\)"):
        inventory.select(tags=["riscv"])
    with pytest.raises(UsageError, match="none of local has all of the tags gpu"):
        inventory.select(["local"], ["gpu"])
