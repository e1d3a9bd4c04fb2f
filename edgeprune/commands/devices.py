"""``edgeprune devices list|check``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_OK
from .options import RUNTIME_CHOICES, ArgumentParser, add_device_options


def register(commands: argparse._SubParsersAction) -> None:
    devices = commands.add_parser("devices", help="list and check the devices of the inventory")
    actions = devices.add_subparsers(dest="action", required=True, parser_class=ArgumentParser)
    listing = actions.add_parser("list", help="the devices the inventory knows")
    add_device_options(listing)
    listing.set_defaults(handler=run_devices_list)
    check = actions.add_parser("check", help="connect and report what the device has")
    check.add_argument("name", help="device name from the inventory")
    check.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES)
    check.add_argument("--model", action="append", type=Path, dest="models", metavar="PATH",
                       help="export folder or .tflite file: say which of its variants the device's runtime can load "
                            "(repeatable; exit 1 when one cannot)")
    check.add_argument("--json", action="store_true", help="print JSON")
    add_device_options(check)
    check.set_defaults(handler=run_devices_check)
    setup = actions.add_parser("setup", help="create a venv on the device with numpy and a TFLite runtime")
    setup.add_argument("name", help="device name from the inventory")
    setup.add_argument("--venv", help="venv folder on the device (default: WORKDIR/venv)")
    setup.add_argument("--base-python", default="python3", help="interpreter on the device that creates the venv")
    setup.add_argument("--package", action="append", dest="packages",
                       help="package to install (repeatable; default: numpy and ai-edge-litert)")
    setup.add_argument("--offline", action="store_true",
                       help="the board has no internet: download wheels on this machine and push them")
    setup.add_argument("--wheels", type=Path, help="push and install the wheels in this folder (implies --offline)")
    add_device_options(setup)
    setup.set_defaults(handler=run_devices_setup)


def run_devices_list(args: argparse.Namespace) -> int:
    from ..devices.inventory import Inventory
    from ..reports.devices_table import render_device_list

    print(render_device_list(Inventory.load(args.inventory)))
    return EXIT_OK


def run_devices_check(args: argparse.Namespace) -> int:
    from ..bench.session import DeviceSession
    from ..bench.targets import collect_targets
    from ..devices.inventory import Inventory
    from ..reports.devices_table import render_device_check, render_variant_loads

    targets = collect_targets(args.models)[0] if args.models else []
    device = Inventory.load(args.inventory).open(args.name, accept_new_host_key=args.accept_new_host_key)
    with device:  # rendered inside: the report reads the device's workdir, which needs a farm place held
        session = DeviceSession(device)
        info = session.describe(args.runtime)
        try:
            rows = session.variant_loads(targets, args.runtime).rows(targets) if targets else None
        finally:
            session.close()
        if args.json:
            report = json.dumps({**info, **({"variants": rows} if rows is not None else {})}, indent=2)
        else:
            report = render_device_check(device, info) + (render_variant_loads(rows) if rows is not None else "")
    print(report)
    return EXIT_FAILED if rows and not all(row["loads"] for row in rows) else EXIT_OK


def run_devices_setup(args: argparse.Namespace) -> int:
    from ..board.provision import DEFAULT_PACKAGES, SetupRequest, setup_device
    from ..devices.inventory import Inventory
    from ..reports.devices_table import render_device_check

    request = SetupRequest(venv=args.venv, base_python=args.base_python, packages=args.packages or DEFAULT_PACKAGES,
                           offline=args.offline, wheels=args.wheels)
    device = Inventory.load(args.inventory).open(args.name, accept_new_host_key=args.accept_new_host_key)
    with device:
        info = setup_device(device, request, lambda message: print(f"[{device.name}] {message}", file=sys.stderr))
        report = render_device_check(device, info)
    print(report)
    print(f"\nready: set python = \"{device.python}\" in [devices.{device.name}] of the inventory")
    return EXIT_OK
