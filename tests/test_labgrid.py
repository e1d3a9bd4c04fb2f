"""Board farms: benches on labgrid places, against a real coordinator and exporter on 127.0.0.1 (issue 9).

The places' NetworkService resources point at test sshd instances, so a bench on a place is a real SSH bench.
Every test checks that the farm is left as it was found: places free, no reservation queued.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest
from edgeprune.cli import main
from edgeprune.devices.inventory import DeviceSpec, Inventory
from edgeprune.errors import ConfigError
from fixtures.labgrid_farm import EXPORTER, OTHER_USER, LabgridFarm, free_port, require_labgrid

BENCH_ARGS = ["--runs", "3", "--rounds", "1", "--warmup", "1", "--accept-new-host-key", "--no-history"]


@pytest.fixture
def farm(labgrid_farm: LabgridFarm, isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabgridFarm]:
    """The farm, a private HOME (its known_hosts learns the boards' keys), and the farm left idle afterwards."""
    monkeypatch.setenv("HOME", str(isolated_cwd / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    yield labgrid_farm
    labgrid_farm.reset()


def farm_device(name: str, farm: LabgridFarm, *, where: str, coordinator: str | None = "") -> str:
    """A [devices.NAME] table for a farm place; ``coordinator=None`` leaves it to $LG_COORDINATOR."""
    key = next(iter(farm.boards.values())).client_key
    coordinator_line = "" if coordinator is None else f'labgrid_coordinator = "{coordinator or farm.coordinator}"\n'
    return (f"[devices.{name}]\n{where}\n{coordinator_line}identity_file = \"{key}\"\n"
            f'python = "{sys.executable}"\nworkdir = "{Path.cwd() / "workdirs" / name}"\ntags = ["farm"]\n\n')


def write_inventory(*tables: str) -> None:
    Path("edgeprune.toml").write_text("".join(tables))


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, dict]:
    code = main(["bench", *args, *BENCH_ARGS, "-o", "results.json"])
    err = capsys.readouterr().err
    document = json.loads(Path("results.json").read_text()) if Path("results.json").is_file() else {}
    return code, err, document


@pytest.mark.labgrid
def test_a_bench_acquires_a_place_reads_its_ssh_endpoint_and_releases_it(capsys, farm, tiny_tflite, monkeypatch):
    monkeypatch.setenv("LG_COORDINATOR", farm.coordinator)  # as labgrid users set it
    write_inventory(farm_device("pi4-farm", farm, where='labgrid_tags = { board = "pi4" }', coordinator=None))

    code, err, document = bench(capsys, str(tiny_tflite), "--device", "pi4-farm")

    assert code == 0, err
    [run] = document["runs"]
    place = run["device_info"]["place"]
    assert run["status"] == "ok" and place in farm.boards
    assert run["device_info"]["exporter"] == EXPORTER
    assert run["device_info"]["coordinator"] == farm.coordinator
    device = document["devices"]["pi4-farm"]
    board = farm.boards[place]
    assert device["place"] == place and device["exporter"] == EXPORTER
    assert device["address"] == f"labgrid:{place} (exporter {EXPORTER}) {board.user}@127.0.0.1:{board.port}"
    assert board.logins() > 0  # the bench really ran on the board behind that place
    assert f"connecting to labgrid:{place} (exporter {EXPORTER})" in err
    jsonschema.validate(document, json.loads(resources.files("edgeprune.results").joinpath(
        "schemas", "results.schema.json").read_text()))
    farm.assert_idle()


@pytest.mark.labgrid
def test_a_bench_waits_for_a_busy_place_says_so_and_runs_once_it_is_free(capsys, farm, tiny_tflite):
    write_inventory(farm_device("pi4-a", farm, where='labgrid_place = "pi4-a"'))
    farm.hold("pi4-a")
    letting_go = threading.Timer(2.0, farm.let_go, args=["pi4-a"])
    letting_go.start()
    started = time.monotonic()
    try:
        code, err, document = bench(capsys, str(tiny_tflite), "--device", "pi4-a")
    finally:
        letting_go.join()

    assert code == 0, err
    assert time.monotonic() - started >= 2.0
    assert "[pi4-a] waiting for a free place matching name=pi4-a (held: pi4-a acquired by " in err
    assert f"/{OTHER_USER}" in err
    assert document["runs"][0]["status"] == "ok" and document["runs"][0]["device_info"]["place"] == "pi4-a"
    farm.assert_idle()


@pytest.mark.labgrid
def test_devices_check_claims_a_place_for_as_long_as_it_looks(capsys, farm):
    write_inventory(farm_device("pi4-a", farm, where='labgrid_place = "pi4-a"'))

    code = main(["devices", "check", "pi4-a", "--accept-new-host-key"])

    out = capsys.readouterr().out
    assert code == 0
    assert f"pi4-a (labgrid:pi4-a (exporter {EXPORTER}) " in out and re.search(r"^reachable +yes$", out, re.MULTILINE)
    farm.assert_idle()


@pytest.mark.labgrid
def test_a_place_busy_beyond_the_lock_timeout_fails_that_device_with_the_holder(capsys, farm, tiny_tflite):
    write_inventory(farm_device("pi4-a", farm, where='labgrid_place = "pi4-a"'))
    farm.hold("pi4-a")
    try:
        code, _, document = bench(capsys, str(tiny_tflite), "--device", "pi4-a", "--lock-timeout", "1")
        assert farm.reservation_tokens() == []  # the bench's queued reservation went with it
        assert farm.holder("pi4-a").endswith(f"/{OTHER_USER}")
    finally:
        farm.let_go("pi4-a")

    assert code == 1
    [run] = document["runs"]
    assert run["status"] == "failed"
    assert "device 'pi4-a': no labgrid place matching name=pi4-a came free within 1 s" in run["error"]
    assert "pi4-a acquired by " in run["error"] and f"/{OTHER_USER}" in run["error"]
    assert "--lock-timeout" in run["error"]
    farm.assert_idle()


@pytest.mark.labgrid
def test_a_failed_variant_still_releases_the_place(capsys, farm, tiny_tflite, isolated_cwd):
    broken = isolated_cwd / "broken.tflite"
    broken.write_bytes(b"\x00" * 200)
    write_inventory(farm_device("pi4-farm", farm, where='labgrid_tags = { board = "pi4" }'))

    code, _, document = bench(capsys, str(tiny_tflite), str(broken), "--device", "pi4-farm")

    assert code == 1
    statuses = {run["model"]: run["status"] for run in document["runs"]}
    assert statuses.pop("broken") == "failed" and list(statuses.values()) == ["ok"]
    farm.assert_idle()


@pytest.mark.labgrid
def test_a_board_that_does_not_answer_fails_its_runs_and_its_place_is_released(capsys, farm, tiny_tflite):
    write_inventory(farm_device("dead-farm", farm, where='labgrid_tags = { board = "dead" }'))

    code, _, document = bench(capsys, str(tiny_tflite), "--device", "dead-farm")

    assert code == 1
    [run] = document["runs"]
    assert run["status"] == "failed" and "connection refused" in run["error"]
    assert document["devices"]["dead-farm"]["place"] == "pi4-dead"
    farm.assert_idle()


@pytest.mark.labgrid
def test_a_tag_fans_out_to_different_places_at_once(capsys, farm, tiny_tflite):
    tags = 'labgrid_tags = { board = "pi4" }'
    write_inventory(farm_device("farm-1", farm, where=tags), farm_device("farm-2", farm, where=tags))

    code, err, document = bench(capsys, str(tiny_tflite), "--tag", "farm")

    assert code == 0, err
    places = {run["device"]: run["device_info"]["place"] for run in document["runs"]}
    assert set(places) == {"farm-1", "farm-2"} and set(places.values()) == set(farm.boards)
    assert "waiting for a free place" not in err  # two places for two benches: nobody queued
    farm.assert_idle()


@pytest.mark.labgrid
def test_ctrl_c_while_waiting_for_a_place_cancels_the_reservation(farm, tiny_tflite, isolated_cwd):
    write_inventory(farm_device("pi4-a", farm, where='labgrid_place = "pi4-a"'))
    farm.hold("pi4-a")
    stderr_path = isolated_cwd / "bench.stderr"
    try:
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "edgeprune", "bench", str(tiny_tflite), "--device",
                                        "pi4-a", *BENCH_ARGS], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 30
        while "waiting for a free place" not in stderr_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.1)
        assert len(farm.reservation_tokens()) == 1

        process.send_signal(signal.SIGINT)

        assert process.wait(30) == 130, stderr_path.read_text()
        assert farm.reservation_tokens() == []
        assert farm.holder("pi4-a").endswith(f"/{OTHER_USER}")
    finally:
        if process.poll() is None:
            process.kill()
        farm.let_go("pi4-a")
    assert "Traceback" not in stderr_path.read_text()
    farm.assert_idle()


