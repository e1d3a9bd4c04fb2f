"""The report as one self-contained HTML file: inline CSS, plots embedded as base64 PNG, no script, no fetch."""

from __future__ import annotations

import base64
from html import escape
from typing import Any, Mapping

from ..text import one_line
from . import plots, sweep_plots
from .report_data import (LAYER_SNR_MEANING, NOT_SHIPPED_MEANING, PARETO_MEANING, ModelLayerSNR, ModelSparsity,
                          ReportData, Table)
from .sweep_view import SWEEP_PARETO_MEANING
from .table import LongText, is_number

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1300px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .1em 1.5em; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0; }
img.plot { display: block; max-width: 100%; height: auto; margin: 1em 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
/* A table wider than the page breaks its headers between words and its messages anywhere; values stay whole. */
th { background: #f4f4f4; vertical-align: bottom; } td { white-space: nowrap; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.message { white-space: normal; overflow-wrap: anywhere; }
summary { cursor: pointer; }
tr.failed td { background: #fdecea; }
.scroll { overflow-x: auto; } .note { color: #666; }
"""


def render_html(data: ReportData) -> str:
    body = [f"<h1>{safe(data.title)}</h1>", facts_list(data.facts()), sweep_section(data), latency_section(data),
            not_shipped_section(data), tradeoff_section(data), sparsity_section(data), layer_snr_section(data),
            sparse_inference_section(data)]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{safe(data.title)}</title><style>{STYLE}</style></head>",
        "<body>", *body, "</body></html>", "",
    ])


def sweep_section(data: ReportData) -> str:
    """The sweep's recommendation first (what to ship), then the plots behind it and its Pareto points."""
    view = data.sweep
    if view is None:
        return ""
    content = f"<p><b>{safe(view.headline)}</b></p>"
    by_sparsity = sweep_plots.top1_vs_sparsity_png(view)
    if by_sparsity is None:
        return section("Sweep", content + note("No sweep point was measured with its top-1: nothing to plot."))
    content += plot_img(by_sparsity, "top-1 vs target sparsity per variant and device")
    by_latency = sweep_plots.top1_vs_latency_png(view)
    if by_latency is not None:
        content += (plot_img(by_latency, "top-1 vs p50 latency per device, with the Pareto front")
                    + cropped(len(view.devices), plots.MAX_PANELS, "device panels"))
    return section("Sweep", content + note(SWEEP_PARETO_MEANING) + html_table(view.pareto_table(),
                                                                               container_id="sweep-pareto"))


def latency_section(data: ReportData) -> str:
    image = plots.latency_distribution_png(data)
    if image is None:
        figure = note("No run has latency samples to plot.")
    else:
        figure = (plot_img(image, "latency distribution per variant, device and model")
                  + cropped(len(plots.latency_panels(data)), plots.MAX_PANELS, "device and model panels"))
    # A failed run's error goes on a row of its own below it, as wide as the table: in the status column it would
    # make the table too wide for the page, or the row as tall as the error is long.
    runs = html_table(data.runs_table(errors_in_status=False), errors=run_errors(data), container_id="runs")
    return section("Latency", figure + runs)


def not_shipped_section(data: ReportData) -> str:
    table = data.not_shipped_table()
    content = note(NOT_SHIPPED_MEANING) + html_table(table, container_id="not-shipped") if table[1] else ""
    content += "".join(note(line) for line in data.not_shipped_notes())
    return section("Not shipped", content) if content else ""


def tradeoff_section(data: ReportData) -> str:
    image = plots.tradeoff_png(data)
    if image is None:
        return section("Trade-off", note("No run was measured: nothing to compare."))
    legend = note(f"Ringed in the plot, ★ in the table. {PARETO_MEANING}")
    return section("Trade-off", plot_img(image, "p50 latency vs model size vs top-1") + legend
                   + cropped(len(plots.tradeoff_panels(data)), plots.MAX_PANELS, "device and model panels")
                   + html_table(data.tradeoff_table()))


def sparsity_section(data: ReportData) -> str:
    return section("Per-layer sparsity", "".join(model_sparsity(data, model) for model in data.sparsity))


def model_sparsity(data: ReportData, model: ModelSparsity) -> str:
    heading = f"<h3>{safe(model.model)}</h3>"
    if model.problem:
        return heading + note(model.problem)
    return (heading + note(model.summary) + plot_img(plots.sparsity_png(model), f"per-layer sparsity of {model.model}")
            + cropped(len(model.layers), plots.MAX_LAYERS, "layers") + html_table(data.sparsity_table(model)))


def layer_snr_section(data: ReportData) -> str:
    """Per model whose export compared its variants' layers with fp32's, the SNR of each; no section without."""
    if not data.layer_snr:
        return ""
    return section("Per-layer SNR against fp32", note(LAYER_SNR_MEANING)
                   + "".join(model_layer_snr(data, model) for model in data.layer_snr))


def model_layer_snr(data: ReportData, model: ModelLayerSNR) -> str:
    left_out = note(f"Not plotted, with no per-layer figures in the manifest: {', '.join(model.left_out)}."
                    ) if model.left_out else ""
    return (f"<h3>{safe(model.model)}</h3>"
            + plot_img(plots.layer_snr_png(model), f"per-layer SNR against fp32 of {model.model}")
            + cropped(model.layer_count, plots.MAX_LAYERS, "layers") + left_out
            + html_table(data.layer_snr_table(model)))


def sparse_inference_section(data: ReportData) -> str:
    verdicts = data.sparse_inference()
    if not verdicts:
        return ""
    items = "".join(f"<li><b>{safe(headline)}</b><ul>{''.join(f'<li>{safe(reason)}</li>' for reason in reasons)}"
                    f"</ul></li>" for headline, reasons in verdicts)
    return section("XNNPACK sparse inference", f"<ul>{items}</ul>")


def run_errors(data: ReportData) -> dict[int, str]:
    return {index: f"error: {run.error or 'none recorded'}" for index, run in enumerate(data.document.runs)
            if not run.ok}


def safe(value: Any) -> str:
    """Text for an element or an attribute value: control characters shown (see ``text``), then HTML-escaped."""
    return escape(one_line(value))


def section(title: str, content: str) -> str:
    return f"<section><h2>{safe(title)}</h2>\n{content}\n</section>"


def plot_img(image: bytes, alt: str) -> str:
    encoded = base64.b64encode(image).decode("ascii")
    return f'<img class="plot" alt="{safe(alt)}" src="data:image/png;base64,{encoded}">'


def cropped(total: int, shown: int, what: str) -> str:
    """What a plot left out to stay drawable, when it did."""
    if total <= shown:
        return ""
    return note(f"The plot shows the first {shown} of {total} {what}; the table lists them all.")


def note(text: str) -> str:
    return f'<p class="note">{safe(text)}</p>'


def facts_list(facts: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{safe(name)}</dt><dd>{safe(value)}</dd>" for name, value in facts)
    return f'<dl class="facts">{items}</dl>'


def html_table(headers_and_rows: Table, *, errors: Mapping[int, str] | None = None,
               container_id: str | None = None) -> str:
    """The table in a container that scrolls rather than overflow the page; a row with an error (by index) is
    marked failed and followed by the error, across the table."""
    headers, rows = headers_and_rows
    head = "".join(f"<th>{safe(header)}</th>" for header in headers)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(cell(value) for value in row)
        if not errors or index not in errors:
            body.append(f"<tr>{cells}</tr>")
            continue
        body.append(f'<tr class="failed">{cells}</tr>')
        body.append(f'<tr class="failed"><td class="message" colspan="{len(headers)}">{safe(errors[index])}</td></tr>')
    identity = f' id="{safe(container_id)}"' if container_id else ""
    return (f'<div class="scroll"{identity}><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table></div>")


def cell(value: Any) -> str:
    if isinstance(value, LongText):
        if not value.shortened:
            return f'<td class="message">{safe(value.full)}</td>'
        return (f'<td class="message"><details><summary>{safe(value.short)}</summary>{safe(value.full)}</details>'
                "</td>")
    text = "-" if value is None else str(value)
    return f'<td class="num">{safe(text)}</td>' if is_number(text) else f"<td>{safe(text)}</td>"
