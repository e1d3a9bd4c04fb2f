"""The inputs a comparison runs on: the user's data, else the inputs the candidate's export validated it on, else
random inputs (said so: figures on noise say little about real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import checked_inputs, read_npz
from ..errors import UsageError
from ..results.manifest import MANIFEST_FILENAME, REJECTED_DIR, read_manifest

VALIDATION_SAMPLES = 32  # what export validates every variant on
MAX_COMPARED_SAMPLES = 256  # every op output of every sample is held in memory


def validation_inputs(calibration: np.ndarray | None, input_shape: tuple[int, ...], *, real: bool = True
                      ) -> tuple[np.ndarray, bool]:
    """Inputs to validate on, and whether they are real data (the top-1 agreement floor applies only then).

    A full-int8 variant only represents inputs inside the range it was calibrated on, so with
    ``--random-calibration`` it is validated on those random samples (``real=False``), not on other noise. Without
    calibration data there is no full-int8 variant, and the others are run on standard normal inputs.
    """
    if calibration is not None:
        return calibration[:VALIDATION_SAMPLES].astype(np.float32), real
    return random_inputs(input_shape), False


def random_inputs(input_shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((VALIDATION_SAMPLES, *input_shape)).astype(np.float32)


def random_calibration(input_shape: tuple[int, ...]) -> np.ndarray:
    """What ``export --random-calibration`` calibrates (and validates) on."""
    return np.random.default_rng(0).random((100, *input_shape), dtype=np.float32)


def comparison_inputs(candidate: Path, data: Path | None, input_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    if data is not None:
        x = checked_inputs(data, read_npz(data), input_shape)
        shown = min(len(x), MAX_COMPARED_SAMPLES)
        return x[:MAX_COMPARED_SAMPLES].astype(np.float32), f"{shown} samples of {data}"
    folder = candidate.parent.parent if candidate.parent.name == REJECTED_DIR else candidate.parent
    manifest_path = folder / MANIFEST_FILENAME
    if manifest_path.is_file():
        calibration = read_manifest(folder).calibration or {}
        source = calibration.get("source")
        if source == "random":
            inputs, _ = validation_inputs(random_calibration(input_shape), input_shape)
            return inputs, f"the export's validation inputs (its random calibration samples, {manifest_path})"
        if source:
            try:
                x = checked_inputs(Path(source), read_npz(Path(source)), input_shape)
            except UsageError as exc:
                raise UsageError(f"{manifest_path}: its calibration data cannot be used: {exc.message}",
                                 hint="pass --data DATA.npz") from None
            inputs, _ = validation_inputs(x, input_shape)
            return inputs, f"the export's validation inputs ({len(inputs)} samples of {source})"
    return random_inputs(input_shape), (f"random inputs ({VALIDATION_SAMPLES} standard normal samples): no --data "
                                        "and no export manifest beside the candidate; figures on noise may differ "
                                        "from real data")
