"""Every document edgeprune writes is valid against its shipped schema (a stock Draft 2020-12 validator, as any
consumer would use) and holds no key the schema does not describe: local and SSH benches with accuracy, failed
runs, the history's stored rows, an export with rejected variants (and, in test_faults.py, an interrupted bench)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edgeprune.cli import main
from edgeprune.results.document import read_results
from edgeprune.history.location import parse_location
from edgeprune.history.store import History
from edgeprune.results.manifest import read_manifest
from fixtures.models import MODELS
from test_schemas import schema

pytestmark = pytest.mark.slow


def undescribed_keys(instance: Any, node: dict[str, Any], root: dict[str, Any], where: str = "") -> list[str]:
    """The key paths of ``instance`` that no ``properties`` (or ``additionalProperties``) of the schema names."""
    while "$ref" in node:  # what the reference holds, with the keywords beside it
        node = {**resolve(root, node["$ref"]), **{key: value for key, value in node.items() if key != "$ref"}}
    if isinstance(instance, dict):
        found = []
        for key, value in instance.items():
            described = node.get("properties", {}).get(key, node.get("additionalProperties"))
            if isinstance(described, dict):
                found += undescribed_keys(value, described, root, f"{where}.{key}")
            else:
                found.append(f"{where}.{key}")
        return found
    if isinstance(instance, list) and isinstance(node.get("items"), dict):
        return [key for item in instance for key in undescribed_keys(item, node["items"], root, f"{where}[]")]
    return []


def resolve(root: dict[str, Any], reference: str) -> dict[str, Any]:
    node = root
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def assert_follows_schema(document: dict[str, Any], name: str) -> None:
    shipped = schema(name)
    jsonschema.Draft202012Validator(shipped).validate(document)
    assert sorted(set(undescribed_keys(document, shipped, shipped))) == []


def bench_json(capsys, *args: str) -> dict[str, Any]:
    assert main(["bench", *args, "-o", "results.json"]) in (0, 1)
    capsys.readouterr()
    return json.loads(Path("results.json").read_text())


def test_a_bench_with_accuracy_and_its_history_follow_the_schema(capsys, bench_device, digits_export) -> None:
    document = bench_json(capsys, str(digits_export), "--device", bench_device, "--data",
                          str(MODELS / "digits_eval.npz"), "--runs", "3", "--rounds", "1")

    assert_follows_schema(document, "results.schema.json")
    assert {run["status"] for run in document["runs"]} == {"ok"} and len(document["runs"]) == 6
    assert all(run["accuracy"]["n"] == 450 and run["board_state"] and run["xnnpack_delegate"]
               and run["export_manifest"] for run in document["runs"])
    assert document["devices"][bench_device]["info"]["arch"] and document["sparse_inference"]
    # The history keeps the header and each run as stored rows: put together, they are a document too.
    history = sqlite3.connect(".edgeprune/history.sqlite")
    [(bench_id, header)] = history.execute("SELECT id, header FROM benches").fetchall()
    rows = [json.loads(record) for (record,) in history.execute("SELECT record FROM runs WHERE bench_id = ?",
                                                                 (bench_id,))]
    assert_follows_schema({**json.loads(header), "runs": rows}, "results.schema.json")
    stored = History(parse_location(".edgeprune", "--history")).load(bench_id)
    assert stored.runs == read_results(Path("results.json")).runs


def test_a_bench_with_failed_runs_follows_the_schema(capsys, isolated_cwd, digits_export) -> None:
    broken = isolated_cwd / "broken.tflite"
    broken.write_bytes(b"\x00" * 100)

    document = bench_json(capsys, str(digits_export), str(broken), "--runs", "2", "--rounds", "1", "--data",
                          str(MODELS / "digits_eval.npz"), "--device", "local", "--device", "nowhere")

    assert_follows_schema(document, "results.schema.json")
    assert len(document["runs"]) == 14  # 6 variants and the broken file, on each device
    assert [run["model"] for run in document["runs"] if run["device"] == "local" and run["status"] == "failed"] == [
        "broken"]
    assert all(run["status"] == "failed" and run["error"] for run in document["runs"] if run["device"] == "nowhere")
    assert document["devices"]["nowhere"]["error"]


def test_an_export_with_rejected_variants_follows_the_schema(digits_export) -> None:
    document = json.loads((digits_export / "manifest.json").read_text())

    assert_follows_schema(document, "manifest.schema.json")
    rejected = {variant["name"]: variant for variant in document["variants"] if not variant["valid"]}
    assert set(rejected) == {"int8-dynamic-sparse", "int8-sparse"}
    assert all(variant["file"] is None and variant["error"] and variant["rejected_file"]
               for variant in rejected.values())
    assert [record.name for record in read_manifest(digits_export).deliverables()] == [
        variant["name"] for variant in document["variants"] if variant["valid"]]
