"""The report as Markdown, fit for a pull-request comment: the tables behind the HTML report's plots.

Names and messages come from the results file: each is Markdown-escaped text (no tag, link, image or emphasis
it did not show as text, no cell or line it could break), and inside raw HTML it is HTML-escaped instead.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any, Sequence

from ..text import one_line
from .report_data import NOT_SHIPPED_MEANING, PARETO_MEANING, ModelSparsity, ReportData, Table
from .sweep_view import SWEEP_PARETO_MEANING

# What would start a code span, emphasis, a link or image, math, strikethrough, a heading's closing or a table cell;
# an entity; a tag, a comment or an autolink (a '<' before anything else, as in '<= 5 ms', is only text); and,
# first on a line (a heading's or a list item's text), a quote, a list or a heading underline.
_MARKDOWN_ACTIVE = re.compile(r"[\\`*\[\]|$~#]")
_HTML_ACTIVE = re.compile(r"&|<(?=[A-Za-z/!?])")
_BLOCK_START = re.compile(r"^(\d{0,9})([>+=.)-])")


class Markdown(str):
    """Text that is already Markdown (a code span), which a table takes as it is."""


def markdown_text(value: Any) -> str:
    """``value`` as inline Markdown (a table cell, the middle of a line) that shows exactly its text, less the
    spaces around it."""
    text = _MARKDOWN_ACTIVE.sub(lambda match: "\\" + match.group(), one_line(value).strip())
    return _HTML_ACTIVE.sub(lambda match: {"&": "&amp;", "<": "&lt;"}[match.group()], text)


def markdown_line(value: Any) -> str:
    """``value`` as the text that starts a list item: ``markdown_text`` that starts no quote, list or heading."""
    return _BLOCK_START.sub(lambda match: f"{match.group(1)}\\{match.group(2)}", markdown_text(value))


def markdown_code(value: Any) -> Markdown:
    """``value`` as a code span: a fence longer than any run of backticks in it, so it cannot close early."""
    text = one_line(value)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        # A table splits its rows at every '|', code spans included; '\|' is a '|' there too.
        return value.replace("|", "\\|") if isinstance(value, Markdown) else markdown_text(value)

    lines = ["| " + " | ".join(cell(header) for header in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(data: ReportData) -> str:
    facts = ", ".join(f"{name} {value}" for name, value in data.facts() if name != "results")
    sections = [f"## {markdown_text(data.title)}", f"{markdown_code(data.source)}: {markdown_text(facts)}"]
    sections += sweep_section(data)
    sections += ["### Runs", table(data.runs_table())]
    sections += not_shipped_section(data)
    if data.tradeoff:
        sections += ["### Trade-off", f"★: {PARETO_MEANING}", table(data.tradeoff_table())]
    sections += ["### Per-layer sparsity"] + [sparsity_section(data, model) for model in data.sparsity]
    if verdicts := data.sparse_inference():
        sections += ["### XNNPACK sparse inference"]
        sections += ["\n".join([f"- **{markdown_text(headline)}**"] + [f"  - {markdown_line(reason)}"
                                                                       for reason in reasons])
                     for headline, reasons in verdicts]
    plots = ("Latency distributions, the trade-off plot and the sweep's plots" if data.sweep
             else "Latency distributions and the trade-off plot")
    sections += [f"_{plots} are in the HTML report (`edgeprune report`)._"]
    return "\n\n".join(sections) + "\n"


def sweep_section(data: ReportData) -> list[str]:
    view = data.sweep
    if view is None:
        return []
    parts = ["### Sweep", f"**{markdown_text(view.headline)}**"]
    headers, rows = view.pareto_table()
    if rows:
        parts += [markdown_text(SWEEP_PARETO_MEANING), markdown_table(headers, rows)]
    return parts


def not_shipped_section(data: ReportData) -> list[str]:
    headers, rows = data.not_shipped_table()
    parts = []
    if rows:
        parts += [markdown_text(NOT_SHIPPED_MEANING), markdown_table(headers, rows)]
        shortened = [(model, variant, reason) for model, variant, reason in rows if reason.shortened]
        if shortened:
            items = "\n".join(f"- **{markdown_text(model)}** {markdown_text(variant)}: {markdown_text(reason.full)}"
                              for model, variant, reason in shortened)
            parts.append(f"<details><summary>Full reasons</summary>\n\n{items}\n\n</details>")
    parts += [markdown_text(line) for line in data.not_shipped_notes()]
    return ["### Not shipped", *parts] if parts else []


def sparsity_section(data: ReportData, model: ModelSparsity) -> str:
    if model.problem:
        return f"**{markdown_text(model.model)}**: {markdown_text(model.problem)}"
    # Collapsed: a deep model's layer list would drown the comment. Markdown is not read inside the HTML tags.
    return (f"<details><summary><b>{escape(one_line(model.model))}</b>: {escape(one_line(model.summary))}</summary>"
            f"\n\n{table(data.sparsity_table(model))}\n\n</details>")


def table(headers_and_rows: Table) -> str:
    return markdown_table(*headers_and_rows)
