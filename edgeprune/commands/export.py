"""``edgeprune export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import add_trust_model_code_option


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="convert a pruned Keras model to validated TFLite variants")
    export.add_argument("model", type=Path, help=".keras, .h5 or SavedModel folder")
    export.add_argument("-o", "--outdir", type=Path, required=True, help="folder for the variants and manifest.json")
    export.add_argument("--variants", help="comma-separated list or 'all' (default: what fits the model and data)")
    export.add_argument("--calibration", type=Path, help=".npz with array x, for full-int8 variants")
    export.add_argument(
        "--random-calibration", action="store_true", help="calibrate int8 on random inputs (accuracy meaningless)"
    )
    add_trust_model_code_option(export)
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..convert.export import ExportRequest, export
    from ..convert.variants import parse_variant_list
    from ..reports.export_table import render_export

    requested = parse_variant_list(args.variants) if args.variants else None
    request = ExportRequest(args.model, args.outdir, requested, args.calibration, args.random_calibration,
                            trust_model_code=args.trust_model_code)
    manifest = export(request, progress=lambda message: print(f"  {message}", file=sys.stderr))
    print(render_export(manifest))
    failed = [record for record in manifest.variants if not record.valid]
    for record in failed:
        print(f"edgeprune: variant '{record.name}' is invalid: {record.error}", file=sys.stderr)
    if not manifest.deliverables():
        # An export folder without a single usable model must not let a pipeline carry on as if it had one.
        print(f"edgeprune: no variant is deliverable: all {len(manifest.variants)} variants are invalid "
              f"(reasons in {manifest.folder}/manifest.json)", file=sys.stderr)
        return 1
    asked_by_name = {name.strip() for name in (args.variants or "").split(",")} - {"all", ""}
    return 1 if any(record.name in asked_by_name for record in failed) else 0
