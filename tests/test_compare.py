"""Per-layer numerics: ``edgeprune compare``, the layers in every variant's manifest entry, and quantization that
routes around the layer that breaks int8 (``export --float-layers``, ``--auto-float``).

The model that breaks int8 in one known layer: ``wide`` has a row of weights 400 times the others on an input
feature that is zero on every input but one calibration sample, far past the 32 samples export validates on. That
one sample sets ``wide``'s output range, so the quantization step of its int8 output is about four times its usual
values, which all round to the few levels around zero.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from edgeprune.cli import main
from edgeprune.numerics.capture import LayerTensor
from edgeprune.numerics.pairing import BY_NAME, BY_POSITION, BY_POSITION_UNCERTAIN, pair_layers
from fixtures.models import MODELS, run_export

TRIGGER_SAMPLE = 40
MAX_COMPARABLE_SNR_DB = 100.0  # beyond the first 32 samples, which export validates on
MOBILENET_OP_OUTPUTS = 17  # the fp32 variant's layers that compare reports


def build_wide_model(folder: Path) -> tuple[Path, Path]:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras

    rng = np.random.default_rng(0)
    inputs = tf_keras.Input((8,), name="features")
    stem = tf_keras.layers.Dense(8, name="stem")
    wide = tf_keras.layers.Dense(16, name="wide")
    head = tf_keras.layers.Dense(4, activation="softmax", name="head")
    model = tf_keras.Model(inputs, head(wide(stem(inputs))))
    stem.set_weights([np.eye(8, dtype=np.float32), np.zeros(8, np.float32)])
    kernel = rng.normal(0, 0.5, (8, 16)).astype(np.float32)
    kernel[7] = 200.0
    wide.set_weights([kernel, np.zeros(16, np.float32)])
    head.set_weights([rng.normal(0, 1, (16, 4)).astype(np.float32), np.zeros(4, np.float32)])
    model_path = folder / "wide.keras"
    model.save(model_path)
    calibration = rng.uniform(-1, 1, (64, 8)).astype(np.float32)
    calibration[:, 7] = 0.0
    calibration[TRIGGER_SAMPLE, 7] = 5.0
    calibration_path = folder / "calibration.npz"
    np.savez(calibration_path, x=calibration)
    return model_path, calibration_path


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> tuple[Path, Path]:
    return build_wide_model(tmp_path_factory.mktemp("wide"))


def manifest_variant(export: Path, name: str) -> dict:
    return next(variant for variant in json.loads((export / "manifest.json").read_text())["variants"]
                if variant["name"] == name)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def broken_export(tmp_path_factory, wide_model) -> Path:
    model, calibration = wide_model
    outdir = tmp_path_factory.mktemp("broken") / "export"
    assert run_export(model, outdir, "--variants", "fp32,int8", "--calibration", str(calibration)) == 1
    return outdir


@pytest.mark.slow
def test_an_invalid_int8_names_the_layer_where_it_diverges(broken_export):
    int8 = manifest_variant(broken_export, "int8")

    assert not int8["valid"]
    layers, first = int8["validation"]["layers"], int8["validation"]["first_divergent"]
    assert [layer["op"] for layer in layers] == ["FULLY_CONNECTED", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    assert "wide" in layers[first]["reference_tensor"] and layers[first]["snr_db"] < 30
    assert layers[0]["snr_db"] > 30  # the stem before it is fine
    assert f"it first diverges from fp32 at layer {first} (FULLY_CONNECTED '" in int8["error"]
    assert "wide" in int8["error"].rpartition("first diverges")[2]


@pytest.mark.slow
def test_compare_names_that_layer_and_says_what_it_ran_on(broken_export, capsys):
    code, out, _ = cli(capsys, "compare", str(broken_export / "fp32.tflite"),
                       str(broken_export / "rejected" / "int8.tflite"), "--json")

    assert code == 0
    compared = json.loads(out)
    first = compared["layers"][compared["first_divergent"]]
    assert "wide" in first["candidate_tensor"] and first["paired_by"] == BY_NAME
    assert set(first) == {"op", "reference_tensor", "candidate_tensor", "snr_db", "cosine", "max_abs_error",
                          "paired_by"}
    assert compared["inputs"].startswith("the export's validation inputs (32 samples of ")
    code, out, _ = cli(capsys, "compare", str(broken_export / "fp32.tflite"),
                       str(broken_export / "rejected" / "int8.tflite"))
    # Keras numbers the model's name when the process has built others ('model_3/wide/...').
    assert code == 0 and re.search(r"first divergent layer: #1 FULLY_CONNECTED '\w+/wide/", out)
    assert "<- first divergent" in out and "paired 4 of the candidate's 4 op outputs" in out


@pytest.mark.slow
def test_auto_float_keeps_the_diverging_layers_in_float_until_int8_validates(tmp_path, wide_model):
    model, calibration = wide_model

    code = run_export(model, tmp_path / "export", "--variants", "fp32,int8", "--calibration", str(calibration),
                      "--auto-float")

    assert code == 0
    int8 = manifest_variant(tmp_path / "export", "int8")
    floated = int8["validation"]["float_layers"]
    assert int8["valid"] and int8["file"] == "int8.tflite" and 1 <= len(floated) <= 3
    assert "wide" in floated[0]  # the layer compare names comes first
    assert int8["validation"]["float_layers_cost_bytes"] > 0  # float weights cost bytes
    assert int8["validation"]["first_divergent"] is None
    assert not (tmp_path / "export" / "rejected").exists()  # no stale rejected attempt


@pytest.mark.slow
def test_auto_float_stops_at_its_limit(tmp_path, wide_model):
    model, calibration = wide_model

    code = run_export(model, tmp_path / "export", "--variants", "fp32,int8", "--calibration", str(calibration),
                      "--auto-float", "--auto-float-max", "1")

    int8 = manifest_variant(tmp_path / "export", "int8")
    assert code == 1 and not int8["valid"] and len(int8["validation"]["float_layers"]) == 1


@pytest.mark.slow
def test_float_layers_by_name(tmp_path, wide_model):
    model, calibration = wide_model

    code = run_export(model, tmp_path / "export", "--variants", "fp32,int8", "--calibration", str(calibration),
                      "--float-layers", "wide|head|StatefulPartitionedCall")

    int8 = manifest_variant(tmp_path / "export", "int8")
    assert code == 0 and int8["valid"]
    assert [name.split("/")[1] for name in int8["validation"]["float_layers"][:2]] == ["wide", "head"]


@pytest.mark.parametrize("pattern, message", [
    ("wide[", "--float-layers: 'wide[' is not a regular expression"),
])
def test_a_bad_float_layers_pattern_is_refused_at_once(isolated_cwd, capsys, pattern, message):
    code, out, err = cli(capsys, "export", "missing.keras", "-o", "out", "--float-layers", pattern)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_final_layer_snr_agrees_with_the_output_snr_of_validation(digits_export, mobilenet_export):
    checked = []
    for export in (digits_export, mobilenet_export):
        for variant in json.loads((export / "manifest.json").read_text())["variants"]:
            validation = variant["validation"] or {}
            layers, builtin = validation.get("layers"), validation.get("builtin")
            if not layers or not builtin or builtin["snr_db"] is None:  # e.g. stopped at its XNNPACK run
                continue
            if builtin["snr_db"] > MAX_COMPARABLE_SNR_DB:
                continue  # float variants: both figures measure float rounding, Keras's and fp32's, not the variant
            checked.append(variant["name"])
            output_snr = builtin["snr_db"]
            assert abs(layers[-1]["snr_db"] - output_snr) <= 0.5, (export.name, variant["name"])
    assert {"int8", "int8-dynamic"} <= set(checked)


@pytest.mark.slow
def test_fp32_and_int8_pair_nearly_every_layer(mobilenet_export, capsys):
    code, out, _ = cli(capsys, "compare", str(mobilenet_export / "fp32.tflite"), str(mobilenet_export / "int8.tflite"),
                       "--json")
    compared = json.loads(out)
    assert code == 0 and len(compared["layers"]) >= 0.9 * MOBILENET_OP_OUTPUTS
    assert {layer["paired_by"] for layer in compared["layers"]} <= {BY_NAME, BY_POSITION, BY_POSITION_UNCERTAIN}


@pytest.mark.slow
def test_an_int8_file_whose_tensors_were_all_renamed_pairs_by_position(mobilenet_export, tmp_path, capsys):
    from tensorflow.lite.tools import flatbuffer_utils

    renamed = flatbuffer_utils.read_model(str(mobilenet_export / "int8.tflite"))
    for index, tensor_t in enumerate(renamed.subgraphs[0].tensors):
        tensor_t.name = f"renamed_{index}".encode()
    flatbuffer_utils.write_model(renamed, str(tmp_path / "int8.tflite"))

    code, out, _ = cli(capsys, "compare", str(mobilenet_export / "fp32.tflite"), str(tmp_path / "int8.tflite"),
                       "--data", str(MODELS / "mobilenet_digits_eval.npz"), "--json")
    compared = json.loads(out)
    assert code == 0 and len(compared["layers"]) >= 0.9 * MOBILENET_OP_OUTPUTS
    assert {layer["paired_by"] for layer in compared["layers"]} <= {BY_POSITION, BY_POSITION_UNCERTAIN}
    assert all(layer["candidate_tensor"].startswith("renamed_") for layer in compared["layers"])
    assert compared["layers"][-1]["snr_db"] > 30  # paired with the right layers: the outputs agree


def tensor(position: int, op: str, name: str, shape: tuple[int, ...]) -> LayerTensor:
    return LayerTensor(position, op, name, (1, *shape), False, np.zeros((1, *shape), np.float32))


def test_renamed_tensors_pair_by_position_and_added_ops_stay_unpaired():
    reference = [tensor(0, "CONV_2D", "conv1", (8, 8, 16)), tensor(1, "CONV_2D", "conv2", (8, 8, 32)),
                 tensor(2, "RESHAPE", "flatten", (512,)), tensor(3, "FULLY_CONNECTED", "logits", (10,))]
    candidate = [tensor(0, "QUANTIZE", "tfl.quantize", (8, 8, 1)), tensor(1, "CONV_2D", "conv1_int8", (8, 8, 16)),
                 tensor(2, "CONV_2D", "conv2", (8, 8, 32)), tensor(3, "RESHAPE", "flat_renamed", (512,)),
                 tensor(4, "MEAN", "logits_other_op", (10,)), tensor(5, "DEQUANTIZE", "out", (10,))]

    pairs = pair_layers(reference, candidate)

    assert [(pair.reference.tensor, pair.candidate.tensor, pair.paired_by) for pair in pairs] == [
        ("conv1", "conv1_int8", BY_POSITION), ("conv2", "conv2", BY_NAME), ("flatten", "flat_renamed", BY_POSITION),
        ("logits", "logits_other_op", BY_POSITION_UNCERTAIN)]
