"""The versioned JSON schemas shipped in edgeprune/results/schemas describe what edgeprune really writes."""

import json
from importlib import resources

import jsonschema
import pytest

from edgeprune.cli import main
from fixtures.models import MODELS


def schema(name: str) -> dict:
    return json.loads(resources.files("edgeprune.results").joinpath("schemas", name).read_text())


@pytest.mark.parametrize("name", ["manifest.schema.json", "results.schema.json"])
def test_schemas_are_valid_json_schema(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))


@pytest.mark.slow
def test_an_export_manifest_matches_its_schema(digits_export):
    jsonschema.validate(json.loads((digits_export / "manifest.json").read_text()), schema("manifest.schema.json"))


@pytest.mark.slow
def test_a_results_document_with_failures_matches_its_schema(capsys, isolated_cwd, digits_export, tiny_tflite):
    broken = isolated_cwd / "broken.tflite"
    broken.write_bytes(b"\x00" * 100)
    main(["bench", str(digits_export), str(broken), "--runs", "2", "--rounds", "1", "-o", "results.json",
          "--data", str(MODELS / "digits_eval.npz")])
    capsys.readouterr()
    document = json.loads((isolated_cwd / "results.json").read_text())
    assert any(run["status"] == "failed" for run in document["runs"])
    jsonschema.validate(document, schema("results.schema.json"))
