"""Hostile input: damaged or crafted ``.tflite`` files, Keras archives, data files, manifests and results
documents. The only acceptable outcomes are a result or an EdgepruneError (one clear line); anything else that
escapes is a bug in the reader. What a results document's text may hold (any character at all), every renderer
of report and gate shows as text: HTML and rendered Markdown carry only their own tags, JUnit XML parses, the
terminal gets no control character.

Mutations are structure-aware where that reaches deeper code: bytes of a real flatbuffer, members of a real
``.keras`` zip, nodes of real JSON documents. Example counts stay small so the whole module runs in well under
a minute.
"""

from __future__ import annotations

import copy
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune.data import checked_inputs, read_npz
from edgeprune.errors import EdgepruneError
from edgeprune.inspection import inspect_path, render_inspection
from edgeprune.model.loading import load_model
from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.latency import Latency
from edgeprune.gate.checks import evaluate
from edgeprune.gate.console import render_checks
from edgeprune.gate.junit import junit_xml
from edgeprune.gate.policy import parse_policy
from edgeprune.gate.selection import GateInputs
from edgeprune.gate.summary import markdown_summary
from edgeprune.reports.bench_table import render_bench
from edgeprune.reports.html import render_html
from edgeprune.reports.markdown import render_markdown
from edgeprune.reports.report_data import collect
from edgeprune.results.document import STATUS_FAILED, STATUS_OK, ResultsDocument, RunRecord, read_results
from edgeprune.results.manifest import MANIFEST_FILENAME, read_manifest
from fixtures.models import build_tiny_classifier, run_export
from test_security_reports import CONTROL, MARKDOWN_TAGS, REPORT_TAGS, elements, rendered_markdown

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SLOW = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_PLOTS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    latency = Latency(p50=1.0, p90=1.5, p99=2.0, mean=1.1, std=0.2, min=0.9, max=2.1, n=3)
    document.runs = [
        RunRecord(device="pi4", model="m", variant="fp32", model_sha256="ab" * 32, size_bytes=1000, threads=1,
                  xnnpack=True, status=STATUS_OK, latency_ms=latency, samples_ms=[1.0, 1.1, 2.1],
                  runtime={"name": "ai_edge_litert", "version": "2.0"}, accuracy=AccuracyFigures(top1=0.9, n=10)),
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


def damaged_results(results_document: dict[str, Any], data: st.DataObject) -> bytes:
    original = json_text(results_document)
    return data.draw(st.one_of(mutated_json(results_document).map(json_text), mutated_bytes(original)))


@FUZZ
@given(data=st.data())
def test_results_reader_survives_damaged_results(results_document: dict[str, Any], scratch_file,
                                                 data: st.DataObject) -> None:
    path = scratch_file("results.json", damaged_results(results_document, data))

    def read() -> None:
        document = read_results(path)
        json.dumps(document.to_json())
        render_bench(document)

    only_results_or_clear_errors(read)


GATE_POLICY = parse_policy("[defaults]\nmax_p50_ms = 5\nmax_size_kb = 1\nmax_regression_pct = 10\n",
                           Path("policy.toml"))


def markdown_report(document: ResultsDocument, path: Path) -> None:
    markdown = render_markdown(collect(document, path))
    shown = rendered_markdown(markdown)
    assert not CONTROL.search(markdown) and set(shown.tags) <= MARKDOWN_TAGS, markdown


def html_report(document: ResultsDocument, path: Path) -> None:
    page = elements(render_html(collect(document, path)))
    assert set(page.tags) <= REPORT_TAGS and page.tags.count("img") <= 2 and not CONTROL.search("".join(page.text))


def gate_outputs(document: ResultsDocument) -> None:
    """Every output of a gate of ``document`` against itself: the table, JUnit XML and the step summary."""
    report = evaluate(GateInputs(GATE_POLICY, document, "results.json", document, "baseline.json"))
    assert not CONTROL.search(render_checks(report))
    ET.fromstring(junit_xml(report, timestamp="2025-01-01T00:00:00+00:00"))
    summary = rendered_markdown(markdown_summary(report))
    assert set(summary.tags) <= MARKDOWN_TAGS and len(set(summary.row_cells)) == 1


@FUZZ
@given(data=st.data())
def test_report_tables_and_gate_survive_damaged_results(results_document: dict[str, Any], scratch_file,
                                                        data: st.DataObject) -> None:
    path = scratch_file("results.json", damaged_results(results_document, data))

    def render() -> None:
        document = read_results(path)
        markdown_report(document, path)
        gate_outputs(document)

    only_results_or_clear_errors(render)


@FUZZ_PLOTS
@given(data=st.data())
def test_report_plots_survive_damaged_results(results_document: dict[str, Any], scratch_file,
                                              data: st.DataObject) -> None:
    path = scratch_file("results.json", damaged_results(results_document, data))
    only_results_or_clear_errors(lambda: html_report(read_results(path), path))


# Pieces that mean something to mathtext, HTML, Markdown, XML or a terminal, and any character at all (lone
# surrogates included), in any order.
ACTIVE_PIECES = ["$", "$\\frac{a}$", "\\", "<", ">", "&", "&amp;", "<script>", "</td>", "<!--", "|", "`", "``", "*",
                 "_", "~", "[x](http://e.x)", "![i](http://e.x)", "\n", "\r", "\t", "\x00", "\x1b[31m", "\x0b",
                 "\x85", "\u2028", "\u202e", "\ud800", "\ufffe", "#", "- ", "@user"]
any_text = st.lists(st.sampled_from(ACTIVE_PIECES) | st.text(st.characters(exclude_categories=()), max_size=3),
                    max_size=6).map("".join)


@st.composite
def results_with_any_text(draw: st.DrawFn) -> ResultsDocument:
    """A valid results document (numbers in range) whose every name, label, error and reason is ``any_text``."""
    devices = draw(st.lists(any_text, min_size=1, max_size=2, unique=True))
    model = draw(any_text)
    document = ResultsDocument.new({"devices": devices}, label=draw(st.none() | any_text))
    for device in devices:
        for variant in ("fp32", draw(any_text)):
            common = {"device": device, "model": model, "variant": variant, "model_sha256": None, "xnnpack": True,
                      "size_bytes": draw(st.none() | st.integers(0, 2**53)),
                      "threads": draw(st.none() | st.integers(1, 64))}
            if draw(st.booleans()):
                samples = draw(st.lists(st.floats(1e-6, 1e9), min_size=1, max_size=8))
                top1 = draw(st.none() | st.floats(0, 1))
                latency = Latency.from_values(samples)
                document.runs.append(RunRecord(**common, status=STATUS_OK, latency_ms=latency, samples_ms=samples,
                                               accuracy=AccuracyFigures(top1=top1, n=1)))
            else:
                document.runs.append(RunRecord(**common, status=STATUS_FAILED, error=draw(any_text)))
    document.sparse_inference = [{"device": draw(any_text), "model": model, "arch": draw(st.none() | any_text),
                                  "applied": draw(st.booleans()), "reasons": draw(st.lists(any_text, max_size=2))}]
    return document


def written_and_read(document: ResultsDocument, scratch_file) -> tuple[ResultsDocument, Path]:
    path = scratch_file("results.json", json.dumps(document.to_json()).encode())
    return read_results(path), path


@FUZZ
@given(document=results_with_any_text())
def test_any_text_in_results_is_shown_as_text_by_tables_and_gate(scratch_file, document: ResultsDocument) -> None:
    document, path = written_and_read(document, scratch_file)
    assert not CONTROL.search(render_bench(document))
    markdown_report(document, path)
    gate_outputs(document)


@FUZZ_PLOTS
@given(document=results_with_any_text())
def test_any_text_and_any_latency_in_results_plot(scratch_file, document: ResultsDocument) -> None:
    html_report(*written_and_read(document, scratch_file))


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
    only_results_or_clear_errors(lambda: checked_inputs(path, read_npz(path), (None, 4)))
