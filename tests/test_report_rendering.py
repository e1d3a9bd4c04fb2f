"""The report as it reads: the variants the export rejected, trade-off labels that never cover one another, a top-1
colour scale that holds its data, and the runs table whole on a 1400 px page in a real browser."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgeprune.cli import main
from edgeprune.variants import VARIANTS
from edgeprune.fsutil import write_json_atomic
from edgeprune.reports import plots
from edgeprune.reports.markdown import markdown_text
from edgeprune.reports.report_data import ALL_SHIPPED, REASON_CHARS, ReportData, collect
from edgeprune.text import one_line
from edgeprune.results.document import ResultsDocument, read_results
from edgeprune.results.manifest import Manifest, VariantRecord, read_manifest
from test_report import MODELS, chromium, page_elements, require_chromium, run_record
from test_security_reports import CONTROL, HOSTILE, MARKDOWN_TAGS, REPORT_TAGS, elements, rendered_markdown

VIEWPORT_WIDTH = 1400


# --- a real bench of both samples ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_report(tmp_path_factory, digits_export, mobilenet_export) -> Path:
    """Both samples' exports benched on this machine and reported, with one variant the export rejected benched
    on its own: it fails to load, with the runtime's real (long) error. The folder of results.json, report.html
    and report.md."""
    folder = tmp_path_factory.mktemp("real-report")
    rejected = next(record for record in read_manifest(digits_export).variants if not record.valid)
    loose = folder / "digits_cnn_rejected" / f"{rejected.name}.tflite"
    loose.parent.mkdir()
    shutil.copyfile(digits_export / rejected.rejected_file, loose)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        patch.delenv("EDGEPRUNE_INVENTORY", raising=False)
        bench = ["bench", str(digits_export), str(mobilenet_export), str(loose.relative_to(folder)),
                 "--data", str(MODELS / "digits_eval.npz"), "--data", str(MODELS / "mobilenet_digits_eval.npz"),
                 "--runs", "30", "--rounds", "1", "--no-history", "-o", "results.json"]
        assert main(bench) == 1  # the rejected variant fails; every deliverable is measured
        assert main(["report", "results.json", "-o", "report.html", "--markdown", "report.md"]) == 0
    return folder


def real_data(folder: Path) -> ReportData:
    return collect(read_results(folder / "results.json"), folder / "results.json")


# --- rejected variants -----------------------------------------------------------------------------------------

class TableCells(HTMLParser):
    """The rows of each table whose container has an id: each cell's text, and its <summary>'s apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[dict[str, str]]]] = {}
        self.container: str | None = None
        self.part = "text"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div" and dict(attrs).get("id"):
            self.container = dict(attrs)["id"]
            self.tables[self.container] = []
        elif self.container and tag == "tr":
            self.tables[self.container].append([])
        elif self.container and tag in ("td", "th"):
            self.tables[self.container][-1].append({"text": "", "summary": ""})
        elif tag == "summary":
            self.part = "summary"

    def handle_endtag(self, tag: str) -> None:
        if tag == "summary":
            self.part = "text"
        elif tag == "table":
            self.container = None

    def handle_data(self, data: str) -> None:
        if self.container and self.tables[self.container] and self.tables[self.container][-1]:
            self.tables[self.container][-1][-1][self.part] += data


def html_tables(html: str) -> dict[str, list[list[dict[str, str]]]]:
    parser = TableCells()
    parser.feed(html)
    return parser.tables


