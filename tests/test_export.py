"""``edgeprune export`` with real conversions and real LiteRT runs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprune.cli import main
from edgeprune.hashing import file_sha256
from fixtures.models import MODELS, build_tiny_classifier

pytestmark = pytest.mark.slow

ALL_VARIANTS = ["fp32", "fp32-sparse", "fp16", "fp16-sparse", "int8-dynamic", "int8-dynamic-sparse", "int8",
                "int8-sparse"]


def manifest_of(outdir: Path) -> dict:
    return json.loads((outdir / "manifest.json").read_text())


def export(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["export", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_variant_kind_is_built_and_checked(digits_export):
    manifest = manifest_of(digits_export)
    assert manifest["schema_version"] == 1 and manifest["kind"] == "edgeprune.export-manifest"
    assert manifest["source"]["format"] == "keras" and manifest["source"]["stripped"] is False
    assert manifest["source"]["sha256"] == file_sha256(MODELS / "digits_cnn.keras")
    variants = {variant["name"]: variant for variant in manifest["variants"]}
    assert list(variants) == ALL_VARIANTS
    fp32_size = variants["fp32"]["size_bytes"]
    for name, variant in variants.items():
        assert variant["size_bytes"] > 0 and 0 < variant["gzip_bytes"] < variant["size_bytes"] * 1.1
        assert (variant["sparse_tensors"] > 0) == name.endswith("-sparse"), name
        if variant["valid"]:
            path = digits_export / variant["file"]
            assert path.is_file() and file_sha256(path) == variant["sha256"]
            assert variant["error"] is None
            assert variant["validation"]["xnnpack"]["finite"] and variant["validation"]["builtin"]["finite"]
        if name != "fp32":
            assert variant["size_bytes"] < fp32_size, name
    fp32_check = variants["fp32"]["validation"]
    assert fp32_check["inputs"] == "calibration data"
    assert fp32_check["xnnpack"]["max_abs_error"] < 1e-4 and fp32_check["xnnpack"]["top1_agreement"] == 1.0
    assert fp32_check["xnnpack"]["delegate_created"] is True
    # 80% zeros: the sparse encoding must at least halve the fp32 file.
    assert variants["fp32-sparse"]["size_bytes"] < fp32_size / 2


def test_known_broken_combinations_are_invalid_with_the_reason(digits_export):
    variants = {variant["name"]: variant for variant in manifest_of(digits_export)["variants"]}
    for name in ("int8-dynamic-sparse", "int8-sparse"):  # ../shared/REFERENCE.md: XNNPACK fails to prepare them
        variant = variants[name]
        assert variant["valid"] is False and variant["file"] is None
        assert "with XNNPACK" in variant["error"] and "failed to" in variant["error"]
        assert (digits_export / variant["rejected_file"]).is_file()
        assert not (digits_export / f"{name}.tflite").exists()


def test_a_named_invalid_variant_fails_the_command(capsys, tmp_path):
    code, out, err = export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(tmp_path / "out"),
                            "--variants", "fp32,int8-dynamic-sparse")
    assert code == 1
    assert "edgeprune: variant 'int8-dynamic-sparse' is invalid: with XNNPACK" in err
    assert "fp32" in out and (tmp_path / "out" / "fp32.tflite").is_file()


def test_default_variants_follow_the_model_and_data(capsys, tmp_path):
    code, _, _ = export(capsys, str(MODELS / "mobilenet_digits.keras"), "-o", str(tmp_path / "pruned"))
    assert code == 0
    names = [variant["name"] for variant in manifest_of(tmp_path / "pruned")["variants"]]
    assert names == ["fp32", "fp32-sparse", "fp16", "fp16-sparse", "int8-dynamic", "int8-dynamic-sparse"]

    dense = tmp_path / "dense.keras"
    build_tiny_classifier().save(dense)
    code, _, _ = export(capsys, str(dense), "-o", str(tmp_path / "dense"))
    assert code == 0
    assert [v["name"] for v in manifest_of(tmp_path / "dense")["variants"]] == ["fp32", "fp16", "int8-dynamic"]


def test_the_manifest_carries_the_inspection(mobilenet_export):
    inspection = manifest_of(mobilenet_export)["inspection"]
    assert inspection["xnnpack_sparse"]["eligible"] is True
    pointwise = [layer for layer in inspection["layers"] if layer["name"].endswith("_pw")]
    assert pointwise and all(layer["sparsity"] >= 0.85 for layer in pointwise)


def test_a_still_wrapped_model_is_stripped(capsys, tmp_path):
    from edgeprune import tfenv

    tfmot = tfenv.tfmot()
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(build_tiny_classifier())
    path = tmp_path / "wrapped.h5"
    wrapped.save(path)
    code, _, err = export(capsys, str(path), "-o", str(tmp_path / "out"), "--variants", "fp32")
    assert code == 0, err
    manifest = manifest_of(tmp_path / "out")
    assert manifest["source"]["stripped"] is True and manifest["source"]["format"] == "h5"
    assert manifest["variants"][0]["valid"]


def test_a_keras3_model_is_converted(capsys, tmp_path):
    path = tmp_path / "keras3.keras"
    script = ("import keras; m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation='softmax')]);"
              f" m.save({str(path)!r})")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                   env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    code, _, err = export(capsys, str(path), "-o", str(tmp_path / "out"), "--variants", "fp32,int8-dynamic")
    assert code == 0, err
    manifest = manifest_of(tmp_path / "out")
    assert manifest["source"]["format"] == "keras3"
    assert all(variant["valid"] for variant in manifest["variants"])


def test_random_calibration_is_explicit_and_warned(capsys, tmp_path):
    dense = tmp_path / "dense.keras"
    build_tiny_classifier().save(dense)
    code, _, err = export(capsys, str(dense), "-o", str(tmp_path / "out"), "--variants", "int8",
                          "--random-calibration")
    assert code == 0
    assert "warning: full-int8 variants are calibrated on random inputs" in err and "meaningless" in err
    assert manifest_of(tmp_path / "out")["calibration"]["source"] == "random"


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture
def bad_inputs(tmp_path):
    text_model = tmp_path / "notes.keras"
    text_model.write_text("not a model")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((MODELS / "digits_cnn.keras").read_bytes()[:2000])
    return {
        "missing": (["/nonexistent/model.keras", "-o", "OUT"], "does not exist"),
        "text": ([str(text_model), "-o", "OUT"], "notes.keras"),
        "truncated": ([str(truncated), "-o", "OUT"], "truncated.keras"),
        "tflite": ([str(tmp_path / "m.tflite"), "-o", "OUT"], "m.tflite"),
        "unknown variant": ([str(MODELS / "digits_cnn.keras"), "-o", "OUT", "--variants", "fp32,fp64"], "fp64"),
        "int8 without data": ([str(MODELS / "digits_cnn.keras"), "-o", "OUT", "--variants", "int8"], "--calibration"),
        "calibration shape": ([str(MODELS / "digits_cnn.keras"), "-o", "OUT", "--calibration",
                               str(write_npz(tmp_path / "wrong.npz", x=np.zeros((4, 9, 9, 1), np.float32)))],
                              "[N, 8, 8, 1]"),
        "calibration without x": ([str(MODELS / "digits_cnn.keras"), "-o", "OUT", "--calibration",
                                   str(write_npz(tmp_path / "nox.npz", images=np.zeros((4, 8, 8, 1))))], "'x'"),
        "calibration empty": ([str(MODELS / "digits_cnn.keras"), "-o", "OUT", "--calibration",
                               str(write_npz(tmp_path / "empty.npz", x=np.zeros((0, 8, 8, 1), np.float32)))], "empty"),
        "calibration not npz": ([str(MODELS / "digits_cnn.keras"), "-o", "OUT", "--calibration", str(text_model)],
                                "notes.keras"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "tflite", "unknown variant", "int8 without data",
                                  "calibration shape", "calibration without x", "calibration empty",
                                  "calibration not npz"])
def test_bad_input_is_one_clear_line_and_writes_nothing(capsys, tmp_path, bad_inputs, case):
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    args, expected = bad_inputs[case]
    outdir = tmp_path / "exported"
    code, out, err = export(capsys, *[str(outdir) if arg == "OUT" else arg for arg in args])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error:"), err
    assert expected in lines[0]
    assert "Traceback" not in err
    assert not outdir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exported")]


def test_an_existing_foreign_folder_is_not_replaced(capsys, tmp_path):
    outdir = tmp_path / "precious"
    outdir.mkdir()
    (outdir / "thesis.tex").write_text("years of work")
    code, _, err = export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(outdir), "--variants", "fp32")
    assert code == 2 and "not an edgeprune export folder" in err
    assert (outdir / "thesis.tex").read_text() == "years of work"


def test_an_interrupted_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    from edgeprune.convert import export as export_module
    from edgeprune.convert.export import ExportRequest
    from edgeprune.convert.variants import parse_variant_list

    original = export_module.build_variant
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(export_module, "build_variant", interrupted)
    outdir = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export_module.export(ExportRequest(MODELS / "digits_cnn.keras", outdir, parse_variant_list("fp32,fp16")))
    assert list(tmp_path.iterdir()) == []


def test_reexport_replaces_an_earlier_export(capsys, tmp_path):
    outdir = tmp_path / "out"
    assert export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(outdir), "--variants", "fp32,fp16")[0] == 0
    assert export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(outdir), "--variants", "fp32")[0] == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["fp32.tflite", "manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_inspect_reads_an_exported_variant(capsys, digits_export):
    assert main(["inspect", str(digits_export / "fp32-sparse.tflite"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"layers", "totals", "xnnpack_sparse"}
    assert report["totals"]["zeros"] > 0.7 * report["totals"]["params"] * 0.9
    assert any(layer["sparse_encoding"] for layer in report["layers"])
    assert main(["inspect", str(MODELS / "mobilenet_digits.keras")]) == 0
    assert "eligible" in capsys.readouterr().out.lower()
