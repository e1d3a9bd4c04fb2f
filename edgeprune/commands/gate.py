"""``edgeprune gate``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_OK
from ..fsutil import os_reason, write_bytes_atomic
from .options import add_history_option

SUMMARY_ENV_VAR = "GITHUB_STEP_SUMMARY"


def register(commands: argparse._SubParsersAction) -> None:
    gate = commands.add_parser("gate", help="check bench results against a policy of budgets (exit 1 on a failure)")
    gate.add_argument("results", type=Path, help="results file from edgeprune bench")
    gate.add_argument("--policy", type=Path, required=True, help="policy TOML file (see docs/gate.md)")
    gate.add_argument("--baseline", help="results file, or history:LABEL for a labelled bench in the history, to "
                                         "check regressions against")
    add_history_option(gate)
    gate.add_argument("--junit", type=Path, help="also write JUnit XML, one testcase per check")
    gate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..gate.baseline import load_baseline
    from ..gate.checks import evaluate
    from ..gate.console import render_checks
    from ..gate.junit import junit_xml
    from ..gate.policy import BUDGET_KINDS, read_policy
    from ..gate.selection import GateInputs
    from ..gate.summary import markdown_summary
    from ..results.document import read_results
    from ..history.location import history_location

    policy = read_policy(args.policy)
    results = read_results(args.results)
    baseline, baseline_name = (load_baseline(args.baseline, history_location(args.history)) if args.baseline
                               else (None, None))
    report = evaluate(GateInputs(policy, results, str(args.results), baseline, baseline_name))
    if baseline is not None and not any(BUDGET_KINDS[key].reference == "baseline" for key in policy.budget_keys()):
        print(f"edgeprune: note: {args.policy} sets no budget against a baseline; --baseline is unused",
              file=sys.stderr)
    if args.junit:
        timestamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        write_bytes_atomic(args.junit, junit_xml(report, timestamp=timestamp), what="JUnit file")
        print(f"wrote {args.junit}")
    if summary_path := os.environ.get(SUMMARY_ENV_VAR):
        append_summary(Path(summary_path), markdown_summary(report))
    # The verdict is the output's last line, on stdout, once; the exit status says it to CI.
    print(render_checks(report))
    return EXIT_OK if report.passed else EXIT_FAILED


def append_summary(path: Path, markdown: str) -> None:
    """Append, as GitHub Actions asks: earlier steps' summaries share the file.

    The summary only mirrors the verdict printed and returned, which CI acts on: a file that cannot be written
    is warned about, not allowed to turn a pass (or a failure) into an error exit.
    """
    try:
        with path.open("a", encoding="utf-8") as summary:
            summary.write(markdown)
    except OSError as exc:
        print(f"edgeprune: warning: cannot append the gate summary to ${SUMMARY_ENV_VAR} file '{path}': "
              f"{os_reason(exc, path.parent)}; the gate verdict is unaffected", file=sys.stderr)
