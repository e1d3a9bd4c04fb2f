"""Which budgets apply to which runs, and which run each check compares with.

Inputs that cannot answer what the policy asks are a usage error (exit 2), not a failed check: a table that
selects no run, a budget against a baseline without one, an fp32 or baseline run that is not there at all.
A run that is there but failed, or lacks the measurement, is a failing check (see ``checks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..variants import REFERENCE_VARIANT
from ..errors import UsageError
from ..text import one_line
from ..results.document import ResultsDocument, RunRecord
from .policy import BUDGET_KINDS, BudgetKind, Policy, Rule


@dataclass(frozen=True)
class GateInputs:
    policy: Policy
    results: ResultsDocument
    results_name: str
    baseline: ResultsDocument | None = None
    baseline_name: str | None = None


@dataclass(frozen=True)
class PlannedCheck:
    run: RunRecord
    kind: BudgetKind
    limit: float
    rule: Rule
    reference: RunRecord | None = None  # the fp32 or baseline run, for budgets that compare


def describe_run(run: RunRecord) -> str:
    """``pi4 digits_cnn/int8 t4 xnnpack``: the run's whole identity, short enough for a table column (and on one
    line whatever the results file names it)."""
    threads = f" t{run.threads}" if run.threads is not None else ""
    return one_line(f"{run.device} {run.model}/{run.variant}{threads} {'xnnpack' if run.xnnpack else 'no-xnnpack'}")


def plan_checks(inputs: GateInputs) -> list[PlannedCheck]:
    if not inputs.results.runs:
        raise UsageError(f"results '{inputs.results_name}' hold no runs", hint="run edgeprune bench first")
    problems = unmatched_rules(inputs) + missing_baseline(inputs)
    planned: list[PlannedCheck] = []
    for run in inputs.results.runs:
        for kind, rule in resolve_budgets(inputs.policy, run):
            reference = reference_run(inputs, run, kind)
            # Without any baseline, missing_baseline has already said so once, not once per run.
            needs_reference = kind.reference == "fp32" or (kind.reference == "baseline" and inputs.baseline is not None)
            if needs_reference and reference is None:
                problems.append(missing_reference(inputs, run, kind, rule))
            planned.append(PlannedCheck(run, kind, rule.budgets[kind.key], rule, reference))
    if problems:
        more = f" (and {len(problems) - 1} more like it)" if len(problems) > 1 else ""
        raise UsageError(problems[0] + more)
    return planned


def resolve_budgets(policy: Policy, run: RunRecord) -> list[tuple[BudgetKind, Rule]]:
    """Each budget key that applies to ``run``, with the most specific rule setting it."""
    chosen: dict[str, Rule] = {}
    for rule in sorted((rule for rule in policy.rules if rule.applies_to(run)), key=lambda rule: rule.specificity):
        chosen.update({key: rule for key in rule.budgets})
    return [(kind, chosen[key]) for key, kind in BUDGET_KINDS.items()
            if key in chosen and not (kind.reference == "fp32" and run.variant == REFERENCE_VARIANT)]


def reference_run(inputs: GateInputs, run: RunRecord, kind: BudgetKind) -> RunRecord | None:
    if kind.reference == "fp32":
        return inputs.results.find(run.device, run.model, REFERENCE_VARIANT, run.threads, run.xnnpack)
    if kind.reference == "baseline" and inputs.baseline is not None:
        return inputs.baseline.find(*run.key)
    return None


def unmatched_rules(inputs: GateInputs) -> list[str]:
    runs = inputs.results.runs
    problems = []
    for rule in inputs.policy.rules:
        if (rule.device, rule.variant) != (None, None) and not any(rule.applies_to(run) for run in runs):
            devices = ", ".join(sorted({one_line(run.device) for run in runs}))
            variants = ", ".join(sorted({one_line(run.variant) for run in runs}))
            problems.append(f"{inputs.policy.where(rule)} selects no run in '{inputs.results_name}' "
                            f"(its devices: {devices}; variants: {variants})")
    return problems


def missing_baseline(inputs: GateInputs) -> list[str]:
    if inputs.baseline is not None:
        return []
    return [f"{inputs.policy.where(rule)} sets '{key}', which compares with a baseline: pass --baseline FILE "
            f"or --baseline history:LABEL"
            for rule in inputs.policy.rules for key in rule.budgets if BUDGET_KINDS[key].reference == "baseline"]


def missing_reference(inputs: GateInputs, run: RunRecord, kind: BudgetKind, rule: Rule) -> str:
    if kind.reference == "fp32":
        return (f"'{inputs.results_name}' has no {REFERENCE_VARIANT} run to compare {describe_run(run)} with "
                f"('{kind.key}' from {rule.name}): bench the {REFERENCE_VARIANT} variant too")
    return (f"baseline '{inputs.baseline_name}' has no run {describe_run(run)} ('{kind.key}' from {rule.name}): "
            f"refresh the baseline or narrow the policy")
