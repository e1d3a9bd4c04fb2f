"""Rebuild a Keras 3 model as a tf_keras one, layer by layer, so that tfmot (which wraps tf_keras layers only)
can prune it.

Each layer is rebuilt from its Keras 3 config by the tf_keras class of the same name; a Functional model's call
graph is replayed node by node, so branches, merges and shared layers come out the same. Then the weights are
copied. A model this cannot rebuild faithfully (a custom or Keras-3-only layer, an option tf_keras lacks, a
subclassed or nested model) is refused with the layer and the reason, never approximated.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import tfenv
from ..errors import ModelLoadError
from ..text import printable

# Where Keras 3 configs nest objects tf_keras rebuilds from their class name and config.
_NESTED_MODULES = ("initializers", "regularizers", "constraints")
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class _Untranslatable(Exception):
    """Why one layer has no faithful tf_keras form, said of the layer ("is a custom layer"); ``_about`` names
    the model and the layer before it."""


def to_tf_keras(model: Any, path: Path) -> Any:
    """A tf_keras model with ``model``'s layers (same names), call graph and weights. ``path`` names the model
    in messages. Raises ``ModelLoadError`` for a model that cannot be rebuilt."""
    tfenv.tensorflow()
    import keras
    from keras.src.models.functional import Functional  # not exported; a subclass of it may override call()

    if type(model) not in (keras.Sequential, Functional):
        raise _refusal(path, f"it is a subclassed model ({type(model).__name__}), which has no config to rebuild")
    try:
        new_model = _sequential(model, path) if type(model) is keras.Sequential else _functional(model, path)
    except (TypeError, ValueError) as exc:  # tf_keras refuses to assemble the translated layers
        raise _refusal(path, f"tf_keras cannot assemble its layers: {exc}") from exc
    for layer in model.layers:
        with _about(path, layer):
            try:
                new_model.get_layer(layer.name).set_weights(layer.get_weights())
            except ValueError as exc:  # a count or shape that differs: tf_keras's layer is not the same layer
                raise _Untranslatable(f"has weights that do not fit tf_keras's {type(layer).__name__}: {exc}") from exc
    return new_model


def _sequential(model: Any, path: Path) -> Any:
    tf_keras = tfenv.tf_keras()
    layers = [_input(model.inputs[0], path)]
    for layer in model.layers:
        with _about(path, layer):
            layers.append(_layer(layer))
    return tf_keras.Sequential(layers, name=model.name)


def _functional(model: Any, path: Path) -> Any:
    """Replay the Keras 3 graph: each node calls its layer's tf_keras twin on the tf_keras tensors that stand for
    the node's Keras 3 input tensors (keyed by ``id``: KerasTensors do not hash by value). Keras 3 exports no
    view of its graph: this reads ``_nodes_by_depth``, as its own Functional code does."""
    tf = tfenv.tensorflow()
    tf_keras = tfenv.tf_keras()
    import keras

    tensors = {id(tensor): _input(tensor, path) for tensor in keras.tree.flatten(model.input)}

    def as_new(value: Any) -> Any:
        return tensors[id(value)] if isinstance(value, keras.KerasTensor) else value

    new_layers: dict[int, Any] = {}  # by id of the Keras 3 layer: a layer called twice stays one (shared) layer
    for depth in sorted(model._nodes_by_depth, reverse=True):  # deepest first: every input exists before its use
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            with _about(path, layer):
                if id(layer) not in new_layers:
                    new_layers[id(layer)] = _layer(layer)
                args = keras.tree.map_structure(as_new, node.arguments.args)
                # Keras 3 records mask=None for every layer whose call takes a mask; not all tf_keras ones do.
                kwargs = {key: keras.tree.map_structure(as_new, value)
                          for key, value in node.arguments.kwargs.items() if not (key == "mask" and value is None)}
                try:
                    outputs = new_layers[id(layer)](*args, **kwargs)
                except (TypeError, ValueError) as exc:
                    raise _Untranslatable(f"cannot be called by tf_keras as the model calls it: {exc}") from exc
                tensors.update(zip(map(id, node.outputs), tf.nest.flatten(outputs)))
    return tf_keras.Model(keras.tree.map_structure(as_new, model.input),
                          keras.tree.map_structure(as_new, model.output), name=model.name)


def _input(tensor: Any, path: Path) -> Any:
    tf_keras = tfenv.tf_keras()
    input_layer = tensor._keras_history.operation
    config = input_layer.get_config()
    if config.get("optional"):
        raise _refusal(path, f"input '{input_layer.name}' is optional, which tf_keras inputs cannot be")
    return tf_keras.Input(batch_shape=config["batch_shape"], dtype=config["dtype"], sparse=config["sparse"],
                          ragged=config["ragged"], name=config["name"])


def _layer(layer: Any) -> Any:
    """A new, unbuilt tf_keras layer configured like ``layer``."""
    tf_keras = tfenv.tf_keras()
    import keras

    if not isinstance(layer, keras.layers.Layer):  # a keras.ops call in the graph (Keras 3 computes masks so)
        raise _Untranslatable("is a keras.ops operation; tf_keras models hold layers only")
    if isinstance(layer, keras.Model):
        raise _Untranslatable("is a nested model; tfmot prunes the layers of one flat model")
    if not type(layer).__module__.startswith("keras."):
        raise _Untranslatable("is a custom layer")
    new_class = getattr(tf_keras.layers, type(layer).__name__, None)
    if new_class is None:
        raise _Untranslatable("has no tf_keras equivalent")
    return _built(new_class, _config(type(layer), new_class, layer.get_config()))


def _config(keras3_class: type, tf_keras_class: type, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as ``tf_keras_class`` takes it. An option tf_keras does not have may only be left out when it
    holds Keras 3's default, which is what leaving it out means."""
    accepted = _parameters(tf_keras_class)
    defaults = {name: parameter.default for name, parameter in _parameters(keras3_class).items()}
    new_config = {}
    for key, value in config.items():
        if key in accepted:
            new_config[key] = _value(key, value)
        elif key not in defaults or defaults[key] != value:
            raise _Untranslatable(f"sets {key}={value!r}, which tf_keras does not have")
    return new_config


