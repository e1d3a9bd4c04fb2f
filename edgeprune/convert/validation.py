"""Run a freshly converted variant before shipping it: with XNNPACK and without, against the Keras outputs.

The variant runs in the device runner, in a child process, exactly as it will on a board, so a runtime that
crashes takes down that child, not the export, and what passes here is what the board will be asked to run.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..accuracy.metrics import OutputComparison, compare_outputs
from ..devices.runner import RunnerClient
from ..errors import RunnerError
from .variants import FLOAT16, FLOAT32, VariantSpec

# Allowed max |error| relative to the reference outputs' scale. Float variants must agree closely; fp16
# weights round to ~3 decimal digits. Quantized variants are judged by top-1 agreement on real inputs.
FLOAT_TOLERANCE = {FLOAT32: 1e-3, FLOAT16: 3e-2}
MIN_QUANTIZED_TOP1_AGREEMENT = 0.5


@dataclass(frozen=True)
class Validation:
    valid: bool
    error: str | None
    inputs: str
    xnnpack: dict[str, Any] | None
    builtin: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def validate_variant(
    model: Path,
    spec: VariantSpec,
    inputs: np.ndarray,
    reference: np.ndarray,
    *,
    real_inputs: bool,
    runner: RunnerClient,
) -> Validation:
    inputs_kind = "calibration data" if real_inputs else "random inputs"
    figures: dict[str, dict[str, Any] | None] = {"xnnpack": None, "builtin": None}
    with tempfile.TemporaryDirectory(prefix="edgeprune-validate-") as scratch:
        inputs_file = Path(scratch) / "inputs.npy"
        np.save(inputs_file, inputs.astype(np.float32))
        for mode, xnnpack in (("xnnpack", True), ("builtin", False)):
            outputs_file = Path(scratch) / f"outputs-{mode}.npz"
            label = "with XNNPACK" if xnnpack else "without XNNPACK"
            try:
                reply = runner.infer(str(model), str(inputs_file), str(outputs_file), threads=1, xnnpack=xnnpack)
            except RunnerError as exc:
                return Validation(False, f"{label}: {exc.detail}", inputs_kind, **figures)
            with np.load(outputs_file) as archive:
                comparison = compare_outputs(archive["output_0"], reference)
            figures[mode] = {**comparison.to_json(), "delegate_created": reply["xnnpack"]["delegate_created"]}
            problem = judge(spec, comparison, reference, real_inputs)
            if problem:
                return Validation(False, f"{label}: {problem}", inputs_kind, **figures)
    return Validation(True, None, inputs_kind, **figures)


def judge(spec: VariantSpec, comparison: OutputComparison, reference: np.ndarray, real_inputs: bool) -> str | None:
    if not comparison.finite:
        return "produced NaN or Inf outputs"
    if spec.quantization in FLOAT_TOLERANCE:
        scale = max(1.0, float(np.abs(reference).max()))
        allowed = FLOAT_TOLERANCE[spec.quantization] * scale
        if comparison.max_abs_error > allowed:
            return f"max abs error {comparison.max_abs_error:.3g} against Keras exceeds {allowed:.3g}"
        return None
    agreement = comparison.top1_agreement
    if real_inputs and agreement is not None and agreement < MIN_QUANTIZED_TOP1_AGREEMENT:
        return f"top-1 agreement with Keras is {agreement:.0%}, below {MIN_QUANTIZED_TOP1_AGREEMENT:.0%}"
    return None
