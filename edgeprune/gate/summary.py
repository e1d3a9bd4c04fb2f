"""The Markdown summary of a gate, for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""

from __future__ import annotations

from ..reports.markdown import markdown_code, markdown_table
from .checks import GateReport
from .console import verdict


def markdown_summary(report: GateReport) -> str:
    icon = "✅" if report.passed else "❌"
    # Failures first: in a long gate they are what the reader came for.
    ordered = sorted(report.checks, key=lambda check: check.passed)
    rows = [["✅" if check.passed else "❌", check.subject, markdown_code(check.budget), check.measured_text,
             check.limit_text, check.source, check.note] for check in ordered]
    inputs = report.inputs
    sources = f"policy {markdown_code(inputs.policy.path)}, results {markdown_code(inputs.results_name)}" + (
        f", baseline {markdown_code(inputs.baseline_name)}" if inputs.baseline_name else "")
    return "\n".join([
        f"### {icon} edgeprune {verdict(report)}",
        "",
        sources,
        "",
        markdown_table(["", "run", "check", "measured", "budget", "set by", "note"], rows),
        "",
    ])
