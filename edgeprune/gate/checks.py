"""Gate checks: measure each planned check on the results and judge it against its budget.

Pure functions over results documents. A run that failed, or lacks the measurement a budget needs, fails the
check: a gate never passes on what it could not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..bench.stats import median_ratio, speedup
from ..results.document import RunRecord
from .selection import GateInputs, PlannedCheck, describe_run, plan_checks

KB = 1024  # as edgeprune prints sizes
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Measurement:
    value: float | None  # None: nothing to measure, which fails the check
    note: str = ""
    # Where the value may lie given the noise; when set, only an interval wholly beyond the budget fails.
    interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class CheckResult:
    check: PlannedCheck
    measured: float | None
    passed: bool
    note: str

    @property
    def subject(self) -> str:
        return describe_run(self.check.run)

    @property
    def budget(self) -> str:
        return self.check.kind.key

    @property
    def measured_text(self) -> str:
        return "missing" if self.measured is None else self.check.kind.format(self.measured)

    @property
    def limit_text(self) -> str:
        return self.check.kind.format_limit(self.check.limit)

    @property
    def source(self) -> str:
        return self.check.rule.name


@dataclass(frozen=True)
class GateReport:
    inputs: GateInputs
    checks: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    @property
    def passed(self) -> bool:
        return not self.failures


def evaluate(inputs: GateInputs) -> GateReport:
    return GateReport(inputs, [judge(check, measure(check)) for check in plan_checks(inputs)])


def judge(check: PlannedCheck, measurement: Measurement) -> CheckResult:
    kind, limit = check.kind, check.limit
    if measurement.value is None:
        return CheckResult(check, None, False, measurement.note)
    if measurement.interval is None:
        return CheckResult(check, measurement.value, kind.allows(measurement.value, limit), measurement.note)
    low, high = measurement.interval
    best, worst = (low, high) if kind.bound == "max" else (high, low)
    interval = f"{CONFIDENCE:.0%} CI [{kind.format(low)}, {kind.format(high)}]"
    if not kind.allows(best, limit):
        verdict = f"real, not noise: the {interval} lies wholly beyond the budget"
    elif kind.allows(worst, limit):
        verdict = f"within budget: {interval}"
    else:
        verdict = f"could be noise: the {interval} straddles the budget, so not failed"
    return CheckResult(check, measurement.value, kind.allows(best, limit), verdict)


def measure(check: PlannedCheck) -> Measurement:
    if not check.run.ok:
        return Measurement(None, f"run failed: {check.run.error or 'no error recorded'}")
    return MEASURES[check.kind.key](check.run, check.reference)


def size_kb(run: RunRecord, _reference: RunRecord | None) -> Measurement:
    if run.size_bytes is None:
        return Measurement(None, "the results hold no model size for this run")
    return Measurement(run.size_bytes / KB)


def latency_percentile(percentile: str) -> Callable[[RunRecord, RunRecord | None], Measurement]:
    def measure_percentile(run: RunRecord, _reference: RunRecord | None) -> Measurement:
        if run.latency_ms is None:
            return Measurement(None, "the results hold no latency")
        return Measurement(getattr(run.latency_ms, percentile))
    return measure_percentile


def peak_rss_mb(run: RunRecord, _reference: RunRecord | None) -> Measurement:
    if run.peak_rss_mb is None:
        return Measurement(None, "the device reported no peak RSS")
    return Measurement(run.peak_rss_mb)


def top1(run: RunRecord, _reference: RunRecord | None) -> Measurement:
    value = top1_of(run)
    return Measurement(value) if value is not None else Measurement(None, NO_TOP1)


def top1_drop(reference_name: str) -> Callable[[RunRecord, RunRecord | None], Measurement]:
    def measure_drop(run: RunRecord, reference: RunRecord | None) -> Measurement:
        assert reference is not None, "selection plans a reference for every comparing budget"
        if not reference.ok:
            return Measurement(None, f"the {reference_name} run failed: {reference.error}")
        current, before = top1_of(run), top1_of(reference)
        if current is None or before is None:
            return Measurement(None, f"{NO_TOP1} ({'this' if current is None else f'the {reference_name}'} run)")
        return Measurement(before - current, f"{before:.2%} -> {current:.2%}")
    return measure_drop


def speedup_vs_fp32(run: RunRecord, fp32: RunRecord | None) -> Measurement:
    assert fp32 is not None, "selection plans the fp32 run for every speed-up budget"
    if problem := samples_problem(run, fp32, "fp32"):
        return Measurement(None, problem)
    estimate = speedup(fp32.samples_ms, run.samples_ms, confidence=CONFIDENCE)
    # Judged on the ratio of medians: a claimed speed-up needs the evidence, noise does not excuse a miss.
    return Measurement(estimate.ratio, f"{estimate} ({CONFIDENCE:.0%} CI)")


def regression_pct(run: RunRecord, baseline: RunRecord | None) -> Measurement:
    assert baseline is not None, "selection plans the baseline run for every regression budget"
    if problem := samples_problem(run, baseline, "baseline"):
        return Measurement(None, problem)
    estimate = median_ratio(run.samples_ms, baseline.samples_ms, confidence=CONFIDENCE)
    return Measurement(percent_slower(estimate.ratio),
                       interval=(percent_slower(estimate.low), percent_slower(estimate.high)))


def samples_problem(run: RunRecord, reference: RunRecord, reference_name: str) -> str | None:
    if not reference.ok:
        return f"the {reference_name} run failed: {reference.error}"
    if not run.samples_ms:
        return "the results hold no latency samples for this run"
    if not reference.samples_ms:
        return f"the {reference_name} run has no latency samples"
    return None


def percent_slower(median_ratio_to_before: float) -> float:
    return (median_ratio_to_before - 1.0) * 100.0


def top1_of(run: RunRecord) -> float | None:
    return run.accuracy.top1 if run.accuracy else None


NO_TOP1 = "no top-1 accuracy: bench with --data whose .npz has labels y"
MEASURES: dict[str, Callable[[RunRecord, RunRecord | None], Measurement]] = {
    "max_size_kb": size_kb,
    "max_p50_ms": latency_percentile("p50"),
    "max_p90_ms": latency_percentile("p90"),
    "max_peak_rss_mb": peak_rss_mb,
    "min_top1": top1,
    "max_top1_drop": top1_drop("fp32"),
    "max_top1_drop_vs_baseline": top1_drop("baseline"),
    "min_speedup_vs_fp32": speedup_vs_fp32,
    "max_regression_pct": regression_pct,
}
