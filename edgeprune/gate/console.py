"""What ``edgeprune gate`` prints: one line per check, then the verdict."""

from __future__ import annotations

from ..reports.table import format_table
from .checks import GateReport


def render_checks(report: GateReport) -> str:
    rows = [["PASS" if check.passed else "FAIL", check.subject, check.budget, check.measured_text, check.limit_text,
             check.source, check.note or None] for check in report.checks]
    table = format_table(["result", "run", "check", "measured", "budget", "set by", "note"], rows)
    return f"{table}\n\n{verdict(report)}"


def verdict(report: GateReport) -> str:
    total, failed = len(report.checks), len(report.failures)
    return f"gate passed: {total} checks" if report.passed else f"gate FAILED: {failed} of {total} checks failed"
