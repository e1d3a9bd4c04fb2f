"""``edgeprune prune``, and the pruning options ``sweep`` shares."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EXIT_OK, UsageError
from ..pruning.settings import (DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_SPARSITY, POLICIES, SCHEDULES,
                                PruneSettings, parse_m_by_n)
from .options import add_trust_model_code_option, number, whole_number

MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 1 << 20


def register(commands: argparse._SubParsersAction) -> None:
    prune = commands.add_parser("prune", help="prune a trained Keras model with tfmot while fine-tuning it")
    prune.add_argument("model", type=Path, help="trained .keras, .h5 or SavedModel folder (tf_keras or Keras 3)")
    prune.add_argument("--data", type=Path, required=True, help="training .npz with x and y (labels or one-hot)")
    prune.add_argument("-o", "--output", type=Path, required=True, help="pruned, stripped model to write (.keras)")
    prune.add_argument("--sparsity", type=number(0.0, 1.0, low_excluded=True), default=None,
                       help="final share of zeros in each pruned kernel (default 0.8)")
    add_prune_options(prune)
    prune.add_argument("--json", action="store_true", help="print the per-layer report as JSON")
    add_trust_model_code_option(prune)
    prune.set_defaults(handler=run)


def add_prune_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--schedule", choices=SCHEDULES, default=SCHEDULES[0],
                         help="tfmot's PolynomialDecay (default) or ConstantSparsity")
    command.add_argument("--initial-sparsity", type=number(0.0, 1.0), default=None, metavar="S0",
                         help="where the polynomial schedule starts (default half the final sparsity)")
    command.add_argument("--epochs", type=whole_number(1, MAX_EPOCHS), default=DEFAULT_EPOCHS,
                         help=f"fine-tuning epochs while pruning (default {DEFAULT_EPOCHS})")
    command.add_argument("--batch-size", type=whole_number(1, MAX_BATCH_SIZE), default=DEFAULT_BATCH_SIZE,
                         help=f"training batch size (default {DEFAULT_BATCH_SIZE})")
    command.add_argument("--validation", type=Path,
                         help="validation .npz (default: 10%% of --data held out)")
    command.add_argument("--skip-layers", metavar="REGEX", help="leave layers whose whole name matches dense")
    command.add_argument("--policy", choices=POLICIES,
                         help="xnnpack: prune only what XNNPACK's sparse inference can use (tfmot's "
                              "PruneForLatencyOnXNNPack)")
    command.add_argument("--m-by-n", type=m_by_n, metavar="M:N",
                         help="structured sparsity: M zeros in every N weights along the input channels, e.g. 2:4")
    command.add_argument("--loss", help="Keras loss name (default: the model's compiled loss, else cross-entropy "
                                        "for y)")
    command.add_argument("--learning-rate", type=number(0.0, 10.0, low_excluded=True), default=None,
                         help="fine-tuning learning rate (default: the model's optimizer's, else 0.001)")


def m_by_n(text: str) -> tuple[int, int]:
    try:
        return parse_m_by_n(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def prune_settings(args: argparse.Namespace, sparsity: float | None) -> PruneSettings:

    return PruneSettings(
        sparsity=DEFAULT_SPARSITY if sparsity is None else sparsity, schedule=args.schedule,
        initial_sparsity=args.initial_sparsity, epochs=args.epochs, batch_size=args.batch_size,
        skip_layers=args.skip_layers, policy=args.policy, m_by_n=args.m_by_n, loss=args.loss,
        learning_rate=args.learning_rate,
    )


def run(args: argparse.Namespace) -> int:
    from ..pruning.run import PruneRequest, prune
    from ..reports.prune_table import render_prune

    if args.m_by_n and args.sparsity is not None:
        raise UsageError("--m-by-n sets the sparsity (M of every N); --sparsity does not apply with it",
                         hint="drop one of them")
    request = PruneRequest(args.model, args.data, args.output, prune_settings(args, args.sparsity),
                           validation=args.validation, trust_model_code=args.trust_model_code)
    # Keras' own progress: a bar with an ETA on a terminal, a line per epoch in a CI log.
    pruned = prune(request, verbose=1 if sys.stderr.isatty() else 2)
    if args.json:
        print(json.dumps(pruned.report.to_json(), indent=2))
    else:
        print(render_prune(pruned.report))
        print(f"\nwrote {args.output}")
    return EXIT_OK
