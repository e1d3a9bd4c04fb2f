"""edgeprune sweep on real data: prune, export and bench at three targets on local and over SSH, resume, and the
per-layer sensitivity."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeprune.cli import main
from edgeprune.results.sweep import read_sweep
from fixtures.devices import SSH_DEVICE, write_inventory
from fixtures.models import MODELS

DENSE = MODELS / "digits_cnn_dense.keras"
TRAIN = MODELS / "digits_train.npz"
EVAL = MODELS / "digits_eval.npz"
TARGETS = (0.5, 0.7, 0.9)
VARIANTS = ("fp32", "fp32-sparse", "int8")
# Small enough for CI: one epoch per target, a handful of invokes per variant.
QUICK = ["--epochs", "1", "--runs", "4", "--rounds", "2", "--warmup", "1", "--variants", ",".join(VARIANTS),
         "--calibration", str(MODELS / "digits_calibration.npz")]


def sweep_args(outdir: Path, *extra: str) -> list[str]:
    return ["sweep", str(DENSE), "--data", str(TRAIN), "--eval", str(EVAL), "-o", str(outdir),
            "--sparsity", ",".join(map(str, TARGETS)), *QUICK, *extra]


@pytest.fixture(scope="module")
def two_device_sweep(tmp_path_factory, sshd_server):
    """One sweep with --sensitivity on local and on the loopback SSH board (made once for the module)."""
    from fixtures.sshd import ALIAS, SSHClientFiles

    folder = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from swept(folder, monkeypatch, sshd_server, ALIAS, SSHClientFiles)


def swept(folder, monkeypatch, sshd_server, alias, client_files):
    dot_ssh = folder / "home" / ".ssh"
    dot_ssh.mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(folder / "home"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    files = client_files(home=folder / "home", config=dot_ssh / "config", known_hosts=dot_ssh / "known_hosts",
                         alias=alias)
    files.point_alias_at(sshd_server)
    files.trust_only(sshd_server.known_hosts_line())
    inventory = write_inventory(folder, f'[devices.local]\nworkdir = "{folder / "local work"}"\n'
                                        f'[devices.{SSH_DEVICE}]\nhost = "{alias}"\nworkdir = "{folder / "ssh work"}"\n'
                                        f'python = "{sys.executable}"\n')
    outdir = folder / "out"
    args = sweep_args(outdir, "--device", "local", "--device", SSH_DEVICE, "--inventory", str(inventory),
                      "--sensitivity", "--max-top1-drop", "1.5")
    assert main(args) == 0
    yield outdir, args


def test_a_sweep_measures_every_target_variant_and_device(two_device_sweep):
    outdir, _ = two_device_sweep
    document = read_sweep(outdir / "sweep.json")  # checked against the shipped schema
    points = {(point.sparsity, point.variant, point.device): point for point in document.points}
    for sparsity in (0.0, *TARGETS):
        for device in ("local", SSH_DEVICE):
            assert (sparsity, "fp32", device) in points and (sparsity, "int8", device) in points
    for point in document.points:
        assert point.status == "ok", point.error
        assert (outdir / point.file).is_file() and (outdir / point.file).stat().st_size == point.size_bytes
        assert 0.0 < point.p50_ms and 0.0 < point.top1 <= 1.0
    for device in ("local", SSH_DEVICE):
        assert points[(0.0, "fp32", device)].top1_drop == 0.0
        # Accuracy is the model's, whichever device runs it: the drops agree across transports.
        assert points[(0.9, "int8", device)].top1_drop == points[(0.9, "int8", "local")].top1_drop
    for sparsity in TARGETS:
        assert points[(sparsity, "fp32", "local")].achieved_sparsity == pytest.approx(sparsity, abs=0.03)
    assert [prune["settings"]["sparsity"] for prune in document.prunes] == list(TARGETS)


def test_the_recommendation_is_the_fastest_then_smallest_within_the_allowed_drop(two_device_sweep):
    outdir, _ = two_device_sweep
    document = read_sweep(outdir / "sweep.json")
    qualifying = [point for point in document.points if point.device == "local" and point.top1_drop <= 1.5]
    best = min(qualifying, key=lambda point: (point.p50_ms, point.size_bytes))
    assert document.recommendation.point == best
    assert "fastest of the" in document.recommendation.reason and "on local" in document.recommendation.reason


def test_the_results_file_is_one_that_report_and_gate_read(two_device_sweep, tmp_path, capsys):
    outdir, _ = two_device_sweep
    assert main(["report", str(outdir / "results.json"), "-o", str(tmp_path / "report.html")]) == 0
    policy = tmp_path / "policy.toml"
    policy.write_text("[defaults]\nmax_size_kb = 10000\n")
    assert main(["gate", str(outdir / "results.json"), "--policy", str(policy)]) == 0


def test_sensitivity_ranks_every_prunable_layer(two_device_sweep):
    outdir, _ = two_device_sweep
    sensitivity = read_sweep(outdir / "sweep.json").sensitivity
    assert sensitivity.sparsity == max(TARGETS)
    assert {layer.layer for layer in sensitivity.layers} == {"conv1", "conv2", "dense", "classifier"}
    drops = [layer.top1_drop for layer in sensitivity.layers]
    assert drops == sorted(drops, reverse=True)
    assert sensitivity.suggested_skip == [layer.layer for layer in sensitivity.layers if layer.top1_drop > 1.5]


def test_a_second_run_reuses_every_step_and_says_so(two_device_sweep, capsys):
    outdir, args = two_device_sweep
    before = read_sweep(outdir / "sweep.json")
    assert main(args) == 0
    captured = capsys.readouterr()
    after = read_sweep(outdir / "sweep.json")
    assert all(step.reused for step in after.steps) and len(after.steps) == len(before.steps)
    assert f"reused {len(after.steps)} of {len(after.steps)} steps" in captured.out
    assert captured.err.count("reused (finished earlier)") == len(after.steps)
    assert after.points == before.points


def test_an_interrupted_sweep_continues_where_it_stopped(tmp_path):
    from edgeprune.sweep.run import SweepRequest, sweep
    from edgeprune.variants import choose_variants
    from edgeprune.bench.plan import BenchPlan
    from edgeprune.pruning.settings import PruneSettings

    request = SweepRequest(DENSE, TRAIN, EVAL, tmp_path / "out", targets=(0.5, 0.8),
                           prune=PruneSettings(epochs=1), variants=list(choose_variants("fp32").specs),
                           plan=BenchPlan(runs=2, rounds=1, warmup=0))
    seen = []

    def stop_at_second_prune(event):
        seen.append((event.step, event.subject, event.state))
        if (event.step, event.subject, event.state) == ("prune", "digits_cnn_dense-s80", "started"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(request, stop_at_second_prune)
    assert not (tmp_path / "out" / "sweep.json").exists()
    seen.clear()
    document = sweep(request, lambda event: seen.append((event.step, event.subject, event.state)))
    reused = [(step.step, step.subject) for step in document.steps if step.reused]
    assert reused == [("export", "digits_cnn_dense-s0"), ("prune", "digits_cnn_dense-s50"),
                      ("export", "digits_cnn_dense-s50")]
    assert len(document.points) == 3

    # An output edited since its step finished is not trusted: that step runs again (and what depends on the model
    # it makes anew); the steps of the other models are reused.
    (tmp_path / "out" / "measurements" / "prune-digits_cnn_dense-s50.json").write_text("[]")
    document = sweep(request)
    ran = {(step.step, step.subject) for step in document.steps if not step.reused}
    assert ("prune", "digits_cnn_dense-s50") in ran
    assert ran <= {("prune", "digits_cnn_dense-s50"), ("export", "digits_cnn_dense-s50"),
                   ("bench", "digits_cnn_dense-s50")}


def test_auto_skip_leaves_the_sensitive_layers_dense(tmp_path, capsys):
    outdir = tmp_path / "out"
    assert main(["sweep", str(DENSE), "--data", str(TRAIN), "--eval", str(EVAL), "-o", str(outdir),
                 "--sparsity", "0.95", "--epochs", "1", "--runs", "2", "--rounds", "1", "--variants", "fp32",
                 "--sensitivity", "--auto-skip", "--max-top1-drop", "0.5"]) == 0
    document = read_sweep(outdir / "sweep.json")
    skipped = document.sensitivity.suggested_skip
    assert skipped  # at 95% every layer of this small CNN costs more than half a point alone
    layers = {layer["name"]: layer for layer in document.prunes[0]["layers"]}
    for name in skipped:
        assert layers[name]["target_sparsity"] is None and "--skip-layers" in layers[name]["reason"]
    assert f"suggested --skip-layers: {'|'.join(skipped)}" in capsys.readouterr().out


def test_m_by_n_is_one_target(tmp_path, capsys):
    assert main(sweep_args(tmp_path / "out", "--m-by-n", "2:4")) == 2
    assert "--m-by-n sets the one target" in capsys.readouterr().err


def test_a_folder_that_is_not_a_sweep_is_refused_untouched(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(sweep_args(tmp_path)) == 2
    assert "is not a sweep folder" in capsys.readouterr().err
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
