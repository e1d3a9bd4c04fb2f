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
    assert "edgeprune: error: variant 'int8-dynamic-sparse' was rejected: with XNNPACK" in err
    assert "fp32" in out and (tmp_path / "out" / "fp32.tflite").is_file()


def test_a_rejected_variant_of_the_default_set_is_a_note_under_the_table(capsys, tmp_path):
    """The digits CNN's int8-sparse fails to prepare in XNNPACK (a sparse int8 FULLY_CONNECTED): picked by
    default, its rejection is a short note, not an error, and the export succeeds with the rest."""
    code, out, err = export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(tmp_path / "out"),
                            "--calibration", str(MODELS / "digits_calibration.npz"))
    assert code == 0, err
    assert not [line for line in err.splitlines() if line.startswith("edgeprune:")], err
    assert "  int8-sparse: rejected (the reason follows the table)" in err
    table, _, after = out.partition("\n\nnot shipped")
    assert "int8-sparse" in table and "rejected" in table.splitlines()[-1]
    notes = [line for line in after.splitlines() if line.startswith("  ")]
    assert [line.split(":")[0].strip() for line in notes] == ["int8-sparse"]
    assert all(len(line) <= 2 + len("int8-sparse: ") + 100 for line in notes)
    assert "FULLY_CONNECTED" in notes[0] and str(tmp_path / "out") + "/manifest.json" in after


def test_all_variants_succeed_while_one_is_deliverable(capsys, tmp_path):
    """'all' is an offer: the known-broken combinations are built, rejected with the reason, and the exit is 0."""
    code, out, err = export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(tmp_path / "out"),
                            "--variants", "all", "--calibration", str(MODELS / "digits_calibration.npz"))
    assert code == 0 and not [line for line in err.splitlines() if line.startswith("edgeprune:")], err
    rejected = [v["name"] for v in manifest_of(tmp_path / "out")["variants"] if not v["valid"]]
    assert rejected == ["int8-dynamic-sparse", "int8-sparse"]
    assert all(f"  {name}: " in out for name in rejected)


def test_default_variants_follow_the_model_and_data(capsys, tmp_path):
    code, _, _ = export(capsys, str(MODELS / "mobilenet_digits.keras"), "-o", str(tmp_path / "pruned"))
    assert code == 0
    names = [variant["name"] for variant in manifest_of(tmp_path / "pruned")["variants"]]
    # int8-dynamic-sparse, which XNNPACK cannot prepare, is built only when named.
    assert names == ["fp32", "fp32-sparse", "fp16", "fp16-sparse", "int8-dynamic"]

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
    outdir = tmp_path / "new" / "exported"  # its parent too is made by the export, and removed when it fails
    code, out, err = export(capsys, *[str(outdir) if arg == "OUT" else arg for arg in args])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error:"), err
    assert expected in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "new").exists()


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
    from edgeprune.variants import parse_variant_list

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


def runner_client():
    from edgeprune.board.runner import RunnerClient, runner_script
    from edgeprune.devices.local import LocalDevice

    return RunnerClient(LocalDevice(), str(runner_script()))


def test_a_quantized_variant_with_garbage_weights_is_caught_even_on_random_inputs(tmp_path):
    from edgeprune import tfenv
    from edgeprune.convert.validation import MIN_QUANTIZED_SNR_DB, validate_variant
    from edgeprune.model.outputs import reference_outputs
    from edgeprune.variants import VARIANTS
    from fixtures.models import convert

    model = build_tiny_classifier()
    garbage = tfenv.tf_keras().models.clone_model(model)
    rng = np.random.default_rng(0)
    garbage.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 3 for w in model.get_weights()])
    (tmp_path / "good.tflite").write_bytes(convert(model))
    (tmp_path / "garbage.tflite").write_bytes(convert(garbage))
    inputs = rng.standard_normal((32, 4)).astype(np.float32)
    reference = reference_outputs(model, inputs)
    runner = runner_client()
    for real_inputs in (False, True):  # without calibration data the old check only looked for NaN/Inf
        bad = validate_variant(tmp_path / "garbage.tflite", VARIANTS["int8-dynamic"], inputs, reference,
                               real_inputs=real_inputs, runner=runner)
        assert bad.valid is False and "output SNR against Keras is" in bad.error, bad.error
        assert bad.xnnpack["snr_db"] < MIN_QUANTIZED_SNR_DB and bad.criteria["min_snr_db"] == MIN_QUANTIZED_SNR_DB
        good = validate_variant(tmp_path / "good.tflite", VARIANTS["int8-dynamic"], inputs, reference,
                                real_inputs=real_inputs, runner=runner)
        assert good.valid, good.error
        assert good.criteria["min_top1_agreement"] == (0.9 if real_inputs else None)


