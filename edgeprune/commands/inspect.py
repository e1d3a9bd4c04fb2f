"""``edgeprune inspect``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EXIT_OK
from .options import add_trust_model_code_option


def register(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser("inspect", help="per-layer sparsity, MACs and the XNNPACK sparse verdict")
    inspect.add_argument("path", type=Path, help=".tflite file or Keras model")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_trust_model_code_option(inspect)
    inspect.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..inspection import inspect_path, render_inspection

    report = inspect_path(args.path, trust_model_code=args.trust_model_code)
    print(json.dumps(report.to_json(), indent=2) if args.json else render_inspection(report))
    return EXIT_OK
