"""``edgeprune bench --mlflow``: a bench logged as one MLflow run, with a nested run per run of its results document
(device x model x variant x threads x XNNPACK mode) carrying its settings as params and its figures as metrics, and
the results file, the report and the export manifests as the parent run's artifacts.

MLflow is optional (``edgeprune[mlflow]``) and slow to import, so it is imported only when a bench is logged. A
tracking URI may hold a password (``http://user:password@host``; MLflow also reads ``MLFLOW_TRACKING_PASSWORD``):
edgeprune shows the URI without it, and scrubs every password from what MLflow says before repeating it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from ..errors import TrackingError
from ..results.document import ResultsDocument, RunRecord
from ..text import printable
from ..variants import REFERENCE_VARIANT
from .mlflow_quiet import log_lines_scrubbed, loggers_silenced, mlflow_environment, warnings_silenced
from .mlflow_uri import INSTALL_HINT, scrubbed, secrets_of, shown_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ..reports.report_data import ReportData

EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"  # MLflow's own way to name the experiment; edgeprune's by default
DEFAULT_EXPERIMENT = "edgeprune"
UNREACHABLE_HINT = "is it running? MLFLOW_HTTP_REQUEST_TIMEOUT and MLFLOW_HTTP_REQUEST_MAX_RETRIES set how long to wait"
PARENT_RUN_TAG = "mlflow.parentRunId"
MAX_TAG_CHARS = 5000  # below MLflow's limit on a tag's value
MAX_REASON_CHARS = 300
RESULTS_ARTIFACT = "results.json"
MANIFEST_FILENAME = "manifest.json"

_OS_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def log_bench(document: ResultsDocument, results_path: Path, uri: str) -> str:
    """Log ``document`` (written at ``results_path``) to the MLflow tracking server at ``uri``; returns the line
    that says where it went. Any failure is a ``TrackingError`` with one line that holds no password."""
    shown = shown_uri(uri)
    secrets = secrets_of(uri, os.environ)
    debugging = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    try:
        with mlflow_environment(), warnings_silenced(not debugging):
            mlflow = import_mlflow()
            with log_lines_scrubbed(secrets) if debugging else loggers_silenced():
                client = mlflow.MlflowClient(tracking_uri=uri)
                experiment = os.environ.get(EXPERIMENT_VARIABLE) or DEFAULT_EXPERIMENT
                run_id = log_document(client, experiment_id_of(client, experiment, shown), document, results_path)
    except TrackingError:
        raise
    except Exception as exc:  # MLflow's, requests', a store's, a file's: every one is the same failure to the user
        raise tracking_error(exc, shown, secrets) from exc
    return f"logged MLflow run {run_id} ({len(document.runs)} nested) in experiment '{experiment}' to {shown}"


def import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] == "mlflow":
            raise TrackingError("MLflow is not installed", hint=INSTALL_HINT) from exc
        raise TrackingError(f"MLflow cannot be imported: {exc}", hint=INSTALL_HINT) from exc
    return mlflow


def experiment_id_of(client: MlflowClient, name: str, shown: str) -> str:
    """The experiment's id, created if missing (by this bench or, racing it, another)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(f"MLflow experiment '{name}' on {shown} is deleted",
                            hint=f"restore it, or name another with {EXPERIMENT_VARIABLE}")
    return experiment.experiment_id


def log_document(client: MlflowClient, experiment_id: str, document: ResultsDocument, results_path: Path) -> str:
    """The parent run with its artifacts, a nested run per results run; returns the parent's id."""
    parent = client.create_run(experiment_id, run_name=parent_run_name(document), tags=parent_tags(document))
    parent_id = parent.info.run_id
    try:
        for run in document.runs:
            log_nested_run(client, experiment_id, parent_id, document, run)
        with tempfile.TemporaryDirectory(prefix="edgeprune-mlflow-") as folder:
            gather_artifacts(document, results_path, Path(folder))
            client.log_artifacts(parent_id, folder)
    except Exception:
        # Marked failed, if the server still answers, so that it does not stay "running" forever.
        with contextlib.suppress(Exception):
            client.set_terminated(parent_id, "FAILED")
        raise
    client.set_terminated(parent_id, "FINISHED")
    return parent_id


def parent_run_name(document: ResultsDocument) -> str:
    return document.label or f"bench {document.created}"


def parent_tags(document: ResultsDocument) -> dict[str, str]:
    tags = {"edgeprune.version": document.edgeprune_version, "edgeprune.created": document.created}
    if document.label:
        tags["edgeprune.label"] = document.label
    provenance = getattr(document, "provenance", None) or {}
    tags.update({f"edgeprune.provenance.{key}": printable(str(value), MAX_TAG_CHARS)
                 for key, value in provenance.items() if value is not None})
    return tags


def log_nested_run(client: MlflowClient, experiment_id: str, parent_id: str, document: ResultsDocument,
                   run: RunRecord) -> None:
    from mlflow.entities import Metric, Param

    tags = {PARENT_RUN_TAG: parent_id}
    if not run.ok:
        tags["edgeprune.error"] = printable(run.error or "failed", MAX_TAG_CHARS)
    nested_id = client.create_run(experiment_id, run_name=nested_run_name(run), tags=tags).info.run_id
    now_ms = int(time.time() * 1000)
    client.log_batch(nested_id, params=[Param(key, value) for key, value in run_params(run).items()],
                     metrics=[Metric(key, value, now_ms, 0) for key, value in run_metrics(document, run).items()])
    client.set_terminated(nested_id, "FINISHED" if run.ok else "FAILED")


