"""``edgeprune bench``."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..devices.base import DEFAULT_LOCK_TIMEOUT_S
from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, TrackingError
from ..text import one_line
from .options import (MAX_COUNT, MAX_SECONDS, RUNTIME_CHOICES, add_device_options, add_history_option,
                      add_trust_model_code_option, number, positive_int, thread_counts, variant_choice, whole_number)

if TYPE_CHECKING:
    from ..results.document import ResultsDocument

MAX_ROUNDS = 1000
MAX_MIN_SECONDS = 3600.0


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure variants on devices (local by default)")
    bench.add_argument("paths", nargs="*", type=Path, help="export folders or .tflite files")
    bench.add_argument("--variants", type=variant_choice, metavar="LIST",
                       help="only these variants of the export folders, comma-separated with export's names "
                            "(e.g. fp32,fp32-sparse; default: every deliverable one)")
    bench.add_argument("--device", action="append", default=[], help="device name from the inventory (repeatable)")
    bench.add_argument("--tag", action="append", default=[], help="every device with this tag (repeatable)")
    bench.add_argument("--runs", type=positive_int, default=100, help="timed invokes per variant in total, split across the rounds (default 100)")
    bench.add_argument("--warmup", type=whole_number(0, MAX_COUNT), default=10,
                       help="untimed invokes before each round (default 10)")
    bench.add_argument("--min-seconds", type=number(0.0, MAX_MIN_SECONDS), default=0.0,
                       help="keep timing at least this long per variant")
    bench.add_argument("--rounds", type=whole_number(1, MAX_ROUNDS), default=3,
                       help="interleaved rounds, each a process of its own per variant (default 3; at most --runs)")
    bench.add_argument("--threads", type=thread_counts, default=None,
                       help="interpreter threads, e.g. 1 or 1,4 (default: the device's 'threads', else 1)")
    bench.add_argument("--xnnpack", choices=("on", "off", "both"), default="on",
                       help="XNNPACK delegate on (default), off (builtin kernels baseline) or both")
    bench.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES,
                       help="TFLite runtime on the device (default: the first installed of that order)")
    bench.add_argument("--timeout", type=number(0.0, MAX_SECONDS, low_excluded=True), default=600.0,
                       help="seconds one runner process may take")
    bench.add_argument("--lock-timeout", type=number(0.0, MAX_SECONDS), default=DEFAULT_LOCK_TIMEOUT_S,
                       metavar="SECONDS",
                       help="how long to wait for a board another bench is using, then fail its runs "
                            f"(default {DEFAULT_LOCK_TIMEOUT_S:g}; 0 fails at once)")
    bench.add_argument("-o", "--output", type=Path, default=Path("results.json"), help="results file (default results.json)")
    bench.add_argument("--data", action="append", type=Path, default=[],
                       help="evaluation .npz (x, optional y) or image folder (optional labels.csv: file,label) for the "
                            "accuracy pass; repeat for models of other input shapes")
    bench.add_argument("--image-range", type=value_range, metavar="LOW:HIGH",
                       help="scale image folder pixels into this range: 0:1 (default), 0:255, "
                            "--image-range=-1:1 (the '=' keeps a negative LOW from reading as an option)")
    bench.add_argument("--reference", type=Path, help="Keras model to compare outputs with (default: the export's source)")
    bench.add_argument("--label", help="name this run in the results history (for gate --baseline history:LABEL)")
    add_history_option(bench)
    bench.add_argument("--no-history", action="store_true", help="do not record this run in the history")
    bench.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                       help="also log the bench as an MLflow run, a nested run per measurement (URI default: "
                            "$MLFLOW_TRACKING_URI; needs edgeprune[mlflow]); write --mlflow=URI before the paths")
    add_device_options(bench)
    add_trust_model_code_option(bench)  # for --reference, or the source model an export's manifest names
    bench.set_defaults(handler=run)


def value_range(text: str) -> tuple[float, float]:
    """LOW:HIGH, e.g. 0:1, -1:1 or 0:255."""
    low, _, high = text.partition(":")
    try:
        bounds = float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not LOW:HIGH, e.g. 0:1 or 0:255") from None
    if not (math.isfinite(bounds[0]) and math.isfinite(bounds[1]) and bounds[0] < bounds[1]):
        raise argparse.ArgumentTypeError(f"'{text}': LOW and HIGH must be finite numbers, LOW below HIGH")
    return bounds


def run(args: argparse.Namespace) -> int:
    from ..bench.run import BenchInterrupted, BenchNotRecorded, BenchRequest, bench
    from ..bench.plan import BenchPlan
    from ..reports.bench_table import render_bench
    from ..history.location import history_location

    # Checked before anything is measured: a bench must not run for an hour to find its tracking URI missing.
    mlflow_uri = resolve_mlflow_uri(args.mlflow) if args.mlflow is not None else None
    plan = BenchPlan(
        runs=args.runs, warmup=args.warmup, min_seconds=args.min_seconds, rounds=args.rounds,
        threads=args.threads or (), xnnpack_modes={"on": (True,), "off": (False,), "both": (True, False)}[args.xnnpack],
        runtime=args.runtime, timeout_s=args.timeout, lock_timeout_s=args.lock_timeout,
    )
    request = BenchRequest(
        paths=args.paths, plan=plan, variants=args.variants.names if args.variants else None, devices=args.device, tags=args.tag, output=args.output, label=args.label,
        history=None if args.no_history else history_location(args.history), inventory=args.inventory,
        accept_new_host_key=args.accept_new_host_key, data=args.data, reference=args.reference,
        image_range=args.image_range, trust_model_code=args.trust_model_code,
    )

    def progress(device: str, message: str) -> None:
        print(f"[{device}] {message}", file=sys.stderr, flush=True)

    not_recorded: BenchNotRecorded | None = None
    try:
        document = bench(request, progress)
    except BenchNotRecorded as missed:
        document, not_recorded = missed.document, missed
    except BenchInterrupted as interrupted:
        runs = interrupted.document.runs
        unfinished = sum(1 for run in runs if run.rounds and run.rounds["done"] < run.rounds["planned"])
        finished = len(runs) - unfinished
        partly = f" and the measured rounds of {unfinished} unfinished one{'s' if unfinished != 1 else ''}" \
            if unfinished else ""
        print(f"edgeprune: interrupted: kept the {finished} finished run{'s' if finished != 1 else ''} "
              f"({sum(run.ok for run in runs)} ok){partly} in {args.output}; the runners it started were stopped",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(render_bench(document))
    print(f"\nwrote {args.output}")
    failed = [run for run in document.runs if not run.ok]
    for run in failed:
        print(f"edgeprune: {run.device} {run.model}/{run.variant}: {run.error}", file=sys.stderr)
    if not_recorded is not None:
        print(f"edgeprune: error: {one_line(not_recorded)}; {args.output} is written, record it later with "
              f"edgeprune history record {args.output}", file=sys.stderr)
    tracked = mlflow_uri is None or log_to_mlflow(document, args.output, mlflow_uri)
    return EXIT_FAILED if failed or not_recorded or not tracked else EXIT_OK


def resolve_mlflow_uri(option: str) -> str:
    from ..tracking.mlflow_uri import resolve_tracking_uri

    return resolve_tracking_uri(option, os.environ)


def log_to_mlflow(document: ResultsDocument, results_path: Path, uri: str) -> bool:
    """Log the bench to MLflow; a server that refuses it costs the MLflow run only, never the results file."""
    from ..tracking.mlflow_bench import log_bench

    try:
        print(log_bench(document, results_path, uri))
    except TrackingError as exc:
        print(f"edgeprune: error: {one_line(exc)}; {results_path} is written", file=sys.stderr)
        return False
    return True
