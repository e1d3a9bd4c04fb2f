"""The accuracy pass on the device: the whole data set through one variant, outputs back as binary .npz."""

from __future__ import annotations

import posixpath
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..board.cache import DeviceCache
from ..board.runner import RunnerClient
from ..results.accuracy_figures import AccuracyFigures
from .metrics import compare_outputs
from .reference import ModelAccuracyPlan


def measure_accuracy(
    runner: RunnerClient,
    cache: DeviceCache,
    remote_model: str,
    model_sha256: str,
    plan: ModelAccuracyPlan,
    *,
    threads: int,
    xnnpack: bool,
    runtime: str,
    timeout_s: float,
) -> AccuracyFigures:
    remote_inputs = cache.ensure(plan.inputs_file, sha256=plan.inputs_sha256)
    # Named by what produced it, so a rerun overwrites instead of piling up files on the board.
    name = f"outputs-{model_sha256[:16]}-{plan.inputs_sha256[:16]}-{'xnn' if xnnpack else 'builtin'}.npz"
    remote_outputs = posixpath.join(cache.scratch_dir(), name)
    runner.infer(remote_model, remote_inputs, remote_outputs, threads=threads, xnnpack=xnnpack, runtime=runtime,
                 timeout_s=timeout_s)
    with tempfile.TemporaryDirectory(prefix="edgeprune-outputs-") as folder:
        local = Path(folder) / name
        runner.device.download(remote_outputs, local)
        with np.load(local, allow_pickle=False) as archive:
            # The variant's output that is the Keras model's first: a converter may reorder a model's outputs.
            outputs = archive[f"output_{plan.head(model_sha256)}"]
    comparison = compare_outputs(outputs, plan.reference, plan.dataset.y)
    return AccuracyFigures(**asdict(comparison), reference=plan.reference_source, data=str(plan.dataset.path))