@pytest.mark.slow
def test_variants_the_export_rejected_are_listed_with_their_reasons(real_report, digits_export, mobilenet_export):
    expected = [(model, record.name, record.error) for model, export in [("digits_cnn", digits_export),
                                                                          ("mobilenet_digits", mobilenet_export)]
                for record in read_manifest(export).variants if not record.valid]
    assert expected  # int8-dynamic-sparse of both and int8-sparse of the CNN, on this machine's XNNPACK

    [header, *rows] = html_tables((real_report / "report.html").read_text(encoding="utf-8"))["not-shipped"]
    assert [cell["text"] for cell in header] == ["model", "variant", "reason"]
    assert [(model["text"], variant["text"]) for model, variant, _ in rows] == [row[:2] for row in expected]
    for (_, _, reason), (_, _, error) in zip(rows, expected):
        short = reason["summary"]
        assert len(short) <= REASON_CHARS and short.endswith("...") and error.startswith(short[:-3])
        assert reason["text"] == one_line(error)  # the whole reason, when the <details> is opened

    markdown = (real_report / "report.md").read_text(encoding="utf-8")
    section = markdown[markdown.index("### Not shipped"):markdown.index("### Trade-off")]
    for (model, variant, error), (_, _, reason) in zip(expected, rows):
        assert f"| {model} | {variant} | {markdown_text(reason['summary'])} |" in section
        assert f"- **{model}** {variant}: {markdown_text(error)}" in section
    shown = rendered_markdown(section)
    assert shown.tags.count("details") == 1 and shown.tags.count("table") == 1
    # The loose file had no export, so there is nothing it could have rejected and nothing to say of it.
    assert "digits_cnn_rejected the export rejected" not in section


def write_manifest(folder: Path, rejected: dict[str, str]) -> None:
    """An export manifest of fp32, which passed, and the variants of ``rejected``, with their reasons."""
    def record(name: str, error: str | None) -> VariantRecord:
        return VariantRecord(name=name, quantization=VARIANTS[name].quantization, sparse=VARIANTS[name].sparse,
                             file=None if error else f"{name}.tflite", size_bytes=1000, gzip_bytes=900, sha256=None,
                             sparse_tensors=0, valid=error is None, error=error, validation=None,
                             conversion_seconds=1.0, rejected_file=f"rejected/{name}.tflite" if error else None)

    Manifest(source={"path": "/models/m.keras", "sha256": "0" * 64, "format": "keras", "stripped": False},
             input={"shape": [None, 4], "dtype": "float32"},
             variants=[record("fp32", None), *(record(name, error) for name, error in rejected.items())],
             created="", edgeprune_version="0.1.0", tensorflow_version=None).write(folder)


def test_a_crafted_reason_is_shown_as_text(isolated_cwd, capsys):
    write_manifest(Path("exp"), {"int8-sparse": HOSTILE})
    write_json_atomic(Path("results.json"), ResultsDocument(created="", settings={}, runs=[run_record("fp32")])
                      .to_json())
    assert main(["report", "results.json", "--markdown", "report.md"]) == 0
    capsys.readouterr()

    html = Path("report.html").read_text(encoding="utf-8")
    page = elements(html)
    assert set(page.tags) <= REPORT_TAGS | {"details", "summary"}, set(page.tags) - REPORT_TAGS
    assert_reason_shown_as_text(page)
    [_, [model, variant, reason]] = html_tables(html)["not-shipped"]
    assert (model["text"], variant["text"]) == ("digits_cnn", "int8-sparse") and len(reason["summary"]) <= 100

    shown = rendered_markdown(Path("report.md").read_text(encoding="utf-8"))
    assert set(shown.tags) <= MARKDOWN_TAGS, set(shown.tags) - MARKDOWN_TAGS
    assert_reason_shown_as_text(shown)


def assert_reason_shown_as_text(page) -> None:
    """The reason is the only hostile text in the report; the manifest reader has dropped its control characters."""
    text = "".join(page.text)
    assert "<script>alert(1)</script><img src=x onerror=alert(2)>" in text and "[link](http://example.com)" in text
    assert " end" in text and "\ud800" not in text and not CONTROL.search(text)  # a lone surrogate dropped too


def test_a_report_says_when_nothing_was_rejected_and_when_it_cannot_know(isolated_cwd, capsys):
    write_manifest(Path("exp"), {})
    runs = [run_record("fp32"), replace(run_record("fp32"), model="lost", export_manifest="gone/manifest.json"),
            replace(run_record("fp32"), model="loose", export_manifest=None)]
    write_json_atomic(Path("results.json"), ResultsDocument(created="", settings={}, runs=runs).to_json())
    assert main(["report", "results.json", "--markdown", "report.md"]) == 0
    capsys.readouterr()
    unknown = "Which variants of lost the export rejected is not known: export manifest gone/manifest.json not found"
    for report in ("report.html", "report.md"):
        text = Path(report).read_text(encoding="utf-8")
        assert ALL_SHIPPED in text and unknown in text and "not-shipped" not in text
        assert "variants of loose" not in text  # a loose .tflite had no export


