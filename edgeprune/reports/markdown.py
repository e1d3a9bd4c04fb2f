"""The report as Markdown, fit for a pull-request comment: the tables behind the HTML report's plots."""

from __future__ import annotations

from typing import Any, Sequence

from .report_data import PARETO_MEANING, ModelSparsity, ReportData, Table


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(header) for header in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(data: ReportData) -> str:
    facts = ", ".join(f"{name} {value}" for name, value in data.facts() if name != "results")
    sections = [f"## {data.title}", f"`{data.source}`: {facts}", "### Runs", table(data.runs_table())]
    if data.tradeoff:
        sections += ["### Trade-off", f"★: {PARETO_MEANING}", table(data.tradeoff_table())]
    sections += ["### Per-layer sparsity"] + [sparsity_section(data, model) for model in data.sparsity]
    if verdicts := data.sparse_inference():
        sections += ["### XNNPACK sparse inference"]
        sections += ["\n".join([f"- **{headline}**"] + [f"  - {reason}" for reason in reasons])
                     for headline, reasons in verdicts]
    sections += ["_Latency distributions and the trade-off plot are in the HTML report (`edgeprune report`)._"]
    return "\n\n".join(sections) + "\n"


def sparsity_section(data: ReportData, model: ModelSparsity) -> str:
    if model.problem:
        return f"**{model.model}**: {model.problem}"
    # Collapsed: a deep model's layer list would drown the comment.
    return (f"<details><summary><b>{model.model}</b>: {model.summary}</summary>\n\n"
            f"{table(data.sparsity_table(model))}\n\n</details>")


def table(headers_and_rows: Table) -> str:
    return markdown_table(*headers_and_rows)