def nested_run_name(run: RunRecord) -> str:
    """device/model/variant/t1, and /no-xnnpack for the builtin-kernels baseline of ``--xnnpack both``."""
    parts = [run.device, run.model, run.variant]
    if run.threads is not None:
        parts.append(f"t{run.threads}")
    if not run.xnnpack:
        parts.append("no-xnnpack")
    return "/".join(parts)


def run_params(run: RunRecord) -> dict[str, str]:
    params = {"device": run.device, "model": run.model, "variant": run.variant, "threads": run.threads,
              "xnnpack": "on" if run.xnnpack else "off", "runtime": runtime_text(run.runtime)}
    return {key: str(value) for key, value in params.items() if value is not None}


def runtime_text(runtime: Mapping[str, Any] | None) -> str | None:
    """ai_edge_litert 2.0.2"""
    words = [str(runtime[key]) for key in ("name", "version") if runtime and runtime.get(key)]
    return " ".join(words) or None


def run_metrics(document: ResultsDocument, run: RunRecord) -> dict[str, float]:
    """The figures the run measured; a failed run has none."""
    if not run.ok:
        return {}
    latency, accuracy = run.latency_ms, run.accuracy
    figures = {
        "p50_ms": latency.p50 if latency else None,
        "p90_ms": latency.p90 if latency else None,
        "p99_ms": latency.p99 if latency else None,
        "size_bytes": run.size_bytes,
        "peak_rss_mb": run.peak_rss_mb,
        "top1": accuracy.top1 if accuracy else None,
        "agreement": accuracy.top1_agreement if accuracy else None,
        "speedup_vs_fp32": speedup_vs_fp32(document, run),
    }
    return {key: float(value) for key, value in figures.items() if value is not None}


def speedup_vs_fp32(document: ResultsDocument, run: RunRecord) -> float | None:
    """fp32's p50 over the run's, fp32 of the same device, model, threads and XNNPACK mode (as the bench table)."""
    if run.variant == REFERENCE_VARIANT or not run.latency_ms or run.latency_ms.p50 <= 0:
        return None
    reference = document.find(run.device, run.model, REFERENCE_VARIANT, run.threads, run.xnnpack)
    if reference is None or not reference.ok or not reference.latency_ms:
        return None
    return reference.latency_ms.p50 / run.latency_ms.p50


def gather_artifacts(document: ResultsDocument, results_path: Path, folder: Path) -> None:
    """results.json, report.md, report.html (with matplotlib) and manifests/<model>/manifest.json into ``folder``."""
    from ..reports.markdown import render_markdown
    from ..reports.report_data import collect

    shutil.copyfile(results_path, folder / RESULTS_ARTIFACT)
    data = collect(document, results_path)
    (folder / "report.md").write_text(render_markdown(data), encoding="utf-8")
    html = html_report(data)
    if html is not None:
        (folder / "report.html").write_text(html, encoding="utf-8")
    for manifest, name in manifest_artifacts(document.runs, results_path.parent).items():
        (folder / "manifests" / name).mkdir(parents=True)
        shutil.copyfile(manifest, folder / "manifests" / name / MANIFEST_FILENAME)


def html_report(data: ReportData) -> str | None:
    """The HTML report, or None without matplotlib (the Markdown report has the same tables)."""
    try:
        from ..reports.html import render_html
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "matplotlib":
            raise
        return None
    return render_html(data)


def manifest_artifacts(runs: Iterable[RunRecord], results_dir: Path) -> dict[Path, str]:
    """Each distinct export manifest the runs name, and its folder under manifests/: the model's name, made safe
    for a path, numbered when two exports share it."""
    folders: dict[Path, str] = {}
    for run in runs:
        manifest = manifest_file(run.export_manifest, results_dir)
        if manifest is None or manifest in folders:
            continue
        name = base = re.sub(r"[^A-Za-z0-9._-]+", "_", run.model).lstrip(".") or "model"
        number = 1
        while name in folders.values():
            number += 1
            name = f"{base}-{number}"
        folders[manifest] = name
    return folders


def manifest_file(recorded: str | None, results_dir: Path) -> Path | None:
    """The manifest as the report finds it: bench records its path as given on the command line, relative to where
    it ran, which is often the results' folder."""
    if recorded is None:
        return None
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [path, results_dir / path]
    return next((candidate.resolve() for candidate in candidates if candidate.is_file()), None)


def tracking_error(exc: BaseException, shown: str, secrets: Iterable[str]) -> TrackingError:
    """One line: an unreachable or silent server said as such, anything else in MLflow's words; never a secret."""
    from requests.exceptions import ConnectionError as RequestsConnectionError, Timeout

    chain = list(exception_chain(exc))
    if any(isinstance(cause, (RequestsConnectionError, Timeout)) for cause in chain):
        if any(isinstance(cause, (Timeout, TimeoutError)) for cause in chain):  # a read timeout ends as the latter
            message = f"MLflow server {shown} did not answer in time"
        else:
            reason = _OS_REASON.search(" ".join(str(cause) for cause in chain))  # [Errno 111] Connection refused
            message = f"cannot reach MLflow server {shown}: {reason.group(1).strip() if reason else 'no connection'}"
        return TrackingError(scrubbed(message, secrets), hint=UNREACHABLE_HINT)
    reason = printable(scrubbed(str(exc), secrets), MAX_REASON_CHARS) or type(exc).__name__
    return TrackingError(f"cannot log the bench to MLflow at {shown}: {reason}")


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, outermost first (MLflow wraps requests' errors in its own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
