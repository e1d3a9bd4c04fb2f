"""Whether a Keras model's config (read by ``saved_config``) makes loading it run Python code that is not Keras.

Building a model from its config runs:

- a ``Lambda`` layer's function: marshalled Python bytecode (``function_type`` "lambda"), or a function named
  by module. tf_keras refuses the bytecode in safe mode, but only for ``.keras``: ``.h5`` and SavedModel run it.
- a serialized Python function anywhere else (``{"class_name": "__lambda__"}``, a ``..._type`` of "lambda").
- an object named by ``module`` and ``class_name`` outside Keras: Keras imports that module (running it) and
  calls what it finds there; ``builtins`` reaches ``exec`` and ``open``.

Those are what this finds. What it does not judge: TensorFlow ops a model's graph holds (a ``TFOpLambda`` or a
SavedModel function may call any ``tf.*`` op, file writes included) run when the model is called.
"""

from __future__ import annotations

import builtins
from typing import Any

from ..text import printable

# Modules a config may name objects from, all of which edgeprune imports anyway: Keras, TensorFlow (the TypeSpecs
# of ragged or sparse inputs) and tfmot (its pruning wrappers).
TRUSTED_MODULE_ROOTS = frozenset({"keras", "tf_keras", "tensorflow", "tensorflow_model_optimization"})


def find_carried_code(document: Any) -> str | None:
    """The first piece of code ``document`` carries, in words ("Lambda layer 'scale'"); None if it carries none."""
    pending = [document]
    while pending:  # not recursive: a config may nest as deep as the JSON parser allows
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(reversed(node))
        elif isinstance(node, dict):
            found = _code_in_object(node)
            if found:
                return found
            pending.extend(reversed(list(node.values())))
    return None


def _code_in_object(node: dict[str, Any]) -> str | None:
    class_name = node.get("class_name")
    name = _name_of(node)
    if class_name == "Lambda":
        return f"Lambda layer '{name}'" if name else "a Lambda layer"
    if class_name == "__lambda__" or any(key.endswith("_type") and value == "lambda" for key, value in node.items()):
        return f"a serialized Python function in '{name}'" if name else "a serialized Python function"
    module = node.get("module")
    if isinstance(module, str) and class_name is not None and not _trusted(module, node):
        return f"'{_text(class_name)}' from module '{_text(module)}', which Keras would import and run"
    return None


def _trusted(module: str, node: dict[str, Any]) -> bool:
    if module.split(".")[0] in TRUSTED_MODULE_ROOTS:
        return True
    # Keras looks a "builtins" function up in its own modules first, then in Python's builtins: only a name
    # Python's builtins have (exec, open) can resolve outside Keras.
    name = node.get("config") if node.get("class_name") == "function" else node.get("class_name")
    return module == "builtins" and isinstance(name, str) and not hasattr(builtins, name)


def _name_of(node: dict[str, Any]) -> str | None:
    """A layer's name: in its config, or on the config itself."""
    config = node.get("config")
    name = config.get("name") if isinstance(config, dict) else node.get("name")
    return _text(name) if isinstance(name, str) else None


def _text(value: Any) -> str:
    return printable(str(value), 80)
