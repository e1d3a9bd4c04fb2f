"""``edgeprune devices list|check``."""

from __future__ import annotations

import argparse
import json

from .options import ArgumentParser, add_device_options


def register(commands: argparse._SubParsersAction) -> None:
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
    from ..devices.inventory import Inventory
    from ..reports.devices_table import render_device_list

    print(render_device_list(Inventory.load(args.inventory)))
    return 0


def run_devices_check(args: argparse.Namespace) -> int:
    from ..bench.session import DeviceSession
    from ..devices.inventory import Inventory
    from ..reports.devices_table import render_device_check

    device = Inventory.load(args.inventory).open(args.name, accept_new_host_key=args.accept_new_host_key)
    with device:
        info = DeviceSession(device).open(args.runtime)
    print(json.dumps(info, indent=2) if args.json else render_device_check(device, info))
    return 0
