"""Where a sweep's time goes: each step of a small sweep, and the share spent outside tfmot and the converter.

Runs ``edgeprune sweep`` through the library API on the shipped dense digits CNN (targets 0.5, 0.8; 2 epochs;
fp32, fp32-sparse and int8; 30 timed invokes per variant on the local device) into a temporary folder. tfmot's
time is the fine-tuning with its wrappers (``fit``, with ``UpdatePruningStep``) plus ``strip_pruning``; the
converter's is every ``TFLiteConverter.convert``. The rest is broken down: validating each variant with LiteRT
(a runner process per variant), benching (runner processes on the device, accuracy passes), loading models, and
what remains (scoring before/after, hashing, writing). Goal: the share outside tfmot and the converter under 15%.

Run from the repository root:

    .venv/bin/python benchmarks/sweep.py
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from edgeprune import tfenv
from edgeprune.bench.plan import BenchPlan
from edgeprune.convert import converter, export
from edgeprune.pruning import run as prune_run
from edgeprune.sweep import run as sweep_run
from edgeprune.pruning.settings import PruneSettings
from edgeprune.sweep.run import SweepRequest, sweep
from edgeprune.variants import choose_variants

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
GOAL_SHARE = 0.15

spent: dict[str, float] = defaultdict(float)


def timed(kind: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[kind] += time.perf_counter() - started

    return wrapper


def instrument() -> None:
    """Time tfmot's and the converter's calls where edgeprune makes them."""
    keras = tfenv.tf_keras()
    sparsity_api = tfenv.tfmot().sparsity.keras
    fit = keras.Model.fit
    keras.Model.fit = timed("tfmot", fit)  # only prune fits a model, and always with tfmot's wrappers
    sparsity_api.strip_pruning = timed("tfmot", sparsity_api.strip_pruning)
    sparsity_api.prune_low_magnitude = timed("tfmot", sparsity_api.prune_low_magnitude)
    converter.Converter.convert = timed("converter", converter.Converter.convert)
    export.validate_variant = timed("LiteRT validation", export.validate_variant)
    sweep_run.bench = timed("bench", sweep_run.bench)
    export.load_model = timed("model loading", export.load_model)
    prune_run.load_model = timed("model loading", prune_run.load_model)


def main() -> None:
    instrument()
    with tempfile.TemporaryDirectory(prefix="edgeprune-sweep-bench-") as folder:
        request = SweepRequest(
            MODELS / "digits_cnn_dense.keras", MODELS / "digits_train.npz", MODELS / "digits_eval.npz",
            Path(folder) / "sweep", targets=(0.5, 0.8), prune=PruneSettings(epochs=2),
            variants=list(choose_variants("fp32,fp32-sparse,int8").specs),
            calibration=MODELS / "digits_calibration.npz", plan=BenchPlan(runs=30, warmup=3, rounds=3),
        )
        started = time.perf_counter()
        document = sweep(request, on_detail=lambda message: None)
        total = time.perf_counter() - started
    print(f"{'step':<10} {'model':<26} {'seconds':>8}")
    for step in document.steps:
        print(f"{step.step:<10} {step.subject:<26} {step.seconds:8.2f}")
    outside = total - spent["tfmot"] - spent["converter"]
    print(f"\nwhole sweep {total:.2f} s")
    for kind in ("tfmot", "converter", "LiteRT validation", "bench", "model loading"):
        print(f"  {kind:<18} {spent[kind]:7.2f} s  {spent[kind] / total:4.0%}")
    print(f"  {'the rest':<18} {total - sum(spent.values()):7.2f} s  {(total - sum(spent.values())) / total:4.0%}")
    print(f"outside tfmot and the converter: {outside:.2f} s ({outside / total:.0%}; goal under {GOAL_SHARE:.0%})")
    print(f"recommendation: {document.recommendation.reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
