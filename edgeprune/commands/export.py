"""``edgeprune export``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_OK
from ..text import one_line, printable
from .options import add_trust_model_code_option, variant_choice, whole_number

MAX_AUTO_FLOAT = 100


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
    export.add_argument("--float-layers", metavar="REGEX", type=layer_pattern,
                        help="keep the layers whose names match in float in the full-int8 variants (names as "
                             "'edgeprune compare' shows them)")
    export.add_argument("--auto-float", action="store_true",
                        help="when a full-int8 variant is invalid, keep the layer where it first diverges from fp32 "
                             "in float, one at a time, until it validates or --auto-float-max layers are float")
    export.add_argument("--auto-float-max", type=whole_number(1, MAX_AUTO_FLOAT), default=3, metavar="N",
                        help="at most this many layers for --auto-float (default 3)")
    add_trust_model_code_option(export)
    export.set_defaults(handler=run)


def layer_pattern(text: str) -> str:
    """A regular expression (re.search) over layer names, checked before any loading."""
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"'{printable(text, 60)}' is not a regular expression ({exc})") from None
    return text


def run(args: argparse.Namespace) -> int:
    from ..convert.export import ExportRequest, export
    from ..reports.export_table import render_export

    requested = list(args.variants.specs) if args.variants else None
    request = ExportRequest(args.model, args.outdir, requested, args.calibration, args.random_calibration,
                            trust_model_code=args.trust_model_code, float_layers=args.float_layers,
                            auto_float=args.auto_float, auto_float_max=args.auto_float_max)
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
