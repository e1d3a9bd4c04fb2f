"""The ``edgeprune`` command: argument parsing and output only; the work happens in the library."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from typing import Iterator, Sequence

from . import __version__
from .commands import bench, compare, devices, export, gate, history, inspect, prune, report, sweep
from .commands.options import ArgumentParser
from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED, EdgepruneError
from .text import one_line

DESCRIPTION = """\
Take a Keras model to an ARM board and measure what pruning and quantization buy: prune it (or sweep several
sparsities to find the one worth shipping), export validated TFLite variants, inspect their sparsity and MACs,
bench them on devices over SSH, gate a release on the results and report them."""
EPILOG = "Run 'edgeprune COMMAND --help' for a command's options. Exit status: 0 ok, 1 failed runs/checks/" \
         "variants, 2 unusable input, 130 interrupted, 143 terminated."


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service stopping, ``kill``, a CI timeout), raised where Ctrl-C raises KeyboardInterrupt: every
    cleanup that Ctrl-C runs (an export's staging folder, a bench's runners and results) runs for it too."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="edgeprune", description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"edgeprune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for command in COMMANDS:
        command.register(commands)
    return parser


COMMANDS = (prune, sweep, export, inspect, compare, bench, devices, gate, report, history)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="edgeprune: %(message)s")
    if not debug:
        # paramiko's transport thread logs each failed handshake with a traceback; the error edgeprune raises for
        # it says the same in one line.
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    try:
        with sigterm_as_interrupt():
            args = build_parser().parse_args(argv)
            return args.handler(args)
    except EdgepruneError as exc:
        if debug:
            raise
        # A message may quote a name from a hostile file or board: one line, escapes shown, never obeyed.
        print(f"edgeprune: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("edgeprune: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("edgeprune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
