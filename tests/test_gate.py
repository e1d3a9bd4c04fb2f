"""edgeprune gate: policy parsing, selection, every budget kind both ways, noise vs regression, outputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.latency import Latency
from edgeprune.cli import main
from edgeprune.errors import ConfigError, UsageError
from edgeprune.fsutil import write_json_atomic
from edgeprune.gate.checks import MEASURES, evaluate
from edgeprune.gate.junit import junit_xml
from edgeprune.gate.policy import BUDGET_KINDS, parse_policy
from edgeprune.gate.selection import GateInputs
from edgeprune.gate.summary import markdown_summary
from edgeprune.toml_lines import line_of, split_dotted_key
from edgeprune.results.document import STATUS_FAILED, ResultsDocument, RunRecord
from edgeprune.history.location import parse_location
from edgeprune.history.store import History

POLICY = Path("policy.toml")


def run_record(variant: str = "int8", device: str = "local", *, p50: float = 4.0, spread: float = 0.05,
               n: int = 200, seed: int = 0, samples: list[float] | None = None, size_kb: float | None = 100,
               top1: float | None = 0.95, rss: float | None = 40.0, status: str = "ok") -> RunRecord:
    if samples is None:
        samples = list(np.random.default_rng(seed).lognormal(np.log(p50), spread, n))
    ok = status == "ok"
    return RunRecord(
        device=device, model="digits_cnn", variant=variant, model_sha256=None,
        size_bytes=None if size_kb is None else int(size_kb * 1024), threads=1, xnnpack=True, status=status,
        error=None if ok else "runner crashed", latency_ms=Latency.from_values(samples) if ok else None,
        samples_ms=samples if ok else None, peak_rss_mb=rss if ok else None,
        accuracy=AccuracyFigures(top1=top1, top1_agreement=0.99) if ok and top1 is not None else None,
    )


def results(*runs: RunRecord) -> ResultsDocument:
    return ResultsDocument(created="2025-01-01T00:00:00+00:00", settings={}, runs=list(runs))


def standard_results(seed: int = 0) -> ResultsDocument:
    """fp32: 10 ms, 400 KB, 97%; int8: 4 ms, 100 KB, 95%."""
    return results(run_record("fp32", p50=10.0, size_kb=400, top1=0.97, rss=60.0, seed=seed),
                   run_record("int8", p50=4.0, size_kb=100, top1=0.95, rss=40.0, seed=seed + 1))


def gate(policy_text: str, current: ResultsDocument, baseline: ResultsDocument | None = None):
    inputs = GateInputs(parse_policy(policy_text, POLICY), current, "results.json", baseline,
                        None if baseline is None else "baseline.json")
    return evaluate(inputs)


def only_check(report, budget: str):
    [check] = [check for check in report.checks if check.budget == budget]
    return check


# --- every budget kind, passing and failing ----------------------------------------------------------------

# budget key -> (value that passes, value that fails) for the int8 run of standard_results, baseline below
BUDGET_CASES = {
    "max_size_kb": (120, 80),
    "max_p50_ms": (5.0, 3.0),
    "max_p90_ms": (5.0, 4.0),
    "max_peak_rss_mb": (50, 30),
    "min_top1": (0.9, 0.96),
    "max_top1_drop": (0.03, 0.01),  # 97% -> 95%
    "max_top1_drop_vs_baseline": (0.02, 0.005),  # 96% -> 95%
    "min_speedup_vs_fp32": (2.0, 3.0),  # 10 ms / 4 ms
    "max_regression_pct": (50, 10),  # 3 ms -> 4 ms, +33%
}


def baseline_for_budget_cases() -> ResultsDocument:
    return results(run_record("fp32", p50=10.0, size_kb=400, top1=0.97, seed=10),
                   run_record("int8", p50=3.0, size_kb=100, top1=0.96, seed=11))


def test_every_budget_kind_has_a_case_and_a_measure():
    assert set(BUDGET_CASES) == set(BUDGET_KINDS) == set(MEASURES)


@pytest.mark.parametrize("budget", BUDGET_CASES)
@pytest.mark.parametrize("passes", [True, False], ids=["passing", "failing"])
def test_budget_kind(budget, passes):
    value = BUDGET_CASES[budget][0 if passes else 1]
    report = gate(f"[variants.int8]\n{budget} = {value}\n", standard_results(), baseline_for_budget_cases())
    check = only_check(report, budget)
    assert check.passed is passes, check.note
    assert check.measured is not None
    assert report.passed is passes


def test_measured_equal_to_the_budget_passes():
    report = gate("[defaults]\nmax_p50_ms = 4\nmax_size_kb = 100\n", results(run_record(samples=[4.0] * 20)))
    assert report.passed
    assert [check.measured for check in report.checks] == [100.0, 4.0]


def test_check_reports_measured_value_budget_and_source():
    check = only_check(gate("[variants.int8]\nmax_p50_ms = 3\n", standard_results()), "max_p50_ms")
    assert check.subject == "local digits_cnn/int8 t1 xnnpack"
    assert check.measured_text.endswith(" ms") and check.limit_text == "<= 3 ms"
    assert check.source == "[variants.int8]"


def test_speedup_note_gives_the_confidence_interval():
    check = only_check(gate("[variants.int8]\nmin_speedup_vs_fp32 = 2\n", standard_results()), "min_speedup_vs_fp32")
    assert check.measured == pytest.approx(2.5, rel=0.03)
    assert "x [" in check.note and "(95% CI)" in check.note


# --- noise vs regression -----------------------------------------------------------------------------------

def test_regression_within_noise_does_not_fail_even_past_the_budget():
    """Small noisy samples 8% slower by the medians, but the interval reaches below +5%: not failed."""
    rng = np.random.default_rng(3)
    before = rng.lognormal(np.log(4.0), 0.3, 40)
    after = rng.lognormal(np.log(4.0), 0.3, 40)
    after *= 1.08 * np.median(before) / np.median(after)
    report = gate("[defaults]\nmax_regression_pct = 5\n", results(run_record(samples=list(after))),
                  results(run_record(samples=list(before))))
    check = only_check(report, "max_regression_pct")
    assert check.measured == pytest.approx(8.0)
    assert check.passed
    assert "could be noise" in check.note


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_same_distribution_never_fails_a_regression_check(seed):
    rng = np.random.default_rng(seed)
    before, after = (list(rng.lognormal(np.log(4.0), 0.15, 150)) for _ in range(2))
    report = gate("[defaults]\nmax_regression_pct = 5\n", results(run_record(samples=after)),
                  results(run_record(samples=before)))
    assert report.passed, report.checks[0].note


def test_true_regression_fails_and_says_it_is_not_noise():
    report = gate("[defaults]\nmax_regression_pct = 5\n", results(run_record(p50=5.0, seed=1)),
                  results(run_record(p50=4.0, seed=2)))
    check = only_check(report, "max_regression_pct")
    assert not check.passed
    assert check.measured == pytest.approx(25, abs=2)
    assert "not noise" in check.note


def test_speed_up_against_baseline_passes_as_within_budget():
    report = gate("[defaults]\nmax_regression_pct = 5\n", results(run_record(p50=3.0, seed=1)),
                  results(run_record(p50=4.0, seed=2)))
    check = only_check(report, "max_regression_pct")
    assert check.passed and check.measured < 0
    assert check.note.startswith("within budget")


# --- missing measurements fail, never pass -----------------------------------------------------------------

@pytest.mark.parametrize("budget, run, note", [
    ("min_top1 = 0.9", run_record(top1=None), "--data"),
    ("max_peak_rss_mb = 100", run_record(rss=None), "peak RSS"),
    ("max_size_kb = 100", run_record(size_kb=None), "size"),
    ("max_p50_ms = 100", run_record(status=STATUS_FAILED), "run failed: runner crashed"),
])
def test_missing_measurement_is_a_failure(budget, run, note):
    report = gate(f"[defaults]\n{budget}\n", results(run))
    [check] = report.checks
    assert not check.passed and check.measured is None and check.measured_text == "missing"
    assert note in check.note


def test_failed_fp32_reference_fails_the_comparison():
    current = results(run_record("fp32", status=STATUS_FAILED), run_record("int8"))
    check = only_check(gate("[variants.int8]\nmin_speedup_vs_fp32 = 1.5\n", current), "min_speedup_vs_fp32")
    assert not check.passed and "fp32 run failed" in check.note


def test_failed_run_fails_every_budget_that_selects_it():
    current = results(run_record("fp32"), run_record("int8", status=STATUS_FAILED))
    report = gate("[defaults]\nmax_p50_ms = 100\nmax_size_kb = 1000\n", current)
    assert [(check.check.run.variant, check.passed) for check in report.checks] == [
        ("fp32", True), ("fp32", True), ("int8", False), ("int8", False)]


# --- selection ----------------------------------------------------------------------------------------------

def test_most_specific_table_wins_per_key():
    policy = """
