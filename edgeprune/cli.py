"""The ``edgeprune`` command: argument parsing and output only; the work happens in the library."""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from . import __version__
from .commands import bench, devices, export, gate, inspect, report
from .commands.options import ArgumentParser
from .errors import EdgepruneError

EXIT_INTERRUPTED = 130


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="edgeprune", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edgeprune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for command in COMMANDS:
        command.register(commands)
    return parser


COMMANDS = (export, inspect, bench, devices, gate, report)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="edgeprune: %(message)s")
    if not debug:
        # paramiko's transport thread logs each failed handshake with a traceback; the error edgeprune raises for
        # it says the same in one line.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
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
