"""What report and gate do with crafted results files, policies and histories, and what an image folder does with
an image that declares more pixels than it holds. Each attack goes through the real CLI on real files and checks
the outcome: one clear line and exit 2, or output that still parses and shows the hostile text as text (no tag,
link, table cell, XML error or terminal escape it could inject).
"""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import struct
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt  # installed with keras (through rich)

from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.latency import Latency
from edgeprune.cli import main
from edgeprune.errors import DataError, UsageError
from edgeprune.image_folder import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, load_image_folder, scan_image_folder
from edgeprune.reports import plots
from edgeprune.reports.report_data import LayerSparsity, ModelSparsity
from edgeprune.results.document import ResultsDocument, RunRecord
from edgeprune.history.location import parse_location
from edgeprune.history.store import History
from fixtures.models import convert

# Mathtext that does not parse, HTML and a comment, a Markdown link and image, a table cell and row break, a
# terminal colour, NUL, BEL, a vertical tab, a bidirectional override, a line separator, a backtick run and a lone
# surrogate (which no encoder writes).
HOSTILE = ("$\\frac{a}$ <script>alert(1)</script><img src=x onerror=alert(2)><!-- | cell\nrow\r\x1b[31mred\x00"
           "\x07\x0b\u202eevil\u2028`` [link](http://example.com) ![i](http://example.com/i.png) &amp; \ud800 end")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\ud800-\udfff]")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and not CONTROL.search(err), err
    return lines[0]


def run(variant: str, *, device: str = "pi4", model: str = "m", samples: list[float] | None = None,
        status: str = "ok", error: str | None = None) -> RunRecord:
    samples = samples or [1.0, 1.1, 1.2, 1.05]
    ok = status == "ok"
    return RunRecord(device=device, model=model, variant=variant, model_sha256=None, size_bytes=100_000, threads=1,
                     xnnpack=True, status=status, error=error,
                     latency_ms=Latency.from_values(samples) if ok else None,
                     samples_ms=samples if ok else None, accuracy=AccuracyFigures(top1=0.9, n=10) if ok else None)


def document(*runs: RunRecord, label: str | None = None, **fields: Any) -> dict[str, Any]:
    results = ResultsDocument.new({"devices": sorted({run.device for run in runs})}, label=label)
    results.runs = list(runs)
    for key, value in fields.items():
        setattr(results, key, value)
    return results.to_json()


def write_results(content: dict[str, Any] | str | bytes, path: str = "results.json") -> None:
    if isinstance(content, dict):
        content = json.dumps(content)  # ensure_ascii: a lone surrogate is written as its \\ud800 escape
    Path(path).write_bytes(content if isinstance(content, bytes) else content.encode())


def standard_document() -> dict[str, Any]:
    return document(run("fp32"), run("int8", samples=[2.0, 2.1, 2.2, 2.05]))


POLICY = "[defaults]\nmax_p50_ms = 1.5\n"


# --- results numbers: one line naming file, run and key ---------------------------------------------------------

def with_run_value(key: str, value: Any, run_index: int = 1) -> str:
    content = standard_document()
    target = content["runs"][run_index]
    for part in key.split(".")[:-1]:
        target = target[part]
    target[key.split(".")[-1]] = value
    return json.dumps(content)


BAD_NUMBERS = [
    (with_run_value("samples_ms", [1.0, float("nan")]), "is not valid JSON ('NaN' is not a JSON number)"),
    (with_run_value("latency_ms.p50", float("inf")), "is not valid JSON ('Infinity' is not a JSON number)"),
    (with_run_value("samples_ms", [1.0, 1.0]).replace("[1.0, 1.0]", "[1.0, 1e999]"),
     "is not valid JSON ('1e999' is not a finite number)"),
    (with_run_value("samples_ms", [1.0, -1.0, 2.0]), "results.json: runs[1].samples_ms[1] must be a number from "
                                                     "1e-06 to 1e+09, not -1.0"),
    (with_run_value("samples_ms", [0, 1.0]), "results.json: runs[1].samples_ms[0] must be a number from"),
    (with_run_value("latency_ms.p50", -3.5), "results.json: runs[1].latency_ms.p50 must be a number from 0 to "
                                             "1e+09, not -3.5"),
    (with_run_value("latency_ms.p90", 1e300, 0), "results.json: runs[0].latency_ms.p90 must be a number from 0"),
    (with_run_value("size_bytes", 10**400), "results.json: runs[1].size_bytes must be a number from 0 to "
                                            "9.0072e+15, not a number beyond float range"),
    (with_run_value("accuracy.top1", 1.5), "results.json: runs[1].accuracy.top1 must be a number from 0 to 1, "
                                           "not 1.5"),
    (with_run_value("peak_rss_mb", -1), "results.json: runs[1].peak_rss_mb must be a number from 0"),
    (with_run_value("threads", 0), "results.json: runs[1].threads must be a number from 1"),
    ("[" * 100_000, "results file 'results.json' is not valid JSON (nested too deeply)"),
    (b'{"kind": "edgeprune.results", "label": "\xff"}', "results file 'results.json' is not valid JSON (not UTF-8 "
                                                        "text (byte 40))"),
]