# --- trade-off labels and colours ------------------------------------------------------------------------------

def intersection_area(a, b) -> float:
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def distance_to_box(x: float, y: float, box) -> float:
    return math.hypot(x - min(max(x, box.x0), box.x1), y - min(max(y, box.y0), box.y1))


def assert_labels_clear(data: ReportData) -> None:
    """On the drawn figure: each point's label is inside its axes and intersects no other label, no marker and
    not the legend, which covers no marker either (bounding boxes from matplotlib's renderer, after the figure was
    saved as the report saves it)."""
    figure = plots.tradeoff_figure(data)
    plots.png(figure)
    renderer = figure.canvas.get_renderer()
    panels = [axes for axes in figure.axes if axes.get_label() != "<colorbar>"]
    assert len(panels) == len(data.tradeoff)
    for axes, points in zip(panels, data.tradeoff.values()):
        labels = [text for text in axes.texts if text.get_text()]  # leader lines are annotations without text
        assert sorted(text.get_text() for text in labels) == sorted(point.label for point in points)
        boxes = [text.get_window_extent(renderer) for text in labels]
        frame = axes.get_window_extent(renderer)
        legend = axes.get_legend().get_window_extent(renderer)
        markers = [(x, y, (math.sqrt(size) / 2 + collection.get_linewidths()[0] / 2) * figure.dpi / 72)
                   for collection in axes.collections
                   for (x, y), size in zip(axes.transData.transform(collection.get_offsets()),
                                           np.broadcast_to(collection.get_sizes(), len(collection.get_offsets())))]
        assert all(distance_to_box(x, y, legend) >= radius for x, y, radius in markers)
        for index, box in enumerate(boxes):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            assert intersection_area(box, legend) == 0, labels[index].get_text()
            assert all(distance_to_box(x, y, box) >= radius for x, y, radius in markers), labels[index].get_text()
            for other, text in zip(boxes[index + 1:], labels[index + 1:]):
                assert intersection_area(box, other) == 0, (labels[index].get_text(), text.get_text())


def measured(variant: str, p50: float, size_kb: float, top1: float, device: str = "local", threads: int = 1):
    run = run_record(variant, device, size_kb=size_kb, top1=top1, threads=threads)
    return replace(run, latency_ms=replace(run.latency_ms, p50=p50))


# The mobilenet_digits runs of a main job (scripts/main-job.sh) on this machine (p50 ms, KB), whose report drew
# fp16-sparse's label over fp32-sparse's.
MAIN_JOB_MOBILENET = {"fp32": (0.1204, 537.2), "fp32-sparse": (0.1262, 114.1), "fp16": (0.1218, 277.3),
                      "fp16-sparse": (0.1225, 73.0), "int8-dynamic": (0.2138, 166.4), "int8": (0.08353, 181.1),
                      "int8-sparse": (0.07972, 97.2)}
ALL_VARIANTS = list(VARIANTS)


@pytest.mark.parametrize("runs", [
    [measured(variant, p50, size, 0.971) for variant, (p50, size) in MAIN_JOB_MOBILENET.items()],
    # Every variant at 1, 2 and 4 threads measured the same: 24 labels for one spot.
    [measured(variant, 1.0, 100.0, 0.971, threads=threads) for threads in (1, 2, 4) for variant in ALL_VARIANTS],
    # Neighbours a rounding apart, on two devices, with differing top-1 (a colour bar beside the axes).
    [measured(variant, 1.0 + 1e-5 * (index % 2), 100 + 0.01 * (index % 3), 0.95 + 0.01 * (index % 3), device)
     for device in ("local", "pi4") for index, variant in enumerate(ALL_VARIANTS)],
], ids=["main-job", "identical-points", "neighbours-two-devices"])
def test_tradeoff_labels_never_overlap(tmp_path, runs):
    assert_labels_clear(collect(ResultsDocument(created="", settings={}, runs=runs), tmp_path / "results.json"))


@pytest.mark.slow
def test_tradeoff_labels_of_a_real_bench_never_overlap(real_report):
    assert_labels_clear(real_data(real_report))