def _value(key: str, value: Any) -> Any:
    """A config value as tf_keras takes it: Keras 3 writes dtypes and nested objects as dicts tf_keras cannot
    read, so these become a dtype name and a tf_keras object."""
    if not (isinstance(value, dict) and "class_name" in value):
        return value
    tf_keras = tfenv.tf_keras()
    import keras

    class_name = value["class_name"]
    if class_name == "DTypePolicy":  # a plain one; a quantized policy is refused below
        return value["config"]["name"]
    kind = str(value.get("module", "")).removeprefix("keras.")
    keras3_class = getattr(getattr(keras, kind), class_name, None) if kind in _NESTED_MODULES else None
    tf_keras_class = getattr(getattr(tf_keras, kind), class_name, None) if keras3_class else None
    if tf_keras_class is None or value.get("registered_name"):
        raise _Untranslatable(f"sets {key} to a {class_name}, which tf_keras does not have")
    return _built(tf_keras_class, _config(keras3_class, tf_keras_class, value["config"]))


def _built(tf_keras_class: type, config: dict[str, Any]) -> Any:
    """tf_keras's object from ``config``; one it refuses (a value it checks differently) is not translatable."""
    try:
        return tf_keras_class(**config)
    except (TypeError, ValueError) as exc:
        raise _Untranslatable(f"has a config tf_keras's {tf_keras_class.__name__} refuses: {exc}") from exc


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters of ``cls`` and the base classes its ``**kwargs`` reach (``name``, ``dtype``)."""
    parameters: dict[str, inspect.Parameter] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass):
            signature = inspect.signature(klass.__init__)
            parameters.update((name, parameter) for name, parameter in signature.parameters.items()
                              if name != "self" and parameter.kind in _KEYWORD_KINDS)
    return parameters


@contextmanager
def _about(path: Path, layer: Any) -> Iterator[None]:
    """Turns an ``_Untranslatable`` raised while handling ``layer`` into the user's one-line ``ModelLoadError``."""
    try:
        yield
    except _Untranslatable as exc:
        raise _refusal(path, f"layer '{layer.name}' ({type(layer).__name__}) {exc}") from exc


def _refusal(path: Path, reason: str) -> ModelLoadError:
    # printable: layer names come from the file, and tf_keras's own errors run over several lines.
    return ModelLoadError(printable(f"Keras 3 model '{path}' cannot be pruned: {reason}", 600),
                          hint="rebuild the model with tf_keras (TF_USE_LEGACY_KERAS=1) to prune it")
