"""Run a freshly converted variant before shipping it: with XNNPACK and without, against the Keras outputs.

The variant runs in the device runner, in a child process, exactly as it will on a board, so a runtime that
crashes takes down that child, not the export, and what passes here is what the board will be asked to run.

Every output of the model is compared, not only the first, each with the Keras output it pairs with
(``model.outputs.pair_outputs``: by signature name, else by shape; the converter does not keep the Keras order). A
model whose outputs cannot be paired either way is reported invalid with that reason, never half-validated.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..accuracy.metrics import OutputComparison, compare_outputs
from ..board.runner import RunnerClient
from ..errors import RunnerError
from ..model.outputs import ReferenceOutput, pair_outputs
from ..variants import FLOAT16, FLOAT32, VariantSpec

# Allowed max |error| relative to the reference outputs' scale (per output). Float variants must agree closely;
# fp16 weights round to ~3 decimal digits.
FLOAT_TOLERANCE = {FLOAT32: 1e-3, FLOAT16: 3e-2}

# Quantized variants (int8-dynamic, int8, and their sparse forms) must keep every output's signal-to-noise ratio
# against Keras (10*log10(sum ref^2 / sum (out - ref)^2)) at or above this floor, on real AND on random inputs.
# 20 dB means an error whose RMS is 10% of the output's. Measured on the shipped samples (digits_cnn,
# mobilenet_digits; both runs, with XNNPACK and without):
#   int8-dynamic: 47.6-58.7 dB on the calibration data, 38.4-44.5 dB on random normal inputs, 41.9-44.5 dB on
#                 uniform [0, 1) inputs;
#   int8:         43.5-48.2 dB calibrated and validated on the calibration data, 33.3-35.6 dB calibrated
#                 (--random-calibration) and validated on uniform [0, 1) random inputs;
#   broken:       -1.1-10.6 dB for int8 run outside the range it was calibrated for (the garbage the old
#                 NaN-only check let through), -2.8 to -15.6 dB for tiny models or heads with wrong weights.
# The floor sits 13 dB (4.5x in error amplitude) under the worst valid figure and 9 dB over the best broken one.
MIN_QUANTIZED_SNR_DB = 20.0
# On real inputs (calibration data) a quantized variant must also pick the same class as Keras on at least this
# share of samples, for each output with more than one value per sample. Measured: 1.0 for every valid variant
# of both samples. Random inputs are not held to it: many of them sit on a decision boundary.
MIN_QUANTIZED_TOP1_AGREEMENT = 0.9


@dataclass(frozen=True)
class Validation:
    valid: bool
    error: str | None
    inputs: str
    xnnpack: dict[str, Any] | None
    builtin: dict[str, Any] | None
    criteria: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def validate_variant(
    model: Path,
    spec: VariantSpec,
    inputs: np.ndarray,
    references: Sequence[ReferenceOutput],
    *,
    real_inputs: bool,
    runner: RunnerClient,
) -> Validation:
    """``references``: the Keras outputs on ``inputs`` (``model.outputs.reference_outputs``)."""
    inputs_kind = "calibration data" if real_inputs else "random inputs"
    criteria = criteria_for(spec, references, real_inputs)
    figures: dict[str, dict[str, Any] | None] = {"xnnpack": None, "builtin": None}
    pairing = pair_outputs(model, references)
    if isinstance(pairing, str):
        return Validation(False, pairing, inputs_kind, **figures, criteria=criteria)
    with tempfile.TemporaryDirectory(prefix="edgeprune-validate-") as scratch:
        inputs_file = Path(scratch) / "inputs.npy"
        np.save(inputs_file, inputs.astype(np.float32))
        for mode, xnnpack in (("xnnpack", True), ("builtin", False)):
            outputs_file = Path(scratch) / f"outputs-{mode}.npz"
            label = "with XNNPACK" if xnnpack else "without XNNPACK"
            try:
                reply = runner.infer(str(model), str(inputs_file), str(outputs_file), threads=1, xnnpack=xnnpack)
            except RunnerError as exc:
                return Validation(False, f"{label}: {exc.detail}", inputs_kind, **figures, criteria=criteria)
            with np.load(outputs_file) as archive:
                produced = [archive[f"output_{position}"] for position in pairing]
            comparisons, problem = compare_all(spec, produced, references, real_inputs)
            figures[mode] = {**summarize(comparisons), "delegate_created": reply["xnnpack"]["delegate_created"],
                             "outputs": [{"name": ref.label, **comparison.to_json()} if comparison else
                                         {"name": ref.label} for ref, comparison in zip(references, comparisons)]}
            if problem:
                return Validation(False, f"{label}: {problem}", inputs_kind, **figures, criteria=criteria)
    return Validation(True, None, inputs_kind, **figures, criteria=criteria)


def compare_all(
    spec: VariantSpec, produced: list[np.ndarray], references: list[ReferenceOutput], real_inputs: bool
) -> tuple[list[OutputComparison | None], str | None]:
    """Compare each output with its Keras output; the first problem found, named by output when there are several."""
    comparisons: list[OutputComparison | None] = []
    problem = None
    for outputs, ref in zip(produced, references):
        where = f"output '{ref.label}': " if len(references) > 1 else ""
        if len(outputs) != len(ref.values) or outputs.size != ref.values.size:
            comparisons.append(None)
            problem = problem or f"{where}shape {list(outputs.shape)} differs from Keras's {list(ref.values.shape)}"
            continue
        comparison = compare_outputs(outputs, ref.values)
        comparisons.append(comparison)
        found = judge(spec, comparison, ref.values, real_inputs)
        if found and problem is None:
            problem = where + found
    return comparisons, problem


def summarize(comparisons: list[OutputComparison | None]) -> dict[str, Any]:
    """The worst figure over all outputs (the whole set when there is one output)."""
    known = [comparison for comparison in comparisons if comparison is not None]
    finite = [comparison for comparison in known if comparison.finite]

    def worst(key: str, pick: Any) -> float | None:
        values = [getattr(comparison, key) for comparison in finite if getattr(comparison, key) is not None]
        return pick(values) if values else None

    return {
        "n": known[0].n if known else 0,
        "finite": bool(known) and len(finite) == len(comparisons),
        "top1_agreement": worst("top1_agreement", min),
        "max_abs_error": worst("max_abs_error", max),
        "mean_abs_error": worst("mean_abs_error", max),
        "snr_db": worst("snr_db", min),
    }


def judge(spec: VariantSpec, comparison: OutputComparison, reference: np.ndarray, real_inputs: bool) -> str | None:
    """Why one output of a variant is not good enough, or None."""
    if not comparison.finite:
        return "produced NaN or Inf outputs"
    if spec.quantization in FLOAT_TOLERANCE:
        allowed = float_allowance(spec, reference)
        if comparison.max_abs_error > allowed:
            return f"max abs error {comparison.max_abs_error:.3g} against Keras exceeds {allowed:.3g}"
        return None
    if comparison.snr_db is not None and comparison.snr_db < MIN_QUANTIZED_SNR_DB:
        return (f"output SNR against Keras is {comparison.snr_db:.1f} dB, below {MIN_QUANTIZED_SNR_DB:g} dB "
                f"(on {'calibration data' if real_inputs else 'random inputs'})")
    agreement = comparison.top1_agreement
    if real_inputs and agreement is not None and agreement < MIN_QUANTIZED_TOP1_AGREEMENT:
        return f"top-1 agreement with Keras is {agreement:.0%}, below {MIN_QUANTIZED_TOP1_AGREEMENT:.0%}"
    return None


def float_allowance(spec: VariantSpec, reference: np.ndarray) -> float:
    scale = max(1.0, float(np.abs(reference).max())) if reference.size else 1.0
    return FLOAT_TOLERANCE[spec.quantization] * scale


def criteria_for(spec: VariantSpec, references: list[ReferenceOutput], real_inputs: bool) -> dict[str, Any]:
    """The bounds this variant is held to, recorded in the manifest next to the figures."""
    if spec.quantization in FLOAT_TOLERANCE:
        return {"finite": True,
                "max_abs_error": {ref.label: float_allowance(spec, ref.values) for ref in references}}
    return {"finite": True, "min_snr_db": MIN_QUANTIZED_SNR_DB,
            "min_top1_agreement": MIN_QUANTIZED_TOP1_AGREEMENT if real_inputs else None}

