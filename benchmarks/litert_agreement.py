"""Agreement of edgeprune's latency with LiteRT's own Python benchmark, on this machine, in one run.

Builds a MobileNet-shaped tf_keras model (MobileNetV1, alpha 1.0, 224x224x3 input, random weights, so nothing is
downloaded) big enough that one invoke takes several milliseconds: LiteRT's tool rounds its JSON figures to
0.01 ms, far too coarse for the sub-millisecond shipped samples (a 128x128 alpha-0.75 model still ran in ~1.4 ms
here). It is exported as the fp32 variant through the
library API, then measured alternately (A B A B ...) by

  A: edgeprune's bench on ``local`` (one round, ``--threads 1``: one runner process timing N invokes), p50;
  B: ``python -m ai_edge_litert.tools.benchmark_litert_model --num_threads 1`` (same model, N runs, W warmup),
     ``latency.median_ms`` of its ``--result_json``.

The median of each tool's figure across the alternations gives the ratio edgeprune/LiteRT; it should lie in
0.97..1.03. Interleaving means drift on this shared machine hits both tools alike. Both tools report the thread
count they used, and the script stops if either is not 1. The per-process minimum is printed as a cross-check
that other load on the machine disturbs least (in-process, Interpreter.invoke and CompiledModel.run_by_name on
this model time within 1% of each other, so a gap in medians but not in minima points at contention).
LiteRT reports ``fully_accelerated: False`` for this model: the Keras MobileNet head computes its Reshape target
with SHAPE, STRIDED_SLICE and PACK, which XNNPACK does not take, so both APIs run two XNNPACK partitions plus
those builtin ops.

Run from the repository root:

    .venv/bin/python benchmarks/litert_agreement.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeprune import tfenv
from edgeprune.bench.run import BenchRequest, bench
from edgeprune.bench.plan import BenchPlan
from edgeprune.convert.export import ExportRequest, export
from edgeprune.variants import parse_variant_list

INPUT_SIZE = 224
ALPHA = 1.0
THREADS = 1
RUNS = 200
WARMUP = 20
ALTERNATIONS = 9
ACCEPTED_RATIO = (0.97, 1.03)
LITERT_TOOL = "ai_edge_litert.tools.benchmark_litert_model"


@dataclass(frozen=True)
class Measurement:
    """One tool's figures for one process of RUNS timed invokes."""

    median_ms: float
    min_ms: float
    threads: int
    accelerated: bool  # edgeprune: XNNPACK delegate created; LiteRT: its 'fully_accelerated'


@dataclass(frozen=True)
class Alternation:
    edgeprune: Measurement
    litert: Measurement


def build_model(path: Path) -> None:
    keras = tfenv.tf_keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(input_shape=(INPUT_SIZE, INPUT_SIZE, 3), alpha=ALPHA, weights=None,
                                         classes=10)
    model.save(path)


def export_fp32(model: Path, outdir: Path) -> Path:
    manifest = export(ExportRequest(model, outdir, parse_variant_list("fp32")))
    record = manifest.variant("fp32")
    if record is None or not record.valid:
        raise SystemExit(f"fp32 export failed: {record.error if record else 'missing'}")
    return manifest.path_of(record)


def write_inventory(folder: Path) -> Path:
    """``local`` with a private workdir, so the bench neither reads ./edgeprune.toml nor fills ~/.cache."""
    inventory = folder / "edgeprune.toml"
    inventory.write_text(f'[devices.local]\nworkdir = "{folder / "workdir"}"\nthreads = {THREADS}\n')
    return inventory


def edgeprune_run(export_dir: Path, inventory: Path) -> tuple[Measurement, dict]:
    plan = BenchPlan(runs=RUNS, warmup=WARMUP, rounds=1, threads=(THREADS,))
    document = bench(BenchRequest([export_dir], plan=plan, inventory=inventory), progress=lambda device, message: None)
    run = document.runs[0]
    if not run.ok:
        raise SystemExit(f"edgeprune bench failed: {run.error}")
    measurement = Measurement(run.latency_ms["p50"], run.latency_ms["min"], run.threads,
                              bool(run.xnnpack_delegate and run.xnnpack_delegate["delegate_created"]))
    return measurement, run.runtime


