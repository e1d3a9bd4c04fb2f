"""``edgeprune export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_OK
from ..text import one_line
from .options import add_trust_model_code_option, variant_choice


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="convert a pruned Keras model to validated TFLite variants")
    export.add_argument("model", type=Path, help=".keras, .h5 or SavedModel folder")
    export.add_argument("-o", "--outdir", type=Path, required=True, help="folder for the variants and manifest.json")
    export.add_argument("--variants", type=variant_choice, metavar="LIST",
                        help="comma-separated list or 'all' (default: every variant that can work for the model and "
                             "data)")
    export.add_argument("--calibration", type=Path, help=".npz with array x, for full-int8 variants")
    export.add_argument(
        "--random-calibration", action="store_true", help="calibrate int8 on random inputs (accuracy meaningless)"
    )
    add_trust_model_code_option(export)
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..convert.export import ExportRequest, export
    from ..reports.export_table import render_export

    requested = list(args.variants.specs) if args.variants else None
    request = ExportRequest(args.model, args.outdir, requested, args.calibration, args.random_calibration,
                            trust_model_code=args.trust_model_code)
    manifest = export(request, progress=lambda message: print(f"  {message}", file=sys.stderr))
    print(render_export(manifest))
    if not manifest.deliverables():
        # An export folder without a single usable model must not let a pipeline carry on as if it had one.
        print(f"edgeprune: error: no variant is deliverable: all {len(manifest.variants)} variants were rejected "
              f"(reasons in {manifest.folder}/manifest.json)", file=sys.stderr)
        return EXIT_FAILED
    # A variant named one by one is a demand; one picked by default or by 'all' is an offer (its rejection is the
    # note under the table).
    failed = manifest.rejected(args.variants.named if args.variants else ())
    for record in failed:
        print(f"edgeprune: error: variant '{record.name}' was rejected: {one_line(record.error)}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
