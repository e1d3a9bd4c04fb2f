"""Hostile input: damaged or crafted ``.tflite`` files, Keras archives, data files, manifests and results
documents. The only acceptable outcomes are a result or an EdgepruneError (one clear line); anything else that
escapes is a bug in the reader.

Mutations are structure-aware where that reaches deeper code: bytes of a real flatbuffer, members of a real
``.keras`` zip, nodes of real JSON documents. Example counts stay small so the whole module runs in well under
a minute.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune.data import load_calibration
from edgeprune.errors import EdgepruneError
from edgeprune.inspection import inspect_path, render_inspection
from edgeprune.model.loading import load_model
from edgeprune.reports.bench_table import render_bench
from edgeprune.results.document import STATUS_FAILED, STATUS_OK, ResultsDocument, RunRecord, read_results
from edgeprune.results.manifest import MANIFEST_FILENAME, read_manifest
from fixtures.models import build_tiny_classifier, run_export

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SLOW = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_results_or_clear_errors(action: Callable[[], Any]) -> None:
    try:
        action()
    except EdgepruneError as error:
        assert str(error).strip() and "\n" not in error.message
    # Anything else propagates and fails the example, with hypothesis' minimal input.


@pytest.fixture(scope="module")
def scratch_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bytes], Path]:
    """Writes one example's input, in a folder that the next example reuses."""
    folder = tmp_path_factory.mktemp("fuzz-example")

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return write


# -- strategies --------------------------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """Flipped, overwritten, inserted or deleted bytes, a truncation, or a splice of the file with itself."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice", "int32"]))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[position:position + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[position:]
        elif kind == "splice":
            start = draw(st.integers(0, len(original)))
            data[position:position + 16] = original[start:start + 16]
        elif kind == "int32" and len(data) >= 4:  # flatbuffer offsets and lengths are 32-bit
            position = min(position, len(data) - 4) & ~3
            value = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, len(data), len(data) + 4]))
            data[position:position + 4] = value.to_bytes(4, "little")
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def json_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += json_paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += json_paths(value, prefix + (index,))
    return paths


@st.composite
def mutated_json(draw: st.DrawFn, original: Any) -> Any:
    """A copy with nodes replaced by other JSON values (wrong types, huge numbers, NaN ...) or deleted."""
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(json_paths(document)))
        if not path:
            return draw(json_values)
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        else:
            del parent[path[-1]]
    return document


def json_text(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


# -- inputs: real files to mutate ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_files(tiny_tflite: Path, tiny_int8_tflite: Path, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """fp32, full-int8 and a sparse-encoded flatbuffer (so the sparse decoding is reached too)."""
    from edgeprune import tfenv

    tf = tfenv.tensorflow()
    model = build_tiny_classifier()
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.8)] = 0.0
        layer.set_weights([kernel, bias])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return [tiny_tflite.read_bytes(), tiny_int8_tflite.read_bytes(), bytes(converter.convert())]


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real export folder (fp32 only): its manifest and its source .keras archive."""
    folder = tmp_path_factory.mktemp("fuzz-export")
    source = folder / "tiny.keras"
    build_tiny_classifier().save(source)
    assert run_export(source, folder / "export", "--variants", "fp32", "--random-calibration") == 0
    return folder


@pytest.fixture(scope="module")
def results_document() -> dict[str, Any]:
    document = ResultsDocument.new({"runs": 10, "rounds": 2}, label="fuzz")
    latency = {"p50": 1.0, "p90": 1.5, "p99": 2.0, "mean": 1.1, "std": 0.2, "min": 0.9, "max": 2.1, "n": 3}
    document.runs = [
        RunRecord(device="pi4", model="m", variant="fp32", model_sha256="ab" * 32, size_bytes=1000, threads=1,
                  xnnpack=True, status=STATUS_OK, latency_ms=latency, samples_ms=[1.0, 1.1, 2.1],
                  runtime={"name": "ai_edge_litert", "version": "2.0"}, accuracy={"top1": 0.9, "n": 10}),
        RunRecord(device="pi4", model="m", variant="int8", model_sha256="cd" * 32, size_bytes=300, threads=1,
                  xnnpack=True, status=STATUS_FAILED, error="device 'pi4': runner crashed"),
    ]
    document.devices = {"pi4": {"address": "pi@pi4:22", "info": {"arch": "aarch64"}, "error": None}}
    return document.to_json()


# -- the fuzz tests ----------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_inspect_survives_damaged_tflite_files(tflite_files: list[bytes], scratch_file, data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(tflite_files))
    path = scratch_file("model.tflite", data.draw(mutated_bytes(original)))

    def inspect() -> None:
        report = inspect_path(path)
        json.dumps(report.to_json())
        render_inspection(report)

    only_results_or_clear_errors(inspect)


@FUZZ
@given(data=st.data())
def test_manifest_reader_survives_damaged_manifests(tiny_export: Path, scratch_file, data: st.DataObject) -> None:
    original = json.loads((tiny_export / "export" / MANIFEST_FILENAME).read_text())
    content = data.draw(st.one_of(mutated_json(original).map(json_text), mutated_bytes(json_text(original))))
    folder = scratch_file(MANIFEST_FILENAME, content).parent

    def read() -> None:
        manifest = read_manifest(folder)
        manifest.deliverables()
        json.dumps(manifest.to_json())

    only_results_or_clear_errors(read)


@FUZZ
@given(data=st.data())
def test_results_reader_survives_damaged_results(results_document: dict[str, Any], scratch_file,
                                                 data: st.DataObject) -> None:
    content = data.draw(st.one_of(mutated_json(results_document).map(json_text),
                                  mutated_bytes(json_text(results_document))))
    path = scratch_file("results.json", content)

    def read() -> None:
        document = read_results(path)
        json.dumps(document.to_json())
        render_bench(document)

    only_results_or_clear_errors(read)


def rezip(archive: bytes, member: str, content: bytes) -> bytes:
    """The archive with ``member`` replaced by ``content`` (the rest copied as is)."""
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(output, "w") as target:
        for info in source.infolist():
            target.writestr(info, content if info.filename == member else source.read(info))
    return output.getvalue()


@FUZZ_SLOW
@given(data=st.data())
def test_model_loader_survives_damaged_keras_archives(tiny_export: Path, scratch_file, data: st.DataObject) -> None:
    archive = (tiny_export / "tiny.keras").read_bytes()
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        members = {name: zipped.read(name) for name in zipped.namelist()}
    kind = data.draw(st.sampled_from(["bytes", "member-json", "member-bytes"]))
    if kind == "bytes":
        content = data.draw(mutated_bytes(archive))
    elif kind == "member-json":
        name = data.draw(st.sampled_from(sorted(name for name in members if name.endswith(".json"))))
        content = rezip(archive, name, json_text(data.draw(mutated_json(json.loads(members[name])))))
    else:
        name = data.draw(st.sampled_from(sorted(members)))
        content = rezip(archive, name, data.draw(mutated_bytes(members[name])))
    path = scratch_file("model.keras", content)

    only_results_or_clear_errors(lambda: load_model(path))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


CALIBRATION = npz_bytes(x=np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32))


@FUZZ
@given(content=mutated_bytes(CALIBRATION))
def test_calibration_loader_survives_damaged_npz_files(scratch_file, content: bytes) -> None:
    path = scratch_file("calibration.npz", content)
    only_results_or_clear_errors(lambda: load_calibration(path, (None, 4)))
