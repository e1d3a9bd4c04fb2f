"""Where each variant parts from the fp32 variant, layer by layer (``edgeprune compare``'s figures), recorded in its
manifest entry; an invalid variant's reason then names the layer where it first diverged."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..board.runner import RunnerClient
from ..errors import RunnerError, UsageError
from ..numerics.capture import LayerTensor, capture_layers
from ..numerics.comparison import LayerComparisons, compare_layers
from ..results.manifest import VariantRecord
from ..text import one_line, shorten

MAX_NAMES_SHOWN = 6


class LayerCheck:
    """The fp32 variant's op outputs on the validation inputs, captured once, to compare every other variant with."""

    def __init__(self, reference: Path | None, samples: np.ndarray, runner: RunnerClient) -> None:
        self.samples = samples
        self.runner = runner
        self.reference: list[LayerTensor] | None = None
        if reference is not None:
            try:
                self.reference = capture_layers(reference, samples, runner)
            except RunnerError:  # fp32 itself failed to run: its own record says so
                self.reference = None

    def compare(self, variant: Path) -> LayerComparisons | None:
        if self.reference is None:
            return None
        try:
            return compare_layers(self.reference, capture_layers(variant, self.samples, self.runner))
        except RunnerError:  # a variant that cannot run has its reason from validation already
            return None

    def layer_names(self, pattern: str) -> list[str]:
        """The fp32 variant's op output names that ``--float-layers`` ``pattern`` matches (re.search)."""
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"--float-layers: '{shorten(pattern, 60)}' is not a regular expression ({exc})") from None
        if self.reference is None:
            raise UsageError("--float-layers needs the fp32 variant to name the layers",
                             hint="export fp32 too (it is in the default set)")
        names = [layer.tensor for layer in self.reference if regex.search(layer.tensor)]
        if not names:
            shown = ", ".join(one_line(shorten(layer.tensor, 50)) for layer in self.reference[:MAX_NAMES_SHOWN])
            raise UsageError(f"--float-layers '{shorten(pattern, 60)}' matches no layer of the model",
                             hint=f"layers are named by their op outputs: {shown}, ...")
        return list(dict.fromkeys(names))


def record_layers(record: VariantRecord, comparisons: LayerComparisons | None) -> None:
    """Put the figures in the record's validation, and name the first divergent layer in an invalid one's reason."""
    if record.validation is None:
        return
    record.validation["layers"] = [layer.to_json() for layer in comparisons.layers] if comparisons else None
    record.validation["first_divergent"] = comparisons.first_divergent if comparisons else None
    divergent = comparisons.divergent_layer if comparisons else None
    if not record.valid and divergent is not None and record.error:
        snr = "NaN or Inf" if divergent.snr_db is None else f"SNR {divergent.snr_db:.1f} dB"
        cosine = "" if divergent.cosine is None else f", cosine {divergent.cosine:.3f}"
        record.error += (f"; it first diverges from fp32 at layer {comparisons.first_divergent} "
                         f"({divergent.op} '{shorten(divergent.reference_tensor, 80)}': {snr}{cosine})")