[defaults]
max_p50_ms = 5
max_size_kb = 1000
[variants.int8]
max_p50_ms = 3
[devices.pi4]
max_p50_ms = 40
[devices.pi4.variants.int8]
max_p50_ms = 2
"""
    current = results(*(run_record(variant, device) for device in ("local", "pi4") for variant in ("fp32", "int8")))
    report = gate(policy, current)
    budgets = {(check.check.run.device, check.check.run.variant): (check.check.limit, check.source)
               for check in report.checks if check.budget == "max_p50_ms"}
    assert budgets == {
        ("local", "fp32"): (5, "[defaults]"),
        ("local", "int8"): (3, "[variants.int8]"),
        ("pi4", "fp32"): (40, "[devices.pi4]"),
        ("pi4", "int8"): (2, "[devices.pi4.variants.int8]"),
    }
    assert sum(check.budget == "max_size_kb" for check in report.checks) == 4  # defaults reach every run


def test_fp32_relative_budgets_from_defaults_skip_fp32_itself():
    report = gate("[defaults]\nmin_speedup_vs_fp32 = 2\nmax_top1_drop = 0.05\n", standard_results())
    assert {check.check.run.variant for check in report.checks} == {"int8"}
    assert len(report.checks) == 2


@pytest.mark.parametrize("policy, current, baseline, message", [
    ("[variants.int9]\nmax_p50_ms = 3\n", standard_results(), None,
     "policy.toml:1: [variants.int9] selects no run in 'results.json' (its devices: local; variants: fp32, int8)"),
    ("[defaults]\nmax_p50_ms = 9\n[devices.pi4]\nmax_p50_ms = 3\n", standard_results(), None,
     "policy.toml:3: [devices.pi4] selects no run"),
    ("[devices.local.variants.fp16]\nmax_p50_ms = 3\n", standard_results(), None,
     "policy.toml:1: [devices.local.variants.fp16] selects no run"),
    ("[defaults]\nmax_regression_pct = 5\n", standard_results(), None,
     "policy.toml:1: [defaults] sets 'max_regression_pct', which compares with a baseline"),
    ("[defaults]\nmax_regression_pct = 5\n", standard_results(), results(run_record("fp32")),
     "baseline 'baseline.json' has no run local digits_cnn/int8 t1 xnnpack"),
    ("[variants.int8]\nmin_speedup_vs_fp32 = 2\n", results(run_record("int8")), None,
     "'results.json' has no fp32 run to compare local digits_cnn/int8 t1 xnnpack with"),
    ("[defaults]\nmax_p50_ms = 3\n", results(), None, "results 'results.json' hold no runs"),
])
def test_runs_the_policy_asks_for_but_inputs_lack_are_usage_errors(policy, current, baseline, message):
    with pytest.raises(UsageError) as raised:
        gate(policy, current, baseline)
    assert not isinstance(raised.value, ConfigError)
    assert message in str(raised.value)


# --- malformed policies -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("[defaults]\nmax_p50 = 3\n", "policy.toml:2: [defaults] unknown key 'max_p50' (did you mean 'max_p50_ms'?)"),
    ("[defaults]\nmax_p50_ms = 5\n\n[variants.int8]\nmax_size_kb = \"200\"\n",
     "policy.toml:5: [variants.int8] 'max_size_kb' must be a number, not a string"),
    ("[devices.pi4]\nmax_p90_ms = true\n", "policy.toml:2: [devices.pi4] 'max_p90_ms' must be a number, not a boolean"),
    ("[devices.pi4.variants.fp32-sparse]\n\nmin_speedup_vs_fp32 = [1.3]\n",
     "policy.toml:3: [devices.pi4.variants.fp32-sparse] 'min_speedup_vs_fp32' must be a number, not a list"),
    ("[defaults]\nmin_top1 = 97\n", "policy.toml:2: [defaults] 'min_top1' must be a fraction between 0 and 1"),
    ("[defaults]\nmax_regression_pct = -5\n", "'max_regression_pct' must be at least 0, not -5"),
    ("[defaults]\nmax_size_kb = 0\n", "'max_size_kb' must be greater than 0, not 0"),
    ("[budgets]\nmax_p50_ms = 3\n", "policy.toml:1: unknown top-level key 'budgets'"),
    ("[variants]\nint8 = 3\n", "policy.toml:2: [variants] 'int8' must be a table, not an integer"),
    ("devices = 3\n", "policy.toml:1: 'devices' must be a table of tables, not an integer"),
    ("[devices.pi4.variants.int8]\nmax_p50_ms = 3\nmin_topl = 0.9\n",
     "policy.toml:3: [devices.pi4.variants.int8] unknown key 'min_topl' (did you mean 'min_top1'?)"),
    ("[devices.pi4]\nvariant = 3\n", "unknown key 'variant' (did you mean 'variants'?)"),
    ("[variants.fp32]\nmin_speedup_vs_fp32 = 1.2\n",
     "policy.toml:2: [variants.fp32] 'min_speedup_vs_fp32' compares a variant with fp32"),
    ("[defaults]\nmax_p50_ms = \n", "policy.toml: invalid TOML: Invalid value (at line 2, column 14)"),
    ("# nothing yet\n[defaults]\n", "policy.toml: sets no budgets"),
])
def test_malformed_policy_names_file_line_table_and_key(text, message):
    with pytest.raises(ConfigError) as raised:
        parse_policy(text, POLICY)
    assert message in str(raised.value)


def test_quoted_and_dotted_keys_are_located():
    text = '[devices."pi 4"]\nvariants.int8.max_p50_ms = 3\n\n[devices."pi 4".variants.int8]\n"min_top1" = 1\n'
    assert split_dotted_key(' devices . "pi 4" ') == ("devices", "pi 4")
    assert line_of(text, ("devices", "pi 4")) == 1
    assert line_of(text, ("devices", "pi 4", "variants", "int8"), "max_p50_ms") == 2
    assert line_of(text, ("devices", "pi 4", "variants", "int8"), "min_top1") == 5
    assert line_of(text, ("devices", "pi4")) is None


# --- outputs ------------------------------------------------------------------------------------------------

def failing_report():
    return gate("[defaults]\nmax_p50_ms = 20\n[variants.int8]\nmax_size_kb = 80\n", standard_results())


def test_junit_xml_parses_with_one_testcase_per_check():
    report = failing_report()
    root = ET.fromstring(junit_xml(report, timestamp="2025-01-01T00:00:00+00:00"))
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(report.checks) == 3
    assert (suite.get("tests"), suite.get("failures"), root.get("failures")) == ("3", "1", "1")
    failed = [case for case in cases if case.find("failure") is not None]
    assert [(case.get("classname"), case.get("name")) for case in failed] == [
        ("local digits_cnn/int8 t1 xnnpack", "max_size_kb")]
    assert "measured 100 KB, budget <= 80 KB" in failed[0].find("failure").get("message")


def test_markdown_summary_lists_failures_first():
    summary = markdown_summary(failing_report())
    assert summary.startswith("### ❌ edgeprune gate FAILED: 1 of 3 checks failed")
    rows = [line for line in summary.splitlines() if line.startswith("| ❌") or line.startswith("| ✅")]
    assert rows[0].startswith("| ❌ | local digits_cnn/int8 t1 xnnpack | `max_size_kb` | 100 KB | <= 80 KB |")
    assert len(rows) == 3


# --- the command --------------------------------------------------------------------------------------------

def write_inputs(policy: str, current: ResultsDocument = None) -> None:
    Path("policy.toml").write_text(policy, encoding="utf-8")
    write_json_atomic(Path("results.json"), (current or standard_results()).to_json())


def test_cli_passes_with_exit_0_and_one_line_per_check(isolated_cwd, capsys):
    write_inputs("[defaults]\nmax_p50_ms = 20\n[variants.int8]\nmax_size_kb = 200\n")
    assert main(["gate", "results.json", "--policy", "policy.toml"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == 3 and all(line.startswith("PASS") for line in lines)
    assert "<= 200 KB" in out and "gate passed: 3 checks" in out


def test_cli_fails_with_exit_1_and_writes_junit_and_step_summary(isolated_cwd, capsys, monkeypatch):
    write_inputs("[defaults]\nmax_p50_ms = 5\n")
    Path("summary.md").write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(isolated_cwd / "summary.md"))
    assert main(["gate", "results.json", "--policy", "policy.toml", "--junit", "out/gate.xml"]) == 1
    captured = capsys.readouterr()
    assert "FAIL    local digits_cnn/fp32 t1 xnnpack" in captured.out
    assert captured.out.startswith("wrote out/gate.xml\n")
    assert captured.out.rstrip().splitlines()[-1] == "gate FAILED: 1 of 2 checks failed"
    assert "gate FAILED" not in captured.err
    assert ET.parse("out/gate.xml").getroot().get("failures") == "1"
    summary = Path("summary.md").read_text(encoding="utf-8")
    assert summary.startswith("earlier step\n### ❌ edgeprune gate FAILED")


@pytest.mark.parametrize("argv, message", [
    (["gate", "results.json", "--policy", "missing.toml"], "policy file 'missing.toml' does not exist"),
    (["gate", "missing.json", "--policy", "policy.toml"], "results file 'missing.json' does not exist"),
    (["gate", "results.json", "--policy", "policy.toml", "--baseline", "missing.json"],
     "results file 'missing.json' does not exist"),
    (["gate", "results.json", "--policy", "bad.toml"], "bad.toml:1: unknown top-level key 'budget'"),
    (["gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main"],
     "no results history at '.edgeprune/history.sqlite'"),
])
def test_cli_unusable_inputs_exit_2(isolated_cwd, capsys, argv, message):
    write_inputs("[defaults]\nmax_regression_pct = 5\n")
    Path("bad.toml").write_text("[budget]\nmax_p50_ms = 1\n", encoding="utf-8")
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not Path(".edgeprune").exists()  # a gate reads the history, never creates one


def record_in_history(folder: Path, label: str | None, document: ResultsDocument) -> None:
    history = History(parse_location(str(folder), "--history"))
    try:
        document.label = label
        bench_id = history.start_bench(document, None)
        for run in document.runs:
            history.add_run(bench_id, run)
    finally:
        history.close()


@pytest.mark.parametrize("history_args, folder", [([], ".edgeprune"), (["--history", "ci/history"], "ci/history")])
def test_cli_baseline_from_history_label(isolated_cwd, capsys, history_args, folder):
    record_in_history(Path(folder), "main", results(run_record("fp32", p50=10.0), run_record("int8", p50=2.0)))
    write_inputs("[defaults]\nmax_regression_pct = 5\n")
    argv = ["gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main", *history_args]
    assert main(argv) == 1  # int8: 2 ms in the history, 4 ms now
    out = capsys.readouterr().out
    assert "PASS    local digits_cnn/fp32" in out and "FAIL    local digits_cnn/int8" in out
    assert main([*argv[:5], "history:nightly", *history_args]) == 2
    assert "no bench labelled 'nightly'" in capsys.readouterr().err


def test_an_unknown_label_lists_the_labels_there_are(isolated_cwd, capsys):
    document = results(run_record("fp32", p50=10.0))
    for label in ["main", "v1.3", "main", "v1.4\x1b[31m", *(f"pr-{n}" for n in range(8))]:
        record_in_history(Path(".edgeprune"), label, document)
    write_inputs("[defaults]\nmax_regression_pct = 5\n")
    assert main(["gate", "results.json", "--policy", "policy.toml", "--baseline", "history:nightly"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("(labels there, newest first: pr-7, pr-6, pr-5, pr-4, pr-3, pr-2, pr-1, pr-0, ...)"), line

    Path(".edgeprune/history.sqlite").unlink()
    record_in_history(Path(".edgeprune"), None, document)
    record_in_history(Path(".edgeprune"), "v1.4\x1b[31m", document)
    record_in_history(Path(".edgeprune"), "main-job", document)
    assert main(["gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("(labels there, newest first: main-job, v1.4\\x1b[31m)"), line

    Path(".edgeprune/history.sqlite").unlink()
    record_in_history(Path(".edgeprune"), None, document)
    assert main(["gate", "results.json", "--policy", "policy.toml", "--baseline", "history:main"]) == 2
    assert "it has no labelled bench; name a run with edgeprune bench --label LABEL" in capsys.readouterr().err


def test_cli_notes_an_unused_baseline(isolated_cwd, capsys):
    write_inputs("[defaults]\nmax_p50_ms = 20\n")
    assert main(["gate", "results.json", "--policy", "policy.toml", "--baseline", "results.json"]) == 0
    assert "--baseline is unused" in capsys.readouterr().err