@pytest.mark.labgrid
def test_a_coordinator_that_is_down_is_one_clear_error_per_run(capsys, isolated_cwd, tiny_tflite, monkeypatch):
    require_labgrid()
    down = f"127.0.0.1:{free_port()}"
    key = isolated_cwd / "id_test"
    key.write_text("not used: the coordinator is never reached\n")
    write_inventory(f'[devices.pi4-farm]\nlabgrid_tags = {{ board = "pi4" }}\nlabgrid_coordinator = "{down}"\n'
                    f'identity_file = "{key}"\n')

    code, err, document = bench(capsys, str(tiny_tflite), "--device", "pi4-farm")

    assert code == 1
    [run] = document["runs"]
    assert run["error"].startswith(f"device 'pi4-farm': cannot reach the labgrid coordinator at {down}: ")
    error_lines = [line for line in err.splitlines() if line.startswith("edgeprune:")]
    assert error_lines == [f"edgeprune: pi4-farm {run['model']}/{run['variant']}: {run['error']}"]
    assert "\n" not in run["error"] and "Traceback" not in err


# -- the inventory and the optional dependency (no farm needed) ----------------------------------------------


def test_the_inventory_takes_a_place_or_tags_instead_of_a_host(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_inventory('[devices.pi4-farm]\nlabgrid_tags = { board = "pi4", site = "lab_2" }\n'
                    'labgrid_coordinator = "farm:20408"\nthreads = 4\n\n'
                    '[devices.bench-a]\nlabgrid_place = "pi4-a"\n')
    inventory = Inventory.load(Path("edgeprune.toml"))
    assert inventory.spec("pi4-farm") == DeviceSpec(name="pi4-farm", threads=4, labgrid_tags={"board": "pi4",
                                                    "site": "lab_2"}, labgrid_coordinator="farm:20408")
    assert inventory.spec("bench-a").is_labgrid and not inventory.spec("bench-a").is_local


@pytest.mark.parametrize("table, message", [
    ('host = "pi4"\nlabgrid_place = "pi4-a"', ":3: [devices.farm] has both 'host' and 'labgrid_place'"),
    ('labgrid_coordinator = "farm:20408"', ":2: [devices.farm] has 'labgrid_coordinator' but no 'labgrid_place'"),
    ('labgrid_place = "pi4-a"\nport = 2222', ":3: [devices.farm] key 'port' does not apply to a labgrid place"),
    ('labgrid_tags = { Board = "pi4" }', ":2: [devices.farm] labgrid tag 'Board' is not a labgrid tag name"),
    ('labgrid_tags = { board = 4 }', ":2: [devices.farm] labgrid tag 'board' must have a non-empty string value"),
    ("labgrid_tags = {}", ":2: [devices.farm] key 'labgrid_tags' is empty"),
    ('labgrid_tags = ["pi4"]', ":2: [devices.farm] key 'labgrid_tags' must be a table of strings, not a list"),
])
def test_bad_labgrid_keys_name_the_file_line_and_key(tmp_path, table, message):
    path = tmp_path / "edgeprune.toml"
    path.write_text(f"[devices.farm]\n{table}\n")
    with pytest.raises(ConfigError) as raised:
        Inventory.load(path)
    assert str(raised.value).startswith(f"{path}{message}")


def test_a_farm_device_without_labgrid_installed_says_what_to_install(tmp_path):
    (tmp_path / "edgeprune.toml").write_text('[devices.pi4-farm]\nlabgrid_place = "pi4-a"\n[devices.pi4]\nhost = "pi4"\n')
    # A fresh interpreter where importing labgrid fails, as it does where the extra is not installed.
    without_labgrid = ("import sys; sys.modules['labgrid'] = None; from edgeprune.cli import main; "
                       "sys.exit(main(sys.argv[1:]))")

    def edgeprune(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", without_labgrid, *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, check=False)

    check = edgeprune("devices", "check", "pi4-farm")
    assert check.returncode == 2
    assert check.stderr.splitlines() == [
        "edgeprune: error: device 'pi4-farm' is a labgrid place, but labgrid is not installed (pip install 'edgeprune[labgrid]')"]
    listing = edgeprune("devices", "list")  # everything else works without it
    assert listing.returncode == 0 and "labgrid place pi4-a via $LG_COORDINATOR" in listing.stdout
