"""A Keras model's outputs as references, and which output of a converted .tflite variant is which of them.

The converter does not keep the Keras order of outputs (a three-headed model comes out of it with its heads
shuffled), so each TFLite output is paired with its Keras output by the name in the flatbuffer's signature
(tf_keras: the output layer's name; Keras 3: ``output_K`` for the K-th output, or the key of a dict output), else
by shape when every shape is distinct. Export validates every output this way and the accuracy pass scores the
one that pairs with the Keras model's first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from .loading import keras_outputs
from .tflite_file import parse_tflite


@dataclass(frozen=True)
class ReferenceOutput:
    """One Keras output on the validation inputs, with the names a TFLite signature may give it."""

    names: tuple[str, ...]
    values: np.ndarray

    @property
    def label(self) -> str:
        return self.names[0]


def reference_outputs(model: Any, inputs: np.ndarray) -> list[ReferenceOutput]:
    """Every output of a tf_keras or Keras 3 model on ``inputs``, in the model's own order."""
    names = list(getattr(model, "output_names", None) or [])
    references = []
    for index, (key, value) in enumerate(keras_outputs(model, inputs)):
        if key is not None:
            candidates = [key]
        else:
            candidates = ([str(names[index])] if index < len(names) else []) + [f"output_{index}"]
        references.append(ReferenceOutput(tuple(dict.fromkeys(candidates)), value))
    return references


def pair_outputs(model: Path, references: list[ReferenceOutput]) -> list[int] | str:
    """For each Keras output, the position of its TFLite output (the runner's ``output_N``); or why not."""
    try:
        tflite = parse_tflite(model.read_bytes(), model.name).model
    except (OSError, ModelLoadError) as exc:
        return f"cannot read the converted model: {exc}"
    graph = tflite.subgraphs[0]
    positions = [int(index) for index in (graph.outputs if graph.outputs is not None else [])]
    if len(positions) != len(references):
        return f"the variant has {len(positions)} outputs, the Keras model {len(references)}"
    if len(references) == 1:
        return [0]
    signature_names: dict[int, str] = {}
    for signature in tflite.signatureDefs or []:
        if signature.subgraphIndex == 0:
            for tensor_map in signature.outputs or []:
                name = tensor_map.name.decode() if isinstance(tensor_map.name, bytes) else str(tensor_map.name)
                signature_names[int(tensor_map.tensorIndex)] = name
            break
    by_name = bijection([[position for position, index in enumerate(positions)
                          if signature_names.get(index) in ref.names] for ref in references])
    if by_name is not None:
        return by_name
    shapes = [tuple(int(dim) for dim in (graph.tensors[index].shape if graph.tensors[index].shape is not None
                                         else []))[1:] for index in positions]
    by_shape = bijection([[position for position, shape in enumerate(shapes) if shape == ref.values.shape[1:]]
                          for ref in references])
    if by_shape is not None:
        return by_shape
    return (f"cannot tell which of the variant's {len(positions)} outputs is which Keras output (signature names "
            f"{sorted(signature_names.values())} do not match {[ref.label for ref in references]} and several "
            "outputs have the same shape)")


def bijection(candidates: list[list[int]]) -> list[int] | None:
    """The pairing when every reference has exactly one candidate position and no position is taken twice."""
    if any(len(found) != 1 for found in candidates):
        return None
    chosen = [found[0] for found in candidates]
    return chosen if len(set(chosen)) == len(chosen) else None
