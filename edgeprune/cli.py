"""The ``edgeprune`` command: argument parsing and output only; the work happens in the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .errors import EdgepruneError, UsageError

EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is an EdgepruneError like every other bad input (one line, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="edgeprune", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edgeprune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for register in COMMAND_MODULES:
        register(commands)
    return parser


def add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="convert a pruned Keras model to validated TFLite variants")
    export.add_argument("model", type=Path, help=".keras, .h5 or SavedModel folder")
    export.add_argument("-o", "--outdir", type=Path, required=True, help="folder for the variants and manifest.json")
    export.add_argument("--variants", help="comma-separated list or 'all' (default: what fits the model and data)")
    export.add_argument("--calibration", type=Path, help=".npz with array x, for full-int8 variants")
    export.add_argument(
        "--random-calibration", action="store_true", help="calibrate int8 on random inputs (accuracy meaningless)"
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from .convert.export import ExportRequest, export
    from .convert.variants import parse_variant_list
    from .reports.export_table import render_export

    requested = parse_variant_list(args.variants) if args.variants else None
    request = ExportRequest(args.model, args.outdir, requested, args.calibration, args.random_calibration)
    manifest = export(request, progress=lambda message: print(f"  {message}", file=sys.stderr))
    print(render_export(manifest))
    failed = [record for record in manifest.variants if not record.valid]
    for record in failed:
        print(f"edgeprune: variant '{record.name}' is invalid: {record.error}", file=sys.stderr)
    asked_by_name = {name.strip() for name in (args.variants or "").split(",")} - {"all", ""}
    return 1 if any(record.name in asked_by_name for record in failed) else 0


def add_inspect(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser("inspect", help="per-layer sparsity, MACs and the XNNPACK sparse verdict")
    inspect.add_argument("path", type=Path, help=".tflite file or Keras model")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(handler=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from .inspection import inspect_path, render_inspection

    report = inspect_path(args.path)
    print(json.dumps(report.to_json(), indent=2) if args.json else render_inspection(report))
    return 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def thread_counts(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(",") if part.strip())


def add_device_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--inventory", type=Path, help="inventory file (default: $EDGEPRUNE_INVENTORY or ./edgeprune.toml)")
    command.add_argument("--accept-new-host-key", action="store_true",
                         help="trust and record an unknown SSH host key (like OpenSSH's accept-new); a changed key is still refused")


def add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure variants on devices (local by default)")
    bench.add_argument("paths", nargs="*", type=Path, help="export folders or .tflite files")
    bench.add_argument("--device", action="append", default=[], help="device name from the inventory (repeatable)")
    bench.add_argument("--tag", action="append", default=[], help="every device with this tag (repeatable)")
    bench.add_argument("--runs", type=positive_int, default=100, help="timed invokes per variant (default 100)")
    bench.add_argument("--warmup", type=int, default=10, help="untimed invokes before each round (default 10)")
    bench.add_argument("--min-seconds", type=float, default=0.0, help="keep timing at least this long per variant")
    bench.add_argument("--rounds", type=positive_int, default=3,
                       help="interleaved rounds, each a fresh process per variant (default 3)")
    bench.add_argument("--threads", type=thread_counts, default=None,
                       help="interpreter threads, e.g. 1 or 1,4 (default: the device's 'threads', else 1)")
    bench.add_argument("--xnnpack", choices=("on", "off", "both"), default="on",
                       help="XNNPACK delegate on (default), off (builtin kernels baseline) or both")
    bench.add_argument("--runtime", default="auto", choices=("auto", "ai_edge_litert", "tflite_runtime", "tensorflow"),
                       help="TFLite runtime on the device (default: the first installed of that order)")
    bench.add_argument("--timeout", type=float, default=600.0, help="seconds one runner process may take")
    bench.add_argument("-o", "--output", type=Path, default=Path("results.json"), help="results file (default results.json)")
    bench.add_argument("--data", action="append", type=Path, default=[],
                       help="evaluation .npz (x, optional y) for the accuracy pass; repeat for models of other input shapes")
    bench.add_argument("--reference", type=Path, help="Keras model to compare outputs with (default: the export's source)")
    bench.add_argument("--label", help="name this run in the results history (for gate --baseline history:LABEL)")
    bench.add_argument("--history", type=Path, default=None, help="results history folder (default .edgeprune)")
    bench.add_argument("--no-history", action="store_true", help="do not record this run in the history")
    add_device_options(bench)
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from .bench.run import BenchRequest, bench
    from .bench.session import BenchPlan
    from .reports.bench_table import render_bench
    from .results.history import DEFAULT_HISTORY_DIR

    plan = BenchPlan(
        runs=args.runs, warmup=args.warmup, min_seconds=args.min_seconds, rounds=args.rounds,
        threads=args.threads or (), xnnpack_modes={"on": (True,), "off": (False,), "both": (True, False)}[args.xnnpack],
        runtime=args.runtime, timeout_s=args.timeout,
    )
    request = BenchRequest(
        paths=args.paths, plan=plan, devices=args.device, tags=args.tag, output=args.output, label=args.label,
        history_dir=None if args.no_history else (args.history or DEFAULT_HISTORY_DIR), inventory=args.inventory,
        accept_new_host_key=args.accept_new_host_key, data=args.data, reference=args.reference,
    )

    def progress(device: str, message: str) -> None:
        print(f"[{device}] {message}", file=sys.stderr, flush=True)

    document = bench(request, progress)
    print(render_bench(document))
    print(f"\nwrote {args.output}")
    failed = [run for run in document.runs if not run.ok]
    for run in failed:
        print(f"edgeprune: {run.device} {run.model}/{run.variant}: {run.error}", file=sys.stderr)
    return 1 if failed else 0


def add_devices(commands: argparse._SubParsersAction) -> None:
    devices = commands.add_parser("devices", help="list and check the devices of the inventory")
    actions = devices.add_subparsers(dest="action", required=True, parser_class=ArgumentParser)
    listing = actions.add_parser("list", help="the devices the inventory knows")
    add_device_options(listing)
    listing.set_defaults(handler=run_devices_list)
    check = actions.add_parser("check", help="connect and report what the device has")
    check.add_argument("name", help="device name from the inventory")
    check.add_argument("--runtime", default="auto", choices=("auto", "ai_edge_litert", "tflite_runtime", "tensorflow"))
    check.add_argument("--json", action="store_true", help="print JSON")
    add_device_options(check)
    check.set_defaults(handler=run_devices_check)


def run_devices_list(args: argparse.Namespace) -> int:
    from .devices.inventory import Inventory
    from .reports.devices_table import render_device_list

    print(render_device_list(Inventory.load(args.inventory)))
    return 0


def run_devices_check(args: argparse.Namespace) -> int:
    from .bench.session import DeviceSession
    from .devices.inventory import Inventory
    from .reports.devices_table import render_device_check

    device = Inventory.load(args.inventory).open(args.name, accept_new_host_key=args.accept_new_host_key)
    with device:
        info = DeviceSession(device).open(args.runtime)
    print(json.dumps(info, indent=2) if args.json else render_device_check(device, info))
    return 0


COMMAND_MODULES: list[Callable[[argparse._SubParsersAction], None]] = [add_export, add_inspect, add_bench, add_devices]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.INFO if debug else logging.WARNING, format="edgeprune: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except EdgepruneError as exc:
        if debug:
            raise
        print(f"edgeprune: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgeprune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
