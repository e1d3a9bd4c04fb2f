"""``edgeprune bench --mlflow`` against a real MLflow tracking server (``fixtures/mlflow_server.py``): what the server
holds afterwards, read back with MLflow's own client, and what the user sees."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeprune.cli import main
from fixtures.mlflow_server import MLflowServer, free_port
from fixtures.models import MODELS

EVAL = MODELS / "digits_eval.npz"
PASSWORD = "secret"
LABEL = "mlflow-check"
BENCH_ARGS = ("--runs", "3", "--warmup", "1", "--rounds", "1", "--no-history", "-o", "results.json")


@dataclass
class Bench:
    done: subprocess.CompletedProcess[str]
    folder: Path

    @property
    def results(self) -> dict:
        return json.loads((self.folder / "results.json").read_text())

    def parent_run_id(self) -> str:
        match = re.search(r"^logged MLflow run ([0-9a-f]{32}) ", self.done.stdout, re.MULTILINE)
        assert match, self.done.stdout
        return match.group(1)


def run_bench(folder: Path, *args: str, environ: dict[str, str] | None = None) -> Bench:
    """As a user runs it: a new process in ``folder``, none of the test session's TensorFlow, edgeprune or MLflow
    settings in the environment."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "EDGEPRUNE_", "MLFLOW_"))}
    env.update({"XDG_CACHE_HOME": str(folder / "cache"), **(environ or {})})
    done = subprocess.run([sys.executable, "-m", "edgeprune", "bench", *args], capture_output=True, text=True,
                          cwd=folder, env=env, timeout=600)
    return Bench(done, folder)


def with_password(uri: str) -> str:
    return uri.replace("http://", f"http://ci-user:{PASSWORD}@")


def client_of(server: MLflowServer):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server.uri)


def nested_runs(server: MLflowServer, parent_id: str) -> list:
    client = client_of(server)
    experiment_id = client.get_run(parent_id).info.experiment_id
    return client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


@pytest.fixture(scope="module")
def logged_bench(tmp_path_factory, digits_export: Path, mlflow_server: MLflowServer) -> Bench:
    """One bench of two variants x XNNPACK on/off with accuracy, logged through a URI that holds a password."""
    bench = run_bench(tmp_path_factory.mktemp("logged"), str(digits_export), "--variants", "fp32,int8",
                      "--xnnpack", "both", "--data", str(EVAL), "--label", LABEL, *BENCH_ARGS,
                      f"--mlflow={with_password(mlflow_server.uri)}")
    assert bench.done.returncode == 0, bench.done.stderr
    return bench