def test_quantized_bounds_snr_always_and_top1_agreement_on_real_inputs():
    from edgeprune.accuracy.metrics import OutputComparison
    from edgeprune.convert.validation import judge
    from edgeprune.variants import VARIANTS

    reference = np.eye(3, dtype=np.float32)

    def figures(snr_db, agreement):
        return OutputComparison(3, True, None, agreement, 0.1, 0.01, snr_db)

    for name in ("int8-dynamic", "int8", "int8-sparse"):
        spec = VARIANTS[name]
        assert judge(spec, figures(33.0, 1.0), reference, real_inputs=False) is None
        assert "19.0 dB, below 20 dB" in judge(spec, figures(19.0, 1.0), reference, real_inputs=False)
        assert "below 20 dB" in judge(spec, figures(10.0, 1.0), reference, real_inputs=True)
        assert judge(spec, figures(40.0, 0.6), reference, real_inputs=False) is None  # random inputs: no top-1 floor
        assert "top-1 agreement with Keras is 88%, below 90%" in judge(spec, figures(40.0, 0.875), reference,
                                                                         real_inputs=True)
        assert judge(spec, figures(40.0, 0.9), reference, real_inputs=True) is None


def three_headed_model(broken_head: str | None = None):
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    # Named so that neither the Keras order nor the alphabetical one is the order the converter writes.
    heads = [keras.layers.Dense(3, name="zeta")(hidden), keras.layers.Dense(5, name="alpha")(hidden),
             keras.layers.Dense(3, activation="softmax", name="beta")(hidden)]
    model = keras.Model(inputs, heads)
    if broken_head:
        kernel, bias = model.get_layer(broken_head).get_weights()
        model.get_layer(broken_head).set_weights([-5 * kernel, bias])
    return model


def test_every_output_of_a_multi_output_model_is_compared(tmp_path):
    from edgeprune.convert.validation import validate_variant
    from edgeprune.model.outputs import reference_outputs
    from edgeprune.variants import VARIANTS
    from fixtures.models import convert

    model = three_headed_model()
    inputs = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    reference = reference_outputs(model, inputs)
    assert [ref.label for ref in reference] == ["zeta", "alpha", "beta"]
    runner = runner_client()
    (tmp_path / "good.tflite").write_bytes(convert(model))
    good = validate_variant(tmp_path / "good.tflite", VARIANTS["fp32"], inputs, reference, real_inputs=False,
                            runner=runner)
    assert good.valid, good.error
    assert [output["name"] for output in good.builtin["outputs"]] == ["zeta", "alpha", "beta"]
    assert all(output["max_abs_error"] < 1e-4 for output in good.builtin["outputs"])
    # The second Keras output is wrong; the converter does not put it second, and it must still be found.
    (tmp_path / "broken.tflite").write_bytes(convert(three_headed_model(broken_head="alpha")))
    for name in ("fp32", "int8-dynamic"):
        broken = validate_variant(tmp_path / "broken.tflite", VARIANTS[name], inputs, reference, real_inputs=False,
                                  runner=runner)
        assert broken.valid is False and broken.error.startswith("with XNNPACK: output 'alpha': "), broken.error
        figures = {output["name"]: output for output in broken.xnnpack["outputs"]}
        assert figures["zeta"]["max_abs_error"] < 1e-4 and figures["beta"]["max_abs_error"] < 1e-4


