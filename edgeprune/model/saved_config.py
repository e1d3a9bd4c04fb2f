"""A saved Keras model's config, read as data: no layer is built and nothing in the file is run.

Where each format keeps the config Keras builds the model from (tf_keras 2.21, Keras 3):

- ``.h5``: the ``model_config`` attribute of the file's root (JSON text).
- ``.keras`` (either Keras): ``config.json`` in the zip; ``metadata.json`` says which Keras wrote it.
- SavedModel folder: one JSON text per Keras object, in ``keras_metadata.pb``, or (SavedModels older than
  TF 2.5, and tf_keras still reads them) in the object graph of ``saved_model.pb``. Both are read.

Every problem is a ``ModelLoadError`` naming the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from .. import tfenv
from ..data import ARCHIVE_READ_ERRORS
from ..errors import ModelLoadError
from ..parsing import ParseError, decode_utf8, parse_json

# Far above any real model's config (a few MB for thousands of layers); stops a zip bomb from filling memory.
MAX_CONFIG_BYTES = 64 << 20
KERAS_METADATA_FILE = "keras_metadata.pb"
SAVED_MODEL_FILE = "saved_model.pb"
REBUILD_HINT = "re-save the model"


def keras_zip_document(path: Path, member: str) -> Any:
    """A JSON member (``config.json``, ``metadata.json``) of a ``.keras`` zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelLoadError(f"'{path}': {member} is {info.file_size} bytes, more than a model's config has",
                                     hint=REBUILD_HINT)
            with archive.open(info) as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)  # the size in the zip's directory may lie
    except ARCHIVE_READ_ERRORS as exc:
        raise ModelLoadError(f"'{path}' is not a readable .keras archive ({type(exc).__name__})",
                             hint=REBUILD_HINT) from exc
    return _parsed(data, f"'{path}': {member}")


def h5_model_config(path: Path) -> Any | None:
    """The ``model_config`` of an ``.h5`` file; None for a file without one (weights only: Keras refuses it)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            config = handle.attrs.get("model_config")
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError ... for damaged files
        raise ModelLoadError(f"'{path}' is not a readable HDF5 model ({type(exc).__name__})",
                             hint=REBUILD_HINT) from exc
    if config is None:
        return None
    if not isinstance(config, (bytes, str)):  # h5py gives str, or numpy.bytes_ for a fixed-length string
        raise ModelLoadError(f"'{path}': attribute model_config is not text", hint=REBUILD_HINT)
    if len(config) > MAX_CONFIG_BYTES:
        raise ModelLoadError(f"'{path}': attribute model_config is larger than a model's config", hint=REBUILD_HINT)
    return _parsed(config, f"'{path}': attribute model_config")


def saved_model_documents(folder: Path) -> list[Any]:
    """The JSON metadata of every Keras object of a SavedModel, from both places tf_keras reads it from."""
    tfenv.tf_keras()  # the protobuf modules below import TensorFlow, which must start in tf_keras mode
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2
    from tf_keras.protobuf import saved_metadata_pb2

    texts: list[tuple[str, str]] = []
    metadata_file = folder / KERAS_METADATA_FILE
    if metadata_file.exists() and not metadata_file.is_file():  # a FIFO would block the read, here and in Keras
        raise ModelLoadError(f"'{metadata_file}' is not a regular file", hint=REBUILD_HINT)
    try:
        if metadata_file.exists():
            metadata = saved_metadata_pb2.SavedMetadata()
            metadata.ParseFromString(metadata_file.read_bytes())
            texts += [(KERAS_METADATA_FILE, node.metadata) for node in metadata.nodes]
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((folder / SAVED_MODEL_FILE).read_bytes())
    except (OSError, DecodeError) as exc:
        raise ModelLoadError(f"'{folder}' is not a readable SavedModel ({type(exc).__name__}: {exc})",
                             hint=REBUILD_HINT) from exc
    texts += [(SAVED_MODEL_FILE, node.user_object.metadata)
              for graph in saved_model.meta_graphs for node in graph.object_graph_def.nodes
              if node.WhichOneof("kind") == "user_object"]
    return [_parsed(text, f"'{folder / name}'") for name, text in texts if text]


def _parsed(text: str | bytes, where: str) -> Any:
    try:
        return parse_json(decode_utf8(text) if isinstance(text, bytes) else text)
    except ParseError as exc:
        raise ModelLoadError(f"{where} is not a readable model config ({exc})", hint=REBUILD_HINT) from exc
