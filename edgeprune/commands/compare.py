"""``edgeprune compare``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser("compare", help="per-layer numerics of a variant against a reference .tflite")
    compare.add_argument("reference", type=Path, help="reference .tflite, e.g. an export's fp32.tflite")
    compare.add_argument("candidate", type=Path, help=".tflite to compare with it, e.g. int8.tflite")
    compare.add_argument("--data", type=Path, help=".npz with array x to run both on (default: the export's "
                                                  "validation inputs, else random inputs)")
    compare.add_argument("--json", action="store_true", help="print JSON")
    compare.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..numerics.run import CompareRequest, compare
    from ..reports.compare_table import render_compare

    compared = compare(CompareRequest(args.reference, args.candidate, args.data))
    if args.json:
        print(json.dumps({**compared.comparisons.to_json(), "inputs": compared.inputs}, indent=2))
    else:
        print(render_compare(compared.comparisons, compared.inputs))
    return EXIT_OK
