"""``edgeprune history list|show|export|record``: browse the results history, take a bench back out as a results
file, or put a results file in (a bench whose history was down)."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..errors import EXIT_OK
from .options import ArgumentParser, add_history_option, whole_number

if TYPE_CHECKING:
    from ..history.store import History

MAX_LISTED = 100_000
MAX_BENCH_ID = 10**18 - 1


def register(commands: argparse._SubParsersAction) -> None:
    history = commands.add_parser("history", help="browse the results history, export a bench, record a results file")
    actions = history.add_subparsers(dest="action", required=True, parser_class=ArgumentParser)
    listing = actions.add_parser("list", help="the newest benches, newest first")
    listing.add_argument("--label", help="only benches with this label")
    listing.add_argument("--limit", type=whole_number(1, MAX_LISTED), default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="one bench: where it came from and its runs")
    show.add_argument("id", type=whole_number(1, MAX_BENCH_ID), help="bench id (history list shows them)")
    show.set_defaults(handler=run_show)
    export = actions.add_parser("export", help="a bench as a results file (for gate, report)")
    export.add_argument("id", type=whole_number(1, MAX_BENCH_ID), help="bench id (history list shows them)")
    export.add_argument("-o", "--output", type=Path, required=True, help="results file to write")
    export.set_defaults(handler=run_export)
    record = actions.add_parser("record", help="put a results file into the history as a new bench")
    record.add_argument("results", type=Path, help="results file from edgeprune bench")
    record.add_argument("--label", help="label the bench (default: the results file's own label)")
    record.set_defaults(handler=run_record)
    for parser in (listing, show, export, record):
        add_history_option(parser)


def run_list(args: argparse.Namespace) -> int:
    from ..reports.history_table import render_history_list

    with opened(args) as history:
        benches = history.list_benches(args.label, args.limit)
        shown_as = history.location.display
    print(json.dumps([bench.to_json() for bench in benches], indent=2) if args.json
          else render_history_list(benches, shown_as))
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from ..reports.history_table import render_history_bench

    with opened(args) as history:
        document = history.load(args.id)
    print(render_history_bench(args.id, document))
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from ..fsutil import write_json_atomic
    from ..results.document import without_non_finite

    with opened(args) as history:
        document = history.load(args.id)
    write_json_atomic(args.output, without_non_finite(document.to_json()), what="results file")
    print(f"wrote {args.output} (bench {args.id}, {len(document.runs)} runs)")
    return EXIT_OK


def run_record(args: argparse.Namespace) -> int:
    from ..results.document import read_results

    document = read_results(args.results)
    if args.label is not None:
        document.label = args.label
    with opened(args, reading=False) as history:
        bench_id = history.record(document, args.results)
        shown_as = history.location.display
    print(f"recorded {args.results} as bench {bench_id} in {shown_as}")
    return EXIT_OK


@contextlib.contextmanager
def opened(args: argparse.Namespace, *, reading: bool = True) -> Iterator[History]:
    """The history ``--history`` names, closed after use; one that is read must exist already."""
    from ..history.location import history_location
    from ..history.store import History, open_existing

    location = history_location(args.history)
    history = open_existing(location) if reading else History(location)
    try:
        yield history
    finally:
        history.close()
