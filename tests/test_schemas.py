"""The versioned JSON schemas shipped in edgeprune/results/schemas are the one description of edgeprune's documents:
the dataclasses that hold them have the schemas' keys, the names the code knows are the schemas' choices, and the
readers check documents against them in one line (real written documents: test_documents_follow_schema.py)."""

import copy
import dataclasses
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from edgeprune.errors import UsageError
from edgeprune.model.loading import H5, KERAS3_ZIP, KERAS_ZIP, SAVED_MODEL
from edgeprune.results.document import (RESULTS_KIND, RESULTS_SCHEMA_VERSION, STATUS_FAILED, STATUS_OK,
                                        ResultsDocument, RunRecord, results_from_json)
from edgeprune.results.accuracy_figures import AccuracyFigures
from edgeprune.results.latency import Latency
from edgeprune.results.manifest import MANIFEST_KIND, MANIFEST_SCHEMA_VERSION, Manifest, VariantRecord
from edgeprune.variants import VARIANTS


def schema(name: str) -> dict:
    return json.loads(resources.files("edgeprune.results").joinpath("schemas", name).read_text())


RESULTS = schema("results.schema.json")
MANIFEST = schema("manifest.schema.json")
NOT_IN_DOCUMENT = {"folder"}  # where a manifest was read from


@pytest.mark.parametrize("name", ["manifest.schema.json", "results.schema.json"])
def test_schemas_are_valid_json_schema(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))


@pytest.mark.parametrize("holder, described", [
    (ResultsDocument, RESULTS), (RunRecord, RESULTS["$defs"]["run"]), (Manifest, MANIFEST),
    (VariantRecord, MANIFEST["$defs"]["variant"]), (Latency, RESULTS["$defs"]["latency"]),
    (AccuracyFigures, RESULTS["$defs"]["accuracy"]),
], ids=["ResultsDocument", "RunRecord", "Manifest", "VariantRecord", "Latency", "AccuracyFigures"])
def test_each_dataclass_has_the_keys_of_its_schema(holder, described):
    names = {field.name for field in dataclasses.fields(holder)} - NOT_IN_DOCUMENT
    assert names == set(described["properties"])
    # What a valid document may leave out, the reader can leave out too: every field without a default is required.
    no_default = {field.name for field in dataclasses.fields(holder)
                  if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING}
    assert no_default <= set(described.get("required", ()))


def test_the_schemas_choices_are_the_codes():
    variant = MANIFEST["$defs"]["variant"]["properties"]
    assert variant["name"]["enum"] == list(VARIANTS)
    assert set(variant["quantization"]["enum"]) == {spec.quantization for spec in VARIANTS.values()}
    assert MANIFEST["properties"]["variants"]["maxItems"] == len(VARIANTS)
    assert set(MANIFEST["properties"]["source"]["properties"]["format"]["enum"]) == {KERAS_ZIP, KERAS3_ZIP, H5,
                                                                                     SAVED_MODEL}
    assert set(RESULTS["$defs"]["run"]["properties"]["status"]["enum"]) == {STATUS_OK, STATUS_FAILED}
    assert RESULTS["properties"]["kind"]["const"] == RESULTS_KIND
    assert RESULTS["properties"]["schema_version"]["const"] == RESULTS_SCHEMA_VERSION
    assert MANIFEST["properties"]["kind"]["const"] == MANIFEST_KIND
    assert MANIFEST["properties"]["schema_version"]["const"] == MANIFEST_SCHEMA_VERSION


def results_document() -> dict[str, Any]:
    document = ResultsDocument.new({"devices": ["my board"]})
    document.runs = [RunRecord(device="my board", model="m", variant="fp32", model_sha256=None, size_bytes=10,
                               threads=1, xnnpack=True, status="ok", samples_ms=[1.0] * 200_000)]
    document.devices = {"my board": {"address": "pi@pi4", "wall_seconds": 1.5}}
    return document.to_json()


def changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(results_document())
    holder = document
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return document


@pytest.mark.parametrize("document, message", [
    (changed(("runs", 0, "size_bytes"), 10.0), "runs[0].size_bytes must be a whole number or null, not 10.0"),
    (changed(("runs", 0, "status"), "failed"), "runs[0] failed but gives no error"),
    (changed(("runs", 0, "status"), "done"), "runs[0].status must be one of failed, ok"),
    (changed(("runs", 0, "samples_ms", 123_456), 0.0), "runs[0].samples_ms[123456] must be a number from 1e-06 to "
                                                        "1e+09, not 0.0"),
    (changed(("runs", 0, "samples_ms", 7), "1"), "runs[0].samples_ms[7] must be a number, not a string"),
    (changed(("runs", 0, "model_sha256"), "sha"), "runs[0].model_sha256 must be 64 lowercase hex digits"),
    (changed(("devices", "my board", "wall_seconds"), -1), "devices['my board'].wall_seconds must be at least 0, "
                                                           "not -1"),
    (changed(("devices", "\x1b[2Jboard\n"), []), "devices['\\x1b[2Jboard\\n'] must be an object, not an array"),
    (changed(("sparse_inference",), [{"device": "d", "model": "m", "arch": None, "applied": True}]),
     "sparse_inference[0].reasons is missing"),
], ids=["float-count", "failed-without-error", "unknown-status", "zero-sample", "string-sample", "short-sha",
        "negative-seconds", "hostile-key", "verdict-without-reasons"])
def test_the_reader_names_the_first_problem_in_one_line(document, message):
    with pytest.raises(UsageError) as raised:
        results_from_json(document, "r.json")
    assert str(raised.value) == f"r.json: {message}"


def test_the_reader_takes_a_valid_document_and_drops_keys_it_does_not_know():
    document = results_document()
    document["runs"][0]["energy_mj"] = 3.5  # a later version's key

    read = results_from_json(document, "r.json")

    assert read.runs[0].samples_ms == [1.0] * 200_000 and read.devices["my board"]["wall_seconds"] == 1.5
    assert "energy_mj" not in read.runs[0].to_json()
