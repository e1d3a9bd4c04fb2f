"""``edgeprune report``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EXIT_OK, UsageError


def register(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="one self-contained HTML report with plots (and Markdown)")
    report.add_argument("results", type=Path, help="results file from edgeprune bench")
    report.add_argument("-o", "--output", type=Path, default=Path("report.html"),
                        help="HTML file to write (default report.html)")
    report.add_argument("--markdown", type=Path, help="also write the tables as Markdown, e.g. for a PR comment")
    report.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..fsutil import write_bytes_atomic
    from ..reports.markdown import render_markdown
    from ..reports.report_data import collect
    from ..results.document import read_results

    try:
        from ..reports.html import render_html
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "matplotlib":
            raise
        raise UsageError("edgeprune report needs matplotlib, which is not installed",
                         hint="pip install 'edgeprune[report]'") from exc
    data = collect(read_results(args.results), args.results)
    write_bytes_atomic(args.output, render_html(data).encode("utf-8"), what="HTML report")
    print(f"wrote {args.output}")
    if args.markdown:
        write_bytes_atomic(args.markdown, render_markdown(data).encode("utf-8"), what="Markdown report")
        print(f"wrote {args.markdown}")
    return EXIT_OK