def colour_scales(data: ReportData) -> list[tuple[list[str], object]]:
    """Per panel: its legend's texts, and its colour bar (None without one)."""
    figure = plots.tradeoff_figure(data)
    panels = [axes for axes in figure.axes if axes.get_label() != "<colorbar>"]
    return [([text.get_text() for text in axes.get_legend().get_texts()], axes.collections[0].colorbar)
            for axes in panels]


def test_equal_top1_is_one_colour_said_in_the_legend(tmp_path):
    runs = [measured(variant, p50, size, 0.971) for variant, (p50, size) in MAIN_JOB_MOBILENET.items()]
    data = collect(ResultsDocument(created="", settings={}, runs=runs), tmp_path / "results.json")
    [(legend, colour_bar)] = colour_scales(data)
    assert colour_bar is None and legend == ["top-1 97.1% for every run", "Pareto-optimal (p50, size, top-1)"]
    figure = plots.tradeoff_figure(data)
    assert len(np.unique(figure.axes[0].collections[0].get_facecolors(), axis=0)) == 1


@pytest.mark.parametrize("top1s", [(0.969, 0.971, 0.9705), (0.5, 0.99, 0.75), (0.995, 1.0, 0.999)],
                         ids=["close", "far-apart", "at-100-percent"])
def test_top1_colour_bar_spans_the_values_and_names_both_ends(tmp_path, top1s):
    runs = [measured(variant, 1.0 + index, 100.0 * (index + 1), top1)
            for index, (variant, top1) in enumerate(zip(["fp32", "fp16", "int8"], top1s))]
    [(legend, colour_bar)] = colour_scales(collect(ResultsDocument(created="", settings={}, runs=runs),
                                                   tmp_path / "results.json"))
    percents = [100 * value for value in top1s]
    assert colour_bar.norm.vmin <= min(percents) and max(percents) <= colour_bar.norm.vmax <= 100
    assert colour_bar.norm.vmax - colour_bar.norm.vmin >= 1.0  # 0.2 points must not span the whole scale
    ticks = [label.get_text() for label in colour_bar.ax.get_yticklabels()]
    assert f"{min(percents):.1f}" in ticks and f"{max(percents):.1f}" in ticks
    assert legend == ["Pareto-optimal (p50, size, top-1)"]


# --- in a real browser -----------------------------------------------------------------------------------------

# Written into a copy of the page only: the report itself has no script.
WIDTH_PROBE = ('<script>window.addEventListener("load", () => { const page = document.documentElement; '
               'const widths = {page: [page.scrollWidth, page.clientWidth, 0, window.innerWidth]}; '
               'for (const box of document.querySelectorAll("div.scroll[id]")) widths[box.id] = [box.scrollWidth, '
               'box.clientWidth, box.querySelector("table").getBoundingClientRect().right, window.innerWidth]; '
               'document.body.dataset.widths = JSON.stringify(widths); });</script>')


@pytest.mark.slow
def test_runs_table_is_whole_on_a_1400px_page_in_chromium(real_report):
    from matplotlib.image import imread

    require_chromium()
    html = (real_report / "report.html").read_text(encoding="utf-8")
    probe = real_report / "probe.html"
    probe.write_text(html.replace("</body>", WIDTH_PROBE + "</body>"), encoding="utf-8")
    dom = chromium(real_report / "profile", f"--window-size={VIEWPORT_WIDTH},1000", "--virtual-time-budget=10000",
                   "--dump-dom", probe.as_uri())
    [widths] = [json.loads(attrs["data-widths"]) for tag, attrs in page_elements(dom) if tag == "body"]
    assert widths["page"][3] == VIEWPORT_WIDTH
    page_scroll, page_client = widths["page"][:2]
    assert page_scroll <= page_client, widths  # no horizontal scroll bar on the page
    for table in ("runs", "not-shipped"):
        scroll, client, right, viewport = widths[table]
        assert scroll <= client and right <= viewport, (table, widths)  # whole, peak RSS and status included

    screenshot = real_report / "report-1400.png"
    chromium(real_report / "profile", f"--window-size={VIEWPORT_WIDTH},2400", f"--screenshot={screenshot}",
             (real_report / "report.html").as_uri())
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2400, VIEWPORT_WIDTH) and (pixels[..., :3].min(axis=2) < 0.98).mean() > 0.05