BAD_NUMBER_IDS = ["nan-sample", "inf-p50", "overflow-sample", "negative-sample", "zero-sample", "negative-p50",
                  "huge-p90", "huge-int-size", "top1-above-1", "negative-rss", "zero-threads", "deep-nesting",
                  "not-utf8"]


@pytest.mark.parametrize("content, message", BAD_NUMBERS, ids=BAD_NUMBER_IDS)
def test_report_and_gate_refuse_a_crafted_number_in_one_line(isolated_cwd, capsys, content, message):
    write_results(content)
    Path("policy.toml").write_text(POLICY)
    code, out, err = cli(capsys, "report", "results.json", "--markdown", "report.md")
    assert code == 2 and out == "" and message in one_error_line(err)
    assert not Path("report.html").exists() and not Path("report.md").exists()
    code, out, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--junit", "gate.xml")
    assert code == 2 and out == "" and message in one_error_line(err)
    assert not Path("gate.xml").exists()


# --- hostile names: every output still parses and shows them as text ------------------------------------------

class Elements(HTMLParser):
    """Start tags, text, and the cell count of each table row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.row_cells: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.row_cells.append(0)
        elif tag in ("td", "th"):
            self.row_cells[-1] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append("<!--")


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


REPORT_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "section", "dl", "dt", "dd", "p",
               "img", "div", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "b", "details", "summary"}
MARKDOWN_TAGS = {"h2", "h3", "p", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "strong", "em",
                 "details", "summary", "b"}


def rendered_markdown(markdown: str) -> Elements:
    """The Markdown as a GitHub-like renderer turns it into HTML (raw HTML let through, tables, strikethrough)."""
    return elements(MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown))


def hostile_document() -> dict[str, Any]:
    return document(run("fp32", device=HOSTILE, model=HOSTILE),
                    run("int8", device=HOSTILE, model=HOSTILE, samples=[2.0, 2.1, 2.2, 2.05]),
                    run("int8-sparse", device=HOSTILE, model=HOSTILE, status="failed", error=HOSTILE),
                    label=HOSTILE,
                    sparse_inference=[{"device": HOSTILE, "model": HOSTILE, "arch": HOSTILE, "applied": False,
                                       "reasons": [HOSTILE]}])


def assert_shown_as_text(page: Elements) -> None:
    text = "".join(page.text)
    assert "<script>alert(1)</script>" in text and "[link](http://example.com)" in text
    assert "\\x1b[31mred\\x00\\x07" in text and "\\u202eevil" in text and "\\ud800" in text
    assert not CONTROL.search(text)


def test_report_shows_hostile_names_as_text(isolated_cwd, capsys):
    write_results(hostile_document())
    code, out, err = cli(capsys, "report", "results.json", "--markdown", "report.md")
    assert (code, out, err) == (0, "wrote report.html\nwrote report.md\n", "")

    page = elements(Path("report.html").read_text(encoding="utf-8"))
    assert set(page.tags) <= REPORT_TAGS, set(page.tags) - REPORT_TAGS
    assert page.tags.count("img") == 2  # the latency and trade-off plots, drawn with the names as plain text
    assert_shown_as_text(page)

    markdown = Path("report.md").read_text(encoding="utf-8")
    assert not CONTROL.search(markdown)
    shown = rendered_markdown(markdown)
    assert set(shown.tags) <= MARKDOWN_TAGS, set(shown.tags) - MARKDOWN_TAGS  # no a, img, script, comment
    assert shown.tags.count("table") == 2 and len(set(shown.row_cells)) == 2  # runs: 15 cells, trade-off: 7
    assert_shown_as_text(shown)


def test_gate_junit_summary_and_terminal_show_hostile_names_as_text(isolated_cwd, capsys, monkeypatch):
    write_results(hostile_document())
    Path("policy.toml").write_text(POLICY)
    Path("summary.md").write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "summary.md")
    code, out, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--junit", "gate.xml")
    assert code == 1 and err == "" and out.count("gate FAILED: 2 of 3 checks failed") == 1
    assert not CONTROL.search(out)
    assert len([line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]) == 3

    cases = ET.parse("gate.xml").getroot().iter("testcase")
    names = [case.get("classname") for case in cases]
    assert len(names) == 3 and all("<script>alert(1)</script>" in name and "\\x1b[31mred" in name for name in names)

    summary = Path("summary.md").read_text(encoding="utf-8")
    assert summary.startswith("earlier step\n### ❌ edgeprune gate FAILED")
    shown = rendered_markdown(summary)
    assert set(shown.tags) <= MARKDOWN_TAGS and shown.row_cells == [7] * 4
    assert "<script>alert(1)</script>" in "".join(shown.text)


def test_a_crafted_source_name_cannot_leave_its_code_span(tmp_path):
    from edgeprune.reports.markdown import markdown_code

    for name in ["a`b", "``<img src=x>``", "`", " x ", "results ` <b>bold</b> `"]:
        shown = rendered_markdown(f"policy {markdown_code(name)}, after")
        assert shown.tags == ["p", "code"] and "".join(shown.text).strip() == f"policy {name}, after"


@pytest.mark.parametrize("name", ["$\\frac{a}$", "$x", "a$b$c$", "\\", "$$", "模型 ✓"])
def test_plots_draw_any_name_as_plain_text_without_warnings(name):
    layers = tuple(LayerSparsity(f"{name} {index}", name, 100, index) for index in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = plots.sparsity_png(ModelSparsity(name, layers))
    assert image.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.slow
def test_report_of_more_panels_than_a_figure_holds(isolated_cwd, capsys):
    """One run on each of 140 devices: a figure of them all would be taller than the 2^16 pixels Agg draws. The
    plots show 40 panels, the tables all 140."""
    write_results(document(*(run("fp32", device=f"board-{index:03d}") for index in range(140))))
    code, out, err = cli(capsys, "report", "results.json")
    assert (code, err) == (0, "")
    page = Path("report.html").read_text(encoding="utf-8")
    assert page.count("The plot shows the first 40 of 140 device and model panels") == 2
    assert "board-139" in page


# --- policies -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy, message", [
    ("x = " + "[" * 100_000, "policy.toml: invalid TOML: nested too deeply"),
    ("a = " + "{b = " * 50_000, "policy.toml: invalid TOML: nested too deeply"),
    (b"[defaults]\nmax_p50_ms = 1 # \xff\n", "policy file 'policy.toml' is not UTF-8 text (byte 28)"),
    ('[devices."pi4\\u001b[2J\\nx"]\nbogus = 1\n', 'policy.toml: [devices."pi4\\u001b[2J\\nx"] unknown key \'bogus\''),
    ('[devices."\\u202eevil\\u0000"]\nmax_p50_ms = 1\n',
     'policy.toml: [devices."\\u202eevil\\u0000"] selects no run'),
], ids=["deep-arrays", "deep-inline-tables", "not-utf8", "escape-in-table-name", "bidi-in-table-name"])
def test_a_crafted_policy_is_one_line(isolated_cwd, capsys, policy, message):
    write_results(standard_document())
    Path("policy.toml").write_bytes(policy if isinstance(policy, bytes) else policy.encode())
    code, out, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml")
    assert code == 2 and out == "" and message in one_error_line(err)


# --- baselines from the history ------------------------------------------------------------------------------

def record(folder: Path, label: str | None, p50: float) -> int:
    history = History(parse_location(str(folder), "--history"))
    try:
        results = ResultsDocument(created="2025-01-01T00:00:00+00:00", settings={}, label=label,
                                  runs=[run("fp32", samples=[p50 * factor for factor in (0.99, 1.0, 1.01) * 20])])
        bench_id = history.start_bench(results, None)
        for item in results.runs:
            history.add_run(bench_id, item)
        return bench_id
    finally:
        history.close()


@pytest.fixture
def three_benches(isolated_cwd) -> None:
    """Bench 1 'main' at 1 ms, bench 2 'nightly' at 0.5 ms, bench 3 labelled '2' at 1 ms; now: 1 ms."""
    assert [record(Path(".edgeprune"), label, p50) for label, p50 in [("main", 1.0), ("nightly", 0.5), ("2", 1.0)]] \
        == [1, 2, 3]
    write_results(document(run("fp32", samples=[factor for factor in (0.99, 1.0, 1.01) * 20])))
    Path("policy.toml").write_text("[defaults]\nmax_regression_pct = 10\n")


@pytest.mark.parametrize("baseline, code", [
    ("history:main", 0), ("history:label=main", 0), ("history:nightly", 1),
    ("history:id=2", 1), ("history:label=2", 0), ("history:id=3", 0), ("history:1", 0),  # id 1 is labelled main
])
def test_a_baseline_is_the_bench_it_names(three_benches, capsys, baseline, code):
    assert cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--baseline", baseline)[0] == code


def test_a_bare_reference_that_is_an_id_and_a_label_is_refused(three_benches, capsys):
    code, out, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--baseline", "history:2")
    line = one_error_line(err)
    assert code == 2 and out == ""
    assert ("--baseline history:2 is ambiguous in .edgeprune/history.sqlite: bench 2 (labelled 'nightly', created "
            "'2025-01-01T00:00:00+00:00') has id 2, and bench 3 (labelled '2'") in line
    assert "say --baseline history:id=2 or --baseline history:label=2" in line


@pytest.mark.parametrize("baseline, message", [
    ("history:id=9", "--baseline history:id=9: no bench 9 in .edgeprune/history.sqlite"),
    ("history:id=x", "--baseline history:id=x: 'x' is not a bench id"),
    ("history:id=" + "9" * 5000, "is not a bench id"),
    ("history:label=9", "--baseline history:label=9: no bench labelled '9'"),
    ("history:9", "no bench labelled '9' nor a bench 9 in .edgeprune/history.sqlite"),
    ("history:id=", "no label or id after 'history:id='"),
])
def test_a_baseline_that_names_no_bench_is_one_line(three_benches, capsys, baseline, message):
    code, _, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--baseline", baseline)
    assert code == 2 and message in one_error_line(err)


def test_a_crafted_history_row_is_one_line(isolated_cwd, capsys):
    record(Path(".edgeprune"), "main", 1.0)
    with sqlite3.connect(".edgeprune/history.sqlite") as db:
        (stored,) = db.execute("SELECT record FROM runs").fetchone()
        crafted = json.loads(stored)
        crafted["samples_ms"][3] = float("nan")
        db.execute("UPDATE runs SET record = ?", (json.dumps(crafted),))
    write_results(standard_document())
    Path("policy.toml").write_text("[defaults]\nmax_regression_pct = 10\n")
    code, _, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main")
    assert code == 2
    assert one_error_line(err) == ("edgeprune: error: .edgeprune/history.sqlite (bench 1): a stored row is not a JSON "
                                   "document ('NaN' is not a JSON number) (record the baseline again with edgeprune "
                                   "bench --label LABEL)")

    Path(".edgeprune/history.sqlite").write_bytes(b"not a database" * 100)
    code, _, err = cli(capsys, "gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main")
    assert code == 2 and "results history .edgeprune/history.sqlite cannot be opened: file is not a database" in one_error_line(err)


# --- image folders: the header is read before anything is decoded ----------------------------------------------

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def grey_png(width: int, height: int) -> bytes:
    """A real 8-bit grey PNG of zeros: 20000x20000 compresses to 389 KB."""
    compressor = zlib.compressobj(9)
    rows = 100
    block = bytes((1 + width) * rows)
    idat = b"".join(compressor.compress(block) for _ in range(height // rows))
    idat += compressor.compress(bytes((1 + width) * (height % rows))) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def gif_of_frames(width: int, height: int, frames: int) -> bytes:
    """A GIF header, then ``frames`` image descriptors of empty data (no colour tables)."""
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x00"
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + frame * frames + b"\x3b"


def jpeg_after_a_big_segment(width: int, height: int) -> bytes:
    app1 = b"\xff\xe1" + struct.pack(">H", 60_002) + bytes(60_000)
    return b"\xff\xd8" + app1 + b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, height, width, 3) + bytes(9)


@pytest.mark.parametrize("name, content, pixels", [
    ("huge.png", grey_png(8, 8)[:16] + struct.pack(">II", 20_000, 20_000) + grey_png(8, 8)[24:], "400,000,000"),
    ("frames.gif", gif_of_frames(1_000, 1_000, 41), "41,000,000"),
    ("wide.jpg", jpeg_after_a_big_segment(65_535, 65_535), "4,294,836,225"),
    ("top-down.bmp", b"BM" + bytes(16) + struct.pack("<ii", 10_000, -10_000) + bytes(64), "100,000,000"),
    ("a-png-really.gif", grey_png(8, 8)[:16] + struct.pack(">II", 7_000, 7_000) + grey_png(8, 8)[24:], "49,000,000"),
])
def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, name, content, pixels):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as raised:
        load_image_folder(scan_image_folder(tmp_path), (8, 8, 1), None)
    assert str(raised.value) == (f"'{tmp_path / name}' decodes to {pixels} pixels, more than the 40,000,000 an image "
                                 f"may have (shrink it, or allow more with {MAX_PIXELS_ENV}={pixels.replace(',', '')})")


def test_the_pixel_bound_is_set_by_the_environment(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(grey_png(8, 8))
    folder = scan_image_folder(tmp_path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "63")
    with pytest.raises(DataError, match="decodes to 64 pixels, more than the 63"):
        load_image_folder(folder, (8, 8, 1), None)
    monkeypatch.setenv(MAX_PIXELS_ENV, "64")
    assert load_image_folder(folder, (8, 8, 1), None).x.shape == (1, 8, 8, 1)
    for bad in ("lots", "-5", "0", "1e9", "9" * 30):
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(UsageError, match=f"\\${MAX_PIXELS_ENV} must be a whole number of pixels"):
            load_image_folder(folder, (8, 8, 1), None)


@pytest.mark.parametrize("content, reason", [
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "not a PNG, JPEG, BMP or GIF signature"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00", "its header is cut short"),
    (b"\xff\xd8\xff\xe1\x00\x10" + bytes(14), "its header is cut short"),
])
def test_an_image_whose_header_cannot_be_read_is_named(tmp_path, content, reason):
    (tmp_path / "a.png").write_bytes(content)
    with pytest.raises(DataError, match=re.escape(f"is not a readable PNG, JPEG, BMP or GIF image ({reason})")):
        load_image_folder(scan_image_folder(tmp_path), (8, 8, 1), None)


@pytest.fixture(scope="module")
def image_model(tmp_path_factory) -> Path:
    """A .tflite model that takes [8, 8, 1] images."""
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    path = tmp_path_factory.mktemp("image-model") / "images.tflite"
    path.write_bytes(convert(model))
    return path


ADDRESS_SPACE = 3 << 30  # enough for TensorFlow and a bench; decoding 20000x20000 to float32 fails beyond it
PEAK_RSS_BOUND_KB = 1_500_000


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = grey_png(20_000, 20_000)
    assert len(data) < 400_000
    return data


@pytest.mark.slow
@pytest.mark.parametrize("bound, message", [
    (None, f"'{{image}}' decodes to 400,000,000 pixels, more than the {DEFAULT_MAX_PIXELS:,} an image may have "
           f"(shrink it, or allow more with {MAX_PIXELS_ENV}=400000000)"),
    # Raised past what the machine (here, the capped address space) holds: refused as it fails, still one line.
    ("500000000", f"'{{image}}': decoding its 400,000,000 pixels needs more memory than there is (shrink it, or "
                  f"lower {MAX_PIXELS_ENV} to refuse such images up front)"),
])
def test_a_decompression_bomb_is_refused_with_bounded_memory(isolated_cwd, image_model, bomb, bound, message):
    """The 389 KB PNG of 20000x20000 that drove a host to 5.4 GB, benched through the real CLI in a process
    whose address space is capped (a decode fails loudly there instead of taking the machine)."""
    folder = isolated_cwd / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(grey_png(8, 8))
    (folder / "b.png").write_bytes(bomb)
    env = {key: value for key, value in os.environ.items() if key != MAX_PIXELS_ENV}
    env.update({MAX_PIXELS_ENV: bound} if bound else {})
    with open("stdout", "wb") as stdout, open("stderr", "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "edgeprune", "bench", str(image_model), "--data", str(folder), "--no-history",
             "-o", "results.json"], stdout=stdout, stderr=stderr, env=env,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE)))
        _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2
    assert one_error_line(Path("stderr").read_text()) == "edgeprune: error: " + message.format(image=folder / "b.png")
    assert usage.ru_maxrss < PEAK_RSS_BOUND_KB, usage.ru_maxrss
    assert not Path("results.json").exists()
