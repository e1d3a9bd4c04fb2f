"""Every op's outputs of a ``.tflite`` model on given inputs, dequantized to float, taken by the device runner
(builtin kernels: a delegate keeps its nodes' tensors to itself) in a child process, so a model that crashes the
runtime costs this capture, not the caller."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..board.runner import RunnerClient


@dataclass(frozen=True)
class LayerTensor:
    """One op's output: ``values`` holds it for every input sample, in float."""

    position: int  # among the captured tensors, in execution order
    op: str
    tensor: str
    shape: tuple[int, ...]
    quantized: bool
    values: np.ndarray

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape[1:]


def capture_layers(model: Path, inputs: np.ndarray, runner: RunnerClient) -> list[LayerTensor]:
    with tempfile.TemporaryDirectory(prefix="edgeprune-layers-") as scratch:
        inputs_file, outputs_file = Path(scratch) / "inputs.npy", Path(scratch) / "tensors.npz"
        np.save(inputs_file, inputs.astype(np.float32))
        reply = runner.infer(str(model), str(inputs_file), str(outputs_file), threads=1, xnnpack=False,
                             all_tensors=True)
        with np.load(outputs_file, allow_pickle=False) as archive:
            return [LayerTensor(position, tensor["op"], tensor["tensor"], tuple(tensor["shape"]),
                                tensor["quantized"], archive[f"tensor_{position}"])
                    for position, tensor in enumerate(reply["tensors"])]
