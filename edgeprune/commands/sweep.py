"""``edgeprune sweep``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_OK, UsageError
from .options import (MAX_SECONDS, add_device_options, add_trust_model_code_option, number, positive_int,
                      thread_counts, variant_choice, whole_number)
from .prune import add_prune_options, prune_settings

DEFAULT_TARGETS = (0.5, 0.7, 0.8, 0.9)


def register(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser("sweep", help="prune at several sparsities, export and bench each, and recommend "
                                              "the variant to ship")
    sweep.add_argument("model", type=Path, help="trained, unpruned .keras, .h5 or SavedModel folder")
    sweep.add_argument("--data", type=Path, required=True, help="training .npz with x and y")
    sweep.add_argument("--eval", type=Path, required=True,
                       help="evaluation .npz with x and y: the top-1 measured on each device")
    sweep.add_argument("--sparsity", type=sparsity_list, default=None, metavar="LIST",
                       help="target sparsities, comma-separated (default 0.5,0.7,0.8,0.9; with --m-by-n its one "
                            "target, M/N); the unpruned model is always measured too")
    sweep.add_argument("-o", "--outdir", type=Path, required=True,
                       help="sweep folder: models, exports, results.json and sweep.json (rerun to resume)")
    add_prune_options(sweep)
    sweep.add_argument("--variants", type=variant_choice, metavar="LIST",
                       help="export's variants, comma-separated or 'all' (default: every variant that can work)")
    sweep.add_argument("--calibration", type=Path, help=".npz with array x, for full-int8 variants")
    sweep.add_argument("--device", action="append", default=[],
                       help="device from the inventory (repeatable; default local); the first one's points are "
                            "the ones recommended")
    sweep.add_argument("--runs", type=positive_int, default=30, help="timed invokes per variant (default 30)")
    sweep.add_argument("--warmup", type=whole_number(0, 10_000), default=5, help="untimed invokes per round (default 5)")
    sweep.add_argument("--rounds", type=whole_number(1, 1000), default=3, help="interleaved rounds (default 3)")
    sweep.add_argument("--threads", type=thread_counts, default=None, help="interpreter threads, e.g. 1 or 1,4")
    sweep.add_argument("--timeout", type=number(0.0, MAX_SECONDS, low_excluded=True), default=600.0,
                       help="seconds one runner process may take")
    sweep.add_argument("--max-top1-drop", type=number(0.0, 100.0), default=1.0, metavar="POINTS",
                       help="the most top-1 a recommended point may lose against the unpruned fp32 (default 1.0)")
    sweep.add_argument("--sensitivity", action="store_true",
                       help="first prune each layer alone at the highest target and rank the top-1 it loses")
    sweep.add_argument("--auto-skip", action="store_true",
                       help="leave dense the layers --sensitivity finds losing more than --max-top1-drop")
    add_device_options(sweep)
    add_trust_model_code_option(sweep)
    sweep.set_defaults(handler=run)


def sparsity_list(text: str) -> tuple[float, ...]:
    try:
        # Four decimals at most: targets name the models (s87.5), and closer ones would share a name.
        targets = tuple(sorted({round(float(part), 4) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers, e.g. 0.5,0.8") from None
    if not targets or any(not 0.0 < target < 1.0 for target in targets):
        raise argparse.ArgumentTypeError(f"'{text}': each target must lie between 0 and 1 (exclusive)")
    return targets


class StepProgress:
    """A bar with an ETA on a terminal (tqdm); plain lines with the ETA in a CI log."""

    def __init__(self) -> None:
        self.bar = None
        self.worked: list[float] = []  # seconds of the steps that ran (reused ones cost nothing)
        self.started = time.monotonic()

    def step(self, event) -> None:
        if event.state == "started":
            self.describe(f"{event.step} {event.subject}")
            return
        if event.state == "done":
            self.worked.append(event.seconds)
        if self.bar is None and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, unit="step", file=sys.stderr, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(1)
            return
        outcome = "reused (finished earlier)" if event.state == "reused" else f"done in {event.seconds:.1f} s"
        remaining = event.total - event.index
        eta = f", about {format_seconds(remaining * sum(self.worked) / len(self.worked))} left" \
            if self.worked and remaining else ""
        print(f"sweep: [{event.index}/{event.total}] {event.step} {event.subject}: {outcome}{eta}",
              file=sys.stderr, flush=True)

    def detail(self, message: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(message[:60])
        else:
            print(f"  {message}", file=sys.stderr, flush=True)

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text)
        else:
            print(f"sweep: {text} ...", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def run(args: argparse.Namespace) -> int:
    from ..bench.plan import BenchPlan
    from ..reports.sweep_table import render_sweep
    from ..sweep.run import SweepRequest, sweep

    if args.m_by_n and args.sparsity is not None:
        raise UsageError("--m-by-n sets the one target (M of every N); --sparsity does not apply with it",
                         hint="drop one of them")
    targets = (args.m_by_n[0] / args.m_by_n[1],) if args.m_by_n else args.sparsity or DEFAULT_TARGETS
    plan = BenchPlan(runs=args.runs, warmup=args.warmup, rounds=args.rounds, threads=args.threads or (),
                     timeout_s=args.timeout)
    request = SweepRequest(
        model=args.model, data=args.data, eval=args.eval, outdir=args.outdir, targets=targets,
        prune=prune_settings(args, max(targets)), validation=args.validation,
        variants=list(args.variants.specs) if args.variants else None, calibration=args.calibration,
        devices=tuple(args.device) or ("local",), plan=plan, max_top1_drop=args.max_top1_drop,
        sensitivity=args.sensitivity, auto_skip=args.auto_skip, inventory=args.inventory,
        accept_new_host_key=args.accept_new_host_key, trust_model_code=args.trust_model_code,
    )
    progress = StepProgress()
    try:
        document = sweep(request, progress.step, progress.detail)
    finally:
        progress.close()
    print(render_sweep(document))
    print(f"\nwrote {args.outdir / 'sweep.json'} and {args.outdir / 'results.json'}")
    failed = [point for point in document.points if point.status != "ok"]
    return EXIT_FAILED if failed else EXIT_OK