def igamma(x):
    import tensorflow as tf

    return tf.math.igamma(tf.abs(x) + 1.0, tf.abs(x) + 1.0)


def test_an_export_with_nothing_deliverable_fails_the_command(capsys, tmp_path):
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    inputs = keras.Input((4,))
    # tf.math.igamma has no TFLite builtin kernel: every variant fails to convert.
    special = keras.layers.Lambda(igamma)(inputs)
    path = tmp_path / "igamma.h5"
    keras.Model(inputs, keras.layers.Dense(3)(special)).save(path)
    # Default variants (none named); the Lambda layer is Python code, so loading it takes the user's trust.
    code, _, err = export(capsys, str(path), "-o", str(tmp_path / "out"), "--trust-model-code")
    assert code == 1
    assert "edgeprune: error: no variant is deliverable: all 3 variants were rejected" in err
    manifest = manifest_of(tmp_path / "out")
    assert [v["name"] for v in manifest["variants"]] == ["fp32", "fp16", "int8-dynamic"]
    assert not any(v["valid"] for v in manifest["variants"])
    assert "the TFLite converter failed" in manifest["variants"][0]["error"]


@pytest.mark.parametrize("where", ["under a file", "read-only"])
def test_an_unwritable_outdir_is_one_clear_line(capsys, tmp_path, where):
    if where == "under a file":
        (tmp_path / "notes.txt").write_text("a file, not a folder")
        outdir = tmp_path / "notes.txt" / "out"
    else:
        if not Path("/sys").is_dir():
            pytest.skip("needs /sys (a file system where nobody, root included, can create folders)")
        outdir = Path("/sys/edgeprune-export-test")
    code, _, err = export(capsys, str(MODELS / "digits_cnn.keras"), "-o", str(outdir), "--variants", "fp32")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error: cannot "), err
    assert str(outdir) in lines[0] and "Traceback" not in err
    assert not outdir.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["notes.txt"] if where == "under a file" else [])


def export_in_fresh_process(folder: Path, *args: str) -> tuple[str, str]:
    """``edgeprune export ARGS`` in a new process: (its exit status and whether it imported TensorFlow, stderr)."""
    script = ("import sys; from edgeprune.cli import main; "
              f"code = main(['export', *{list(args)!r}]); print(code, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=folder)
    return done.stdout.strip(), done.stderr


def test_an_unwritable_outdir_is_reported_before_tensorflow_loads(tmp_path):
    outcome, err = export_in_fresh_process(tmp_path, str(MODELS / "digits_cnn.keras"), "-o", "/proc/edgeprune-nope")
    assert outcome == "2 False", err
    assert err.startswith("edgeprune: error: cannot ") and "/proc/edgeprune-nope" in err


def test_a_missing_calibration_file_is_reported_before_tensorflow_loads(tmp_path):
    outcome, err = export_in_fresh_process(tmp_path, str(MODELS / "digits_cnn.keras"), "-o", "out",
                                           "--calibration", "nope.npz")
    assert outcome == "2 False", err
    assert "nope.npz" in err and [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_the_export_folder_honours_the_umask(tmp_path, umask):
    script = (f"import os; os.umask({umask}); from edgeprune.cli import main; "
              f"raise SystemExit(main(['export', {str(MODELS / 'digits_cnn.keras')!r}, '-o', 'out', "
              "'--variants', 'fp32,int8-dynamic-sparse']))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # the named int8-dynamic-sparse is rejected, into rejected/
    folder_mode = 0o777 & ~umask
    assert (tmp_path / "out").stat().st_mode & 0o777 == folder_mode
    assert (tmp_path / "out" / "rejected").stat().st_mode & 0o777 == folder_mode
    for file in ("manifest.json", "fp32.tflite", "rejected/int8-dynamic-sparse.tflite"):
        assert (tmp_path / "out" / file).stat().st_mode & 0o777 == 0o666 & ~umask, file
