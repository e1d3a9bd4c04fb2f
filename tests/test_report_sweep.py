"""edgeprune report of a sweep's results: the Pareto front of latency against top-1, the plots and tables."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from edgeprune.cli import main
from edgeprune.fsutil import write_json_atomic
from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.document import ResultsDocument, RunRecord
from edgeprune.results.latency import Latency
from edgeprune.results.sweep import Recommendation, SweepDocument, SweepPoint
from edgeprune.reports import sweep_plots
from edgeprune.reports.sweep_view import SweepView, pareto_front

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REASON = "fastest <b>within</b> 1 point & smallest"


def point(variant: str, sparsity: float, p50: float | None, top1: float | None, *, device: str = "local",
          threads: int | None = 1, xnnpack: bool = True, status: str = "ok") -> SweepPoint:
    return SweepPoint(sparsity=sparsity, achieved_sparsity=sparsity, variant=variant, device=device,
                      threads=threads, xnnpack=xnnpack, file=f"exports/s{sparsity:g}/{variant}.tflite",
                      size_bytes=100_000, p50_ms=p50, top1=top1,
                      top1_drop=None if top1 is None else round((0.98 - top1) * 100, 4), status=status,
                      error=None if status == "ok" else "runner crashed")


def settings(max_top1_drop: float = 1.0) -> dict:
    sha = "0" * 64
    return {"model": "m.keras", "model_sha256": sha, "data": "d.npz", "data_sha256": sha, "eval": "e.npz",
            "eval_sha256": sha, "targets": [0.5, 0.8], "prune": {}, "devices": ["local"],
            "max_top1_drop": max_top1_drop}


def sweep_points() -> list[SweepPoint]:
    return [point("fp32", 0.0, 4.0, 0.98), point("int8", 0.0, 1.5, 0.975),
            point("fp32", 0.5, 3.9, 0.976), point("int8", 0.5, 1.4, 0.97),
            point("fp32", 0.8, 3.0, 0.95), point("int8", 0.8, 1.2, 0.94),
            point("int8", 0.9, None, None, status="failed")]


def sweep_document(points: list[SweepPoint] | None = None, reason: str = REASON) -> SweepDocument:
    points = sweep_points() if points is None else points
    recommended = next((p for p in points if p.variant == "int8" and p.sparsity == 0.5 and p.status == "ok"), None)
    return SweepDocument(created="2025-01-01T00:00:00+00:00", settings=settings(), points=points,
                         recommendation=Recommendation(recommended, reason))


# --- the Pareto front --------------------------------------------------------------------------------------

def test_pareto_front_keeps_the_points_nothing_beats_fastest_first():
    fast = point("int8", 0.8, 1.0, 0.90)
    balanced = point("int8", 0.0, 2.0, 0.95)
    accurate = point("fp32", 0.0, 4.0, 0.98)
    slower_and_worse = point("fp16", 0.0, 3.0, 0.94)
    same_speed_less_accurate = point("fp16", 0.5, 2.0, 0.93)
    same_accuracy_slower = point("fp32", 0.5, 5.0, 0.98)
    twin = point("int8-dynamic", 0.0, 2.0, 0.95)  # neither is better in anything: both stay
    points = [accurate, slower_and_worse, fast, same_speed_less_accurate, balanced, same_accuracy_slower, twin]
    assert pareto_front(points) == [fast, balanced, twin, accurate]


def test_pareto_front_leaves_out_failed_and_unmeasured_points():
    failed_but_fast = point("int8", 0.9, 0.1, 0.99, status="failed")
    no_top1 = point("fp16", 0.0, 0.5, None)
    no_latency = point("fp16", 0.5, None, 0.99)
    measured = point("fp32", 0.0, 4.0, 0.9)
    assert pareto_front([failed_but_fast, no_top1, no_latency, measured]) == [measured]
    assert pareto_front([no_top1]) == []


def test_front_floor_and_lines_are_per_device_and_configuration():
    points = [point("fp32", 0.0, 4.0, 0.98), point("fp32", 0.5, 3.0, 0.97),
              point("fp32", 0.0, 40.0, 0.96, device="pi4"), point("fp32", 0.5, 20.0, 0.95, device="pi4"),
              point("fp32", 0.0, 30.0, 0.96, device="pi4", threads=4)]
    view = SweepView(SweepDocument(created="", settings=settings(2.0), points=points))
    # The pi4's 30 ms beats nothing on local: latencies of different devices do not compete.
    assert view.front("local") == [points[1], points[0]]
    assert view.front("pi4") == [points[3], points[4]]
    assert [round(floor, 6) for floor in view.top1_floors("local")] == [0.96]
    assert [round(floor, 6) for floor in view.top1_floors("pi4")] == [0.94]
    assert [(line.label, len(line.points)) for line in view.series()] == [
        ("fp32 t1 on local", 2), ("fp32 t1 on pi4", 2), ("fp32 t4 on pi4", 1)]
    headers, rows = view.pareto_table()
    assert headers[:3] == ["device", "sparsity", "variant"]
    assert [row[:3] for row in rows] == [["local", "0.5", "fp32"], ["local", "0", "fp32"], ["pi4", "0.5", "fp32"],
                                         ["pi4", "0", "fp32"]]
    # Without a number for the allowed drop, no floor is drawn rather than a guessed one.
    assert SweepView(SweepDocument(created="", settings={}, points=points)).top1_floors("local") == []


def test_sweep_plots_draw_hostile_names_and_wide_latency_ranges():
    points = [point("$\\frac{a}$", 0.0, 0.01, 0.98, device="_hidden"), point("$\\frac{a}$", 0.5, 5.0, 0.97,
                                                                            device="_hidden"),
              point("_" + "x" * 300, 0.5, 50.0, 0.99, device="_hidden")]
    view = SweepView(SweepDocument(created="", settings=settings(), points=points,
                                   recommendation=Recommendation(points[0], "r")))
    assert sweep_plots.top1_vs_sparsity_png(view).startswith(PNG_SIGNATURE)
    assert sweep_plots.top1_vs_latency_png(view).startswith(PNG_SIGNATURE)
    figure = sweep_plots.top1_vs_latency_figure(view)
    figure.canvas.draw()
    axes = figure.axes[0]
    # 0.01 to 50 ms: a log axis, labelled in plain numbers (mathtext is off, '$10^{0}$' would show as it is).
    assert axes.get_xscale() == "log"
    labels = [text.get_text() for minor in (False, True) for text in axes.get_xticklabels(minor=minor)]
    assert "1" in labels and not [text for text in labels if "$" in text or "e-" in text]
    # Names as written: no mathtext, and one starting with '_' (which matplotlib hides by default) shown, shortened.
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "$\\frac{a}$" in legend and "_" + "x" * 36 + "..." in legend
    empty = SweepView(SweepDocument(created="", settings=settings(),
                                    points=[point("int8", 0.0, None, None, status="failed")]))
    assert sweep_plots.top1_vs_sparsity_png(empty) is None and sweep_plots.top1_vs_latency_png(empty) is None


# --- the report --------------------------------------------------------------------------------------------

def run_record(variant: str, p50: float, top1: float) -> RunRecord:
    samples = [p50 * factor for factor in (0.9, 1.0, 1.1)]
    return RunRecord(device="local", model="m-s0", variant=variant, model_sha256=None, size_bytes=100_000,
                     threads=1, xnnpack=True, status="ok", error=None, latency_ms=Latency.from_values(samples),
                     samples_ms=samples, peak_rss_mb=None, accuracy=AccuracyFigures(top1=top1),
                     export_manifest=None)


def write_sweep_folder(folder: Path, *, with_sweep: bool = True) -> Path:
    results = folder / "results.json"
    document = ResultsDocument(created="2025-01-01T00:00:00+00:00", settings={},
                               runs=[run_record("fp32", 4.0, 0.98), run_record("int8", 1.5, 0.975)])
    write_json_atomic(results, document.to_json())
    if with_sweep:
        sweep_document().write(folder)
    return results


def sections(html: str) -> dict[str, str]:
    return dict(re.findall(r"<section><h2>(.*?)</h2>\n(.*?)\n</section>", html, re.S))


def test_report_draws_the_sweep_beside_the_results(tmp_path, capsys):
    results = write_sweep_folder(tmp_path)
    html_path, markdown_path = tmp_path / "report.html", tmp_path / "report.md"
    assert main(["report", str(results), "-o", str(html_path), "--markdown", str(markdown_path)]) == 0
    sweep = sections(html_path.read_text(encoding="utf-8"))["Sweep"]
    images = re.findall(r'<img class="plot" alt="[^"]*" src="data:image/png;base64,([^"]+)">', sweep)
    assert len(images) == 2 and all(base64.b64decode(image).startswith(PNG_SIGNATURE) for image in images)
    assert "Recommendation: fastest &lt;b&gt;within&lt;/b&gt; 1 point &amp; smallest" in sweep
    assert REASON not in sweep
    assert '<div class="scroll" id="sweep-pareto">' in sweep and "<td>★</td>" in sweep
    markdown = markdown_path.read_text(encoding="utf-8")
    assert "### Sweep" in markdown and "smallest" in markdown
    assert "| device | sparsity | variant | threads | xnnpack | p50 ms | size | top-1 | drop (pts) | recommended |" \
        in markdown
    assert "| local | 0.5 | int8 | 1 | on | 1.4 | 97.7 KB | 97.0% | +1.00 | ★ |" in markdown
    # Fastest first; fp32 at 0.8 is slower and less accurate than int8 at 0, the failed point was not measured.
    front = [line.split(" | ")[1:3] for line in markdown.splitlines() if line.startswith("| local | ")]
    assert front[:5] == [["0.8", "int8"], ["0.5", "int8"], ["0", "int8"], ["0.5", "fp32"], ["0", "fp32"]]
    assert ["0.8", "fp32"] not in front[:5]


def test_report_without_a_sweep_has_no_sweep_section(tmp_path):
    results = write_sweep_folder(tmp_path, with_sweep=False)
    html_path, markdown_path = tmp_path / "report.html", tmp_path / "report.md"
    assert main(["report", str(results), "-o", str(html_path), "--markdown", str(markdown_path)]) == 0
    assert "Sweep" not in sections(html_path.read_text(encoding="utf-8"))
    assert "### Sweep" not in markdown_path.read_text(encoding="utf-8")


def test_a_sweep_without_measured_points_says_so(tmp_path):
    results = write_sweep_folder(tmp_path, with_sweep=False)
    sweep_document([point("int8", 0.0, None, None, status="failed")], reason="every run failed").write(tmp_path)
    html_path = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(html_path)]) == 0
    sweep = sections(html_path.read_text(encoding="utf-8"))["Sweep"]
    assert "No recommendation: every run failed" in sweep and "nothing to plot" in sweep and "<img" not in sweep


def test_a_broken_sweep_json_is_a_one_line_usage_error(tmp_path, capsys):
    results = write_sweep_folder(tmp_path)
    sweep_path = tmp_path / "sweep.json"
    document = json.loads(sweep_path.read_text(encoding="utf-8"))
    for broken in ("{not json", json.dumps({**document, "points": "none"}), json.dumps({**document, "kind": "x"})):
        sweep_path.write_text(broken, encoding="utf-8")
        assert main(["report", str(results), "-o", str(tmp_path / "report.html")]) == 2
        error = capsys.readouterr().err
        assert "sweep.json" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1, error
        assert not (tmp_path / "report.html").exists()


def test_keys_a_later_edgeprune_adds_are_left_out(tmp_path):
    results = write_sweep_folder(tmp_path)
    sweep_path = tmp_path / "sweep.json"
    document = json.loads(sweep_path.read_text(encoding="utf-8"))
    document["points"][0]["energy_mj"] = 1.5
    sweep_path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["report", str(results), "-o", str(tmp_path / "report.html")]) == 0
