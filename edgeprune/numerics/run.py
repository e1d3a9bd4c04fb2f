"""``edgeprune compare``: two ``.tflite`` files of one model run on the same inputs, every op output kept and paired,
and the per-layer figures with the first layer that diverges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..board.runner import RunnerClient, runner_script
from ..devices.local import LocalDevice
from ..errors import ModelLoadError
from ..model.tflite_file import read_tflite, shape_of
from .capture import capture_layers
from .comparison import LayerComparisons, compare_layers
from .inputs import comparison_inputs


@dataclass(frozen=True)
class CompareRequest:
    reference: Path
    candidate: Path
    data: Path | None = None


@dataclass(frozen=True)
class Compared:
    comparisons: LayerComparisons
    inputs: str  # what the models ran on, for the reader


def compare(request: CompareRequest) -> Compared:
    input_shape = model_input_shape(request.reference)
    if model_input_shape(request.candidate) != input_shape:
        raise ModelLoadError(f"'{request.candidate}' takes inputs of shape {list(model_input_shape(request.candidate))}"
                             f", '{request.reference}' of {list(input_shape)}: they are not variants of one model")
    inputs, note = comparison_inputs(request.candidate, request.data, input_shape)
    with RunnerClient(LocalDevice(), str(runner_script())) as runner:
        reference = capture_layers(request.reference, inputs, runner)
        candidate = capture_layers(request.candidate, inputs, runner)
    return Compared(compare_layers(reference, candidate), note)


def model_input_shape(path: Path) -> tuple[int, ...]:
    """The first input's shape without its batch dimension, read from the flatbuffer (nothing runs)."""
    tflite = read_tflite(path)
    graph = tflite.main_graph
    if graph.inputs is None or len(graph.inputs) == 0:
        raise ModelLoadError(f"'{path}' has no inputs")
    return shape_of(graph.tensors[graph.inputs[0]])[1:]