def litert_run(model: Path, result_json: Path) -> Measurement:
    command = [sys.executable, "-m", LITERT_TOOL, "--model", str(model), "--num_threads", str(THREADS),
               "--num_runs", str(RUNS), "--warmup_runs", str(WARMUP), "--result_json", str(result_json)]
    completed = subprocess.run(command, check=False, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{LITERT_TOOL} failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    result = json.loads(result_json.read_text())
    latency = result["latency"]
    return Measurement(latency["median_ms"], latency["min_ms"], result["num_threads"], result["fully_accelerated"])


def measure(export_dir: Path, model: Path, scratch: Path) -> tuple[list[Alternation], dict]:
    inventory = write_inventory(scratch)
    alternations = []
    runtime: dict = {}
    for index in range(ALTERNATIONS):
        edgeprune, runtime = edgeprune_run(export_dir, inventory)
        litert = litert_run(model, scratch / f"litert-{index}.json")
        alternations.append(Alternation(edgeprune, litert))
        print(f"  alternation {index + 1}/{ALTERNATIONS}: edgeprune {edgeprune.median_ms:.3f} ms, "
              f"LiteRT {litert.median_ms:.2f} ms", file=sys.stderr)
    return alternations, runtime


def check_same_threads(alternations: list[Alternation]) -> None:
    """Read back what each tool says it used: a mismatch would make the comparison meaningless."""
    used = {(a.edgeprune.threads, a.litert.threads) for a in alternations}
    if used != {(THREADS, THREADS)}:
        raise SystemExit(f"thread counts differ from {THREADS}: (edgeprune, LiteRT) = {sorted(used)}")


def median_of(alternations: list[Alternation], tool: str, figure: str) -> float:
    return statistics.median(getattr(getattr(a, tool), figure) for a in alternations)


def report(alternations: list[Alternation], runtime: dict, model_bytes: int, load: tuple[float, float]) -> None:
    print(f"\nMobileNetV1 alpha {ALPHA}, {INPUT_SIZE}x{INPUT_SIZE}x3, fp32 ({model_bytes / 2**20:.2f} MiB); "
          f"{THREADS} thread in both tools, {RUNS} runs + {WARMUP} warmup per measurement; runtime "
          f"{runtime.get('name')} {runtime.get('version')}; XNNPACK delegate created (edgeprune): "
          f"{alternations[0].edgeprune.accelerated}; LiteRT fully_accelerated: {alternations[0].litert.accelerated}")
    print(f"1-minute load average {load[0]:.2f} before, {load[1]:.2f} after, on {os.cpu_count()} CPUs\n")
    print(f"{'alternation':<12} {'edgeprune p50':>14} {'LiteRT median':>14} {'ratio':>7}   "
          f"{'edgeprune min':>14} {'LiteRT min':>11}")
    for index, a in enumerate(alternations, start=1):
        print(f"{index:<12} {a.edgeprune.median_ms:>14.3f} {a.litert.median_ms:>14.2f} "
              f"{a.edgeprune.median_ms / a.litert.median_ms:>7.3f}   {a.edgeprune.min_ms:>14.3f} {a.litert.min_ms:>11.2f}")
    edgeprune_ms, litert_ms = median_of(alternations, "edgeprune", "median_ms"), median_of(alternations, "litert", "median_ms")
    edgeprune_min, litert_min = median_of(alternations, "edgeprune", "min_ms"), median_of(alternations, "litert", "min_ms")
    ratio = edgeprune_ms / litert_ms
    print(f"{'median':<12} {edgeprune_ms:>14.3f} {litert_ms:>14.2f} {ratio:>7.3f}   {edgeprune_min:>14.3f} {litert_min:>11.2f}")
    print("(ms; LiteRT's JSON is rounded to 0.01 ms, 0.2% of these figures)")
    # The minimum is what other load on a shared machine disturbs least: a cross-check, not the acceptance.
    print(f"ratio of minima edgeprune/LiteRT: {edgeprune_min / litert_min:.3f}")
    low, high = ACCEPTED_RATIO
    agreed = low <= ratio <= high
    print(f"\nVERDICT: {'PASS' if agreed else 'FAIL'}: edgeprune p50 / LiteRT median = {ratio:.3f} "
          f"({'inside' if agreed else 'outside'} {low}..{high})")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgeprune-litert-agreement-") as folder:
        scratch = Path(folder)
        build_model(scratch / "mobilenet_128.keras")
        export_dir = scratch / "mobilenet_128"
        model = export_fp32(scratch / "mobilenet_128.keras", export_dir)
        load_before = os.getloadavg()[0]
        alternations, runtime = measure(export_dir, model, scratch)
        check_same_threads(alternations)
        report(alternations, runtime, model.stat().st_size, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
