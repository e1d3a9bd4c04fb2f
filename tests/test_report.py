"""edgeprune report: the data behind the plots, self-contained HTML, Markdown, and the page in a real browser."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.latency import Latency
from edgeprune.cli import main
from edgeprune.fsutil import write_json_atomic
from edgeprune.reports.exports import export_of
from edgeprune.reports.html import render_html
from edgeprune.reports.markdown import render_markdown
from edgeprune.reports.report_data import collect, layers_of, pareto_flags, run_labels, tradeoff_points
from edgeprune.results.document import STATUS_FAILED, ResultsDocument, RunRecord
from edgeprune.results.manifest import Manifest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# EDGEPRUNE_UPDATE_DOCS=1 pytest -m slow tests/test_report.py   refreshes the README's picture from the browser test
DOCS_PICTURE = REPO / "docs" / "report.png"


def run_record(variant: str, device: str = "local", *, p50: float = 4.0, size_kb: float | None = 100,
               top1: float | None = 0.95, threads: int = 1, xnnpack: bool = True, seed: int = 0,
               status: str = "ok", manifest: str | None = "exp/manifest.json") -> RunRecord:
    samples = list(np.random.default_rng(seed).lognormal(np.log(p50), 0.08, 120))
    ok = status == "ok"
    return RunRecord(
        device=device, model="digits_cnn", variant=variant, model_sha256=None,
        size_bytes=None if size_kb is None else int(size_kb * 1024), threads=threads, xnnpack=xnnpack,
        status=status, error=None if ok else "runner crashed", latency_ms=Latency.from_values(samples)
        if ok else None, samples_ms=samples if ok else None, peak_rss_mb=50.0 if ok else None,
        accuracy=AccuracyFigures(top1=top1, top1_agreement=0.99) if ok and top1 is not None else None, export_manifest=manifest,
    )


def two_device_results() -> ResultsDocument:
    runs = []
    for device, scale in (("local", 1.0), ("pi4", 6.0)):
        runs += [run_record("fp32", device, p50=4.0 * scale, size_kb=400, top1=0.97, seed=1),
                 run_record("fp32-sparse", device, p50=2.6 * scale, size_kb=120, top1=0.968, seed=2),
                 run_record("int8", device, p50=1.5 * scale, size_kb=110, top1=0.962, seed=3),
                 run_record("fp16", device, p50=4.1 * scale, size_kb=200, top1=0.97, seed=4)]
    runs.append(run_record("int8-sparse", "pi4", status=STATUS_FAILED))
    return ResultsDocument(created="2025-01-01T00:00:00+00:00", settings={}, runs=runs, label="nightly",
                           sparse_inference=[{"device": "pi4", "arch": "aarch64", "model": "digits_cnn",
                                              "applied": False, "reasons": ["no 1x1 convolutions"]}])


def write_export_manifest(folder: Path) -> None:
    layers = [{"name": "conv1", "op": "Conv2D", "weights": 144, "zeros": 115, "params": 160},
              {"name": "pool", "op": "MaxPooling2D", "weights": 0, "zeros": 0, "params": 0},
              {"name": "dense", "op": "Dense", "weights": 32768, "zeros": 26214, "params": 32832}]
    Manifest(source={"path": "/models/digits_cnn.keras", "sha256": "0" * 64, "format": "keras", "stripped": False},
             input={"shape": [None, 28, 28, 1], "dtype": "float32"}, variants=[], created="", edgeprune_version="0.1.0",
             tensorflow_version=None,
             inspection={"layers": layers, "totals": {"params": 32992, "zeros": 26329},
                         "xnnpack_sparse": {"eligible": False, "reasons": []}}).write(folder)


# --- the data ----------------------------------------------------------------------------------------------

def test_pareto_flags_keep_every_point_nothing_beats():
    costs = [(1, 5), (2, 2), (3, 3), (5, 1), (1, 5), (6, 6)]
    assert pareto_flags(costs) == [True, True, False, True, True, False]


def test_pareto_front_is_per_device_and_uses_size_and_accuracy():
    points = tradeoff_points(two_device_results().runs, run_labels(two_device_results().runs))
    assert list(points) == [("local", "digits_cnn"), ("pi4", "digits_cnn")]
    optimal = {point.label for point in points["local", "digits_cnn"] if point.pareto}
    # fp16 is dominated by fp32 (faster, equally accurate) only when size does not count: fp16 is smaller.
    assert optimal == {"fp32", "fp32-sparse", "int8", "fp16"}
    assert [point.label for point in points["pi4", "digits_cnn"]] == ["fp32", "fp32-sparse", "int8", "fp16"]


def test_an_objective_some_runs_lack_is_left_out_of_the_front():
    runs = [run_record("fp32", p50=4.0, size_kb=400, top1=None), run_record("int8", p50=1.5, size_kb=100, top1=0.9),
            run_record("fp16", p50=4.5, size_kb=200, top1=0.99)]
    [points] = tradeoff_points(runs, run_labels(runs)).values()
    # Without top-1 for fp32 the front is on p50 and size only, where int8 beats both others.
    assert [point.pareto for point in points] == [False, True, False]


def test_run_labels_name_threads_and_mode_only_where_runs_differ():
    runs = [run_record("int8", threads=1), run_record("int8", threads=4), run_record("int8", threads=4, xnnpack=False)]
    assert list(run_labels(runs).values()) == ["int8 t1", "int8 t4", "int8 t4 no-xnnpack"]
    assert list(run_labels(runs[:1]).values()) == ["int8"]


def test_export_manifest_is_found_beside_the_results_and_its_absence_explained(tmp_path):
    write_export_manifest(tmp_path / "exp")
    found = layers_of(export_of("digits_cnn", "exp/manifest.json", tmp_path))
    assert [(layer.name, round(layer.sparsity, 2)) for layer in found.layers] == [("conv1", 0.8), ("dense", 0.8)]
    assert found.problem is None
    assert "not found" in layers_of(export_of("digits_cnn", "gone/manifest.json", tmp_path)).problem
    assert ".tflite file" in layers_of(export_of("digits_cnn", None, tmp_path)).problem


# --- HTML and Markdown -------------------------------------------------------------------------------------

class PageElements(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def page_elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = PageElements()
    parser.feed(html)
    return parser.tags


def test_html_is_self_contained_with_embedded_png_plots(tmp_path):
    write_export_manifest(tmp_path / "exp")
    html = render_html(collect(two_device_results(), tmp_path / "results.json"))
    tags = page_elements(html)
    assert not [tag for tag, _ in tags if tag in ("script", "link", "iframe", "object", "embed")]
    assert not [attrs for _, attrs in tags if any(value.startswith(("http:", "https:", "//"))
                                                  for name, value in attrs.items() if name in ("src", "href"))]
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert [image["alt"] for image in images] == [
        "latency distribution per variant, device and model", "p50 latency vs model size vs top-1",
        "per-layer sparsity of digits_cnn"]
    for image in images:
        prefix, _, encoded = image["src"].partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(encoded).startswith(PNG_SIGNATURE)
    # A failed run's error is on the row below it, across the table.
    assert '<td>FAILED</td></tr><tr class="failed"><td class="message" colspan="15">error: runner crashed</td>' in html
    assert '<tr class="failed"><td>pi4</td>' in html
    assert "no 1x1 convolutions" in html and "edgeprune report: nightly" in html


def test_markdown_has_the_tables_for_a_pull_request_comment(tmp_path):
    write_export_manifest(tmp_path / "exp")
    markdown = render_markdown(collect(two_device_results(), tmp_path / "results.json"))
    assert markdown.startswith("## edgeprune report: nightly\n")
    assert "| device | model | variant | threads |" in markdown
    assert "| local | digits_cnn | fp32-sparse | 2.6" in markdown
    assert "| pi4 | digits_cnn | int8-sparse | 1 | on | - |" in markdown and "FAILED: runner crashed" in markdown
    assert "| local | digits_cnn | fp32-sparse |" in markdown and "★" in markdown
    assert "<details><summary><b>digits_cnn</b>: 80.0% of 32,912 weights are zero, in 2 layers</summary>" in markdown
    assert "data:image" not in markdown


def test_cli_writes_html_and_markdown(isolated_cwd, capsys):
    write_export_manifest(Path("exp"))
    write_json_atomic(Path("results.json"), two_device_results().to_json())
    assert main(["report", "results.json", "--markdown", "out/report.md"]) == 0
    assert capsys.readouterr().out == "wrote report.html\nwrote out/report.md\n"
    assert Path("report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "### Trade-off" in Path("out/report.md").read_text(encoding="utf-8")


def test_cli_missing_results_is_a_usage_error(isolated_cwd, capsys):
    assert main(["report", "missing.json"]) == 2
    assert "results file 'missing.json' does not exist" in capsys.readouterr().err
    assert not Path("report.html").exists()


def test_only_the_report_imports_matplotlib():
    script = ("import sys; from edgeprune.cli import build_parser; build_parser(); import edgeprune.gate.summary, "
              "edgeprune.gate.checks; print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- in a real browser -------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Written into a copy of the page only: the report itself has no script.
LOAD_PROBE = ('<script>window.addEventListener("load", () => { for (const image of document.images) '
              'image.dataset.naturalWidth = image.naturalWidth; document.body.dataset.loaded = "yes"; });</script>')


def chromium(profile: Path, *arguments: str) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def require_chromium() -> None:
    """Skipped without chromium, except under CI, where the browser test must run."""
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is not installed (scripts/setup.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


PAGE_HEIGHT = 9000  # the whole report
FIRST_SCREEN = 3000  # what docs/report.png shows


@pytest.mark.slow
def test_report_of_a_real_bench_renders_its_plots_in_chromium(isolated_cwd, digits_export, mobilenet_export):
    from matplotlib.image import imread, imsave

    require_chromium()

    bench = ["bench", str(digits_export), str(mobilenet_export), "--data", str(MODELS / "digits_eval.npz"),
             "--data", str(MODELS / "mobilenet_digits_eval.npz"), "--runs", "30", "--rounds", "1", "--no-history",
             "-o", "results.json"]
    assert main(bench) in (0, 1)  # 1: a variant failed on this CPU, which the report must show too
    assert main(["report", "results.json", "-o", "report.html"]) == 0
    html = Path("report.html").read_text(encoding="utf-8")
    plots = sum(tag == "img" for tag, _ in page_elements(html))
    assert plots == 6  # latency, trade-off, and the per-layer sparsity and SNR of each model

    Path("probe.html").write_text(html.replace("</body>", LOAD_PROBE + "</body>"), encoding="utf-8")
    dom = chromium(isolated_cwd / "profile", "--virtual-time-budget=10000", "--dump-dom",
                   (isolated_cwd / "probe.html").as_uri())
    tags = page_elements(dom)
    assert ("body", {"data-loaded": "yes"}) in tags
    widths = [int(attrs["data-natural-width"]) for tag, attrs in tags if tag == "img"]
    assert len(widths) == plots and all(width > 500 for width in widths), widths

    # Tall enough for the whole page: all six plots, whatever tables sit between them.
    chromium(isolated_cwd / "profile", f"--window-size=1200,{PAGE_HEIGHT}",
             f"--screenshot={isolated_cwd / 'report.png'}", (isolated_cwd / "report.html").as_uri())
    pixels = (imread(isolated_cwd / "report.png")[..., :3] * 255).astype(np.int16)
    assert pixels.shape[:2] == (PAGE_HEIGHT, 1200)
    assert (pixels.min(axis=2) < 250).sum() > 0.05 * 1200 * FIRST_SCREEN  # not a blank page
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
    # Text and tables are grey; only the plots colour pixels (the same page without its images has none).
    chroma = pixels.max(axis=2) - pixels.min(axis=2)
    assert (chroma > 60).sum() > plots * 2000
    if os.environ.get("EDGEPRUNE_UPDATE_DOCS") == "1":
        imsave(DOCS_PICTURE, imread(isolated_cwd / "report.png")[:FIRST_SCREEN])