@pytest.mark.slow
def test_a_bench_is_one_run_with_a_nested_run_per_results_run(logged_bench: Bench, mlflow_server: MLflowServer):
    parent = client_of(mlflow_server).get_run(logged_bench.parent_run_id())
    assert parent.info.run_name == LABEL and parent.info.status == "FINISHED"
    assert parent.data.tags["edgeprune.label"] == LABEL and parent.data.tags["edgeprune.version"]
    assert "(4 nested)" in logged_bench.done.stdout

    runs = logged_bench.results["runs"]
    nested = {(run.data.params["variant"], run.data.params["xnnpack"]): run
              for run in nested_runs(mlflow_server, parent.info.run_id)}
    assert len(nested) == len(runs) == 4
    p50 = {(run["variant"], run["xnnpack"]): run["latency_ms"]["p50"] for run in runs}
    for run in runs:
        logged = nested[(run["variant"], "on" if run["xnnpack"] else "off")]
        assert logged.info.status == "FINISHED"
        suffix = "" if run["xnnpack"] else "/no-xnnpack"
        assert logged.info.run_name == f"local/digits_cnn/{run['variant']}/t1{suffix}"
        assert logged.data.params == {
            "device": "local", "model": "digits_cnn", "variant": run["variant"], "threads": "1",
            "xnnpack": "on" if run["xnnpack"] else "off",
            "runtime": f"{run['runtime']['name']} {run['runtime']['version']}"}
        expected = {"p50_ms": run["latency_ms"]["p50"], "p90_ms": run["latency_ms"]["p90"],
                    "p99_ms": run["latency_ms"]["p99"], "size_bytes": run["size_bytes"],
                    "peak_rss_mb": run["peak_rss_mb"], "top1": run["accuracy"]["top1"],
                    "agreement": run["accuracy"]["top1_agreement"]}
        if run["variant"] == "int8":
            expected["speedup_vs_fp32"] = p50[("fp32", run["xnnpack"])] / run["latency_ms"]["p50"]
        assert logged.data.metrics == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_the_results_the_report_and_the_manifest_are_artifacts(logged_bench: Bench, mlflow_server: MLflowServer,
                                                               digits_export: Path, tmp_path: Path):
    client = client_of(mlflow_server)
    parent_id = logged_bench.parent_run_id()
    names = {artifact.path for artifact in client.list_artifacts(parent_id)}
    assert names == {"results.json", "report.md", "report.html", "manifests"}
    assert [artifact.path for artifact in client.list_artifacts(parent_id, "manifests/digits_cnn")] == [
        "manifests/digits_cnn/manifest.json"]
    downloaded = Path(client.download_artifacts(parent_id, "", str(tmp_path)))
    assert (downloaded / "results.json").read_bytes() == (logged_bench.folder / "results.json").read_bytes()
    assert (downloaded / "manifests/digits_cnn/manifest.json").read_bytes() == (
        digits_export / "manifest.json").read_bytes()
    assert "digits_cnn" in (downloaded / "report.md").read_text()
    assert (downloaded / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_the_password_and_mlflow_chatter_stay_out_of_the_output(logged_bench: Bench):
    done = logged_bench.done
    assert PASSWORD not in done.stdout + done.stderr + (logged_bench.folder / "results.json").read_text()
    assert "http://ci-user:***@127.0.0.1:" in done.stdout
    # stderr holds the bench's progress only: no "View run" links, no INFO lines, no warnings.
    assert [line for line in done.stderr.splitlines() if not line.startswith("[local] ")] == []


@pytest.mark.slow
def test_a_failed_run_is_a_failed_nested_run_without_metrics(tmp_path: Path, digits_export: Path,
                                                             mlflow_server: MLflowServer):
    (tmp_path / "broken.tflite").write_bytes(b"\x00" * 200)
    # --mlflow after the paths, without a value: the URI is $MLFLOW_TRACKING_URI.
    bench = run_bench(tmp_path, str(digits_export), "broken.tflite", "--variants", "fp32", *BENCH_ARGS, "--mlflow",
                      environ={"MLFLOW_TRACKING_URI": mlflow_server.uri})
    assert bench.done.returncode == 1  # for the broken run; the MLflow run is logged
    assert f"(2 nested) in experiment 'edgeprune' to {mlflow_server.uri}" in bench.done.stdout
    nested = {run.data.params["model"]: run for run in nested_runs(mlflow_server, bench.parent_run_id())}
    failed = next(run for run in bench.results["runs"] if run["status"] == "failed")
    assert nested["broken"].info.status == "FAILED" and nested["broken"].data.metrics == {}
    assert nested["broken"].data.tags["edgeprune.error"] == failed["error"]
    assert nested["digits_cnn"].info.status == "FINISHED" and nested["digits_cnn"].data.metrics["p50_ms"] > 0


@pytest.mark.slow
def test_an_unreachable_server_costs_the_mlflow_run_only(tmp_path: Path, digits_export: Path):
    nobody = with_password(f"http://127.0.0.1:{free_port()}")
    bench = run_bench(tmp_path, str(digits_export), "--variants", "fp32", *BENCH_ARGS, f"--mlflow={nobody}")
    assert bench.done.returncode == 1
    errors = [line for line in bench.done.stderr.splitlines() if not line.startswith("[local] ")]
    assert len(errors) == 1 and errors[0].startswith("edgeprune: error: cannot reach MLflow server "), errors
    assert "results.json is written" in errors[0] and PASSWORD not in bench.done.stderr + bench.done.stdout
    assert bench.results["runs"][0]["status"] == "ok"


@pytest.mark.parametrize("args, environ, expected", [
    (["--mlflow"], {}, "edgeprune: error: --mlflow: no tracking URI given and MLFLOW_TRACKING_URI is not set"),
    # argparse took the folder to bench as the URI.
    (["--mlflow", "export/"], {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"},
     "edgeprune: error: --mlflow: 'export/' is not an MLflow tracking URI"),
    (["export/", "--mlflow"], {"MLFLOW_TRACKING_URI": f"http://me:{PASSWORD}@/nowhere"},
     "edgeprune: error: MLFLOW_TRACKING_URI: 'http://me:***@/nowhere' is not an MLflow tracking URI"),
])
def test_a_missing_or_wrong_uri_stops_the_bench_before_it_measures(capsys, monkeypatch, isolated_cwd: Path,
                                                                    args: list[str], environ: dict[str, str],
                                                                    expected: str):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(expected), err
    assert PASSWORD not in err and not (isolated_cwd / "results.json").exists()
