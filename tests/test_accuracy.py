"""On-device accuracy: every variant scored where it runs, against labels and the source Keras model."""

import json
import shutil

import numpy as np
import pytest

from edgeprune.accuracy.metrics import SNR_CEILING_DB, compare_outputs
from edgeprune.cli import main
from edgeprune.model.loading import load_model
from fixtures.models import MODELS

EVAL = MODELS / "digits_eval.npz"


@pytest.fixture(scope="module")
def keras_top1() -> tuple[float, np.ndarray]:
    with np.load(EVAL) as data:
        x, y = data["x"], data["y"]
    predictions = load_model(MODELS / "digits_cnn.keras").predict(x).argmax(axis=1)
    return float(np.mean(predictions == y)), predictions


@pytest.mark.slow
def test_on_device_accuracy_matches_the_host(capsys, bench_device, digits_export, keras_top1):
    code = main(["bench", str(digits_export), "--device", bench_device, "--data", str(EVAL), "--runs", "3",
                 "--rounds", "1", "-o", "results.json"])
    out = capsys.readouterr().out
    assert code == 0
    runs = {run["variant"]: run for run in json.loads(open("results.json").read())["runs"]}
    host_top1, _ = keras_top1
    fp32 = runs["fp32"]["accuracy"]
    assert set(fp32) >= {"top1", "top1_agreement", "max_abs_error", "mean_abs_error", "snr_db", "n"}
    assert fp32["n"] == 450 and fp32["top1"] == pytest.approx(host_top1) and fp32["top1_agreement"] == 1.0
    assert fp32["max_abs_error"] < 1e-4 and fp32["snr_db"] > 60
    assert fp32["reference"].endswith("digits_cnn.keras")
    for name in ("int8", "int8-dynamic", "fp16"):
        accuracy = runs[name]["accuracy"]
        assert accuracy["n"] == 450 and 0.9 < accuracy["top1"] <= 1.0
        assert accuracy["max_abs_error"] > fp32["max_abs_error"]  # quantization costs something, and it shows
        assert accuracy["snr_db"] < fp32["snr_db"]
    assert runs["int8"]["accuracy"]["top1_agreement"] < 1.0 or runs["int8"]["accuracy"]["max_abs_error"] > 1e-3
    assert "top-1" in out and f"{host_top1 * 100:.1f}%" in out


def test_metrics_against_labels_and_reference():
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    outputs = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    figures = compare_outputs(outputs, reference, labels=np.array([0, 1, 1]))
    assert figures.top1 == 1.0 and figures.top1_agreement == pytest.approx(2 / 3)
    assert figures.max_abs_error == pytest.approx(0.2) and figures.mean_abs_error == pytest.approx(0.4 / 3)
    expected_snr = 10 * np.log10(np.sum(reference**2) / np.sum((outputs - reference) ** 2))
    assert figures.snr_db == pytest.approx(expected_snr)


def test_label_free_figures_for_non_classifiers():
    reference = np.array([[1.0], [2.0]])
    figures = compare_outputs(reference.copy(), reference, labels=None)
    assert figures.top1 is None and figures.top1_agreement is None and figures.snr_db == SNR_CEILING_DB


def test_non_finite_outputs_are_flagged():
    figures = compare_outputs(np.array([[np.nan, 1.0]]), np.array([[0.0, 1.0]]))
    assert figures.finite is False and figures.max_abs_error is None


def write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "arrays, expected",
    [
        ({"x": np.zeros((5, 9, 9, 1), np.float32)}, "[N, 8, 8, 1]"),
        ({"x": np.zeros((5, 8, 8, 1), np.float32), "y": np.full(5, 12)}, "labels in 'y' range 12..12"),
        ({"x": np.zeros((5, 8, 8, 1), np.float32), "y": np.zeros(4, np.int64)}, "5 integer class labels"),
        ({"x": np.zeros((0, 8, 8, 1), np.float32)}, "empty"),
        ({"x": np.array(["a"] * 5).reshape(5, 1, 1, 1).repeat(8, 1).repeat(8, 2)}, "dtype"),
    ],
)
def test_bad_data_is_one_line_naming_the_file(capsys, isolated_cwd, digits_export, arrays, expected):
    data = write(isolated_cwd / "eval.npz", **arrays)
    code = main(["bench", str(digits_export), "--data", data, "--runs", "1", "-o", "results.json"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "eval.npz" in lines[0] and expected in lines[0], err
    assert not (isolated_cwd / "results.json").exists()


def save_keras_model(path, input_shape: tuple[int, ...], outputs: int) -> str:
    """A small tf_keras model that is not the digits CNN: other inputs or other outputs."""
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    model = keras.Sequential([keras.layers.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(outputs)])
    model.save(path)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("input_shape, outputs, expected", [
    ((4,), 10, "expects input [N, 4], but digits_cnn/{variant} and --data '{data}' have [N, 8, 8, 1]"),
    ((8, 8, 1), 5, "outputs [N, 5], but digits_cnn/{variant} outputs [N, 10]"),
])
def test_a_reference_of_another_model_is_one_line_naming_it(capsys, isolated_cwd, digits_export, input_shape,
                                                            outputs, expected):
    reference = save_keras_model(isolated_cwd / "other.keras", input_shape, outputs)
    code = main(["bench", str(digits_export), "--data", str(EVAL), "--reference", reference, "--runs", "1",
                 "-o", "results.json"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    variant = line.split("digits_cnn/")[1].split(" ")[0]
    assert line == (f"edgeprune: error: reference model '{reference}' {expected.format(variant=variant, data=EVAL)}"
                    " (pass --reference the Keras model digits_cnn was exported from)")
    assert not (isolated_cwd / "results.json").exists()


@pytest.mark.slow
def test_an_export_source_replaced_by_another_model_is_one_line_naming_it(capsys, isolated_cwd, digits_export):
    export = isolated_cwd / "digits_cnn"
    shutil.copytree(digits_export, export)
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    source = save_keras_model(isolated_cwd / "digits_cnn.keras", (8, 8, 1), 5)  # not what was exported
    manifest["source"]["path"] = source
    (export / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    code = main(["bench", str(export), "--data", str(EVAL), "--runs", "1", "-o", "results.json"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the warning that the source changed since the export
    assert line.startswith(f"edgeprune: error: source model '{source}' (recorded in the export manifest of "
                           "digits_cnn) outputs [N, 5], but digits_cnn/")
    assert line.endswith("outputs [N, 10] (it is not the model that was exported: re-run edgeprune export, or pass "
                         "--reference MODEL)")
    assert not (isolated_cwd / "results.json").exists()


def two_headed_model(path):
    """A tf_keras model whose first output (10 classes) the converter does not put first (the 3-wide one is)."""
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(10, activation="softmax", name="digits")(hidden),
                                 keras.layers.Dense(3, name="parity")(hidden)])
    model.save(path)
    return model


@pytest.fixture(scope="module")
def two_headed_export(tmp_path_factory):
    """(the export folder, its source model, evaluation data labelled with the first head's classes 0..9)."""
    folder = tmp_path_factory.mktemp("two-headed")
    source = folder / "two_heads.keras"
    model = two_headed_model(source)
    x = np.random.default_rng(0).standard_normal((24, 6)).astype(np.float32)
    first_head = np.asarray(model(x, training=False)[0])
    y = first_head.argmax(axis=1)
    assert y.max() >= 3  # labels the 3-wide head could not have: scoring it would be refused, not just wrong
    data = folder / "eval.npz"
    np.savez(data, x=x, y=y)
    assert main(["export", str(source), "-o", str(folder / "two_heads"), "--variants", "fp32"]) == 0
    return folder / "two_heads", source, data, first_head


def test_a_multi_output_model_is_scored_on_the_keras_first_output(capsys, isolated_cwd, two_headed_export):
    from edgeprune.model.tflite_file import parse_tflite
    from fixtures.devices import write_inventory

    export, source, data, first_head = two_headed_export
    graph = parse_tflite((export / "fp32.tflite").read_bytes(), "fp32.tflite").model.subgraphs[0]
    widths = [int(graph.tensors[index].shape[-1]) for index in graph.outputs]
    assert widths == [3, 10]  # the premise: the Keras first output is not the variant's output_0
    write_inventory(isolated_cwd, f'[devices.local]\nworkdir = "{isolated_cwd / "workdir"}"\n')
    code = main(["bench", str(export), "--device", "local", "--data", str(data), "--runs", "1", "--rounds", "1",
                 "--threads", "1", "-o", "results.json", "--no-history"])
    err = capsys.readouterr().err
    assert code == 0, err
    [run] = json.loads((isolated_cwd / "results.json").read_text())["runs"]
    accuracy = run["accuracy"]
    assert accuracy["n"] == len(first_head) and accuracy["top1"] == 1.0 and accuracy["top1_agreement"] == 1.0
    assert accuracy["max_abs_error"] < 1e-4 and accuracy["reference"] == str(source)


def test_a_reference_with_other_outputs_than_a_multi_output_variant_is_refused(capsys, isolated_cwd,
                                                                               two_headed_export):
    export, _, data, _ = two_headed_export
    reference = save_keras_model(isolated_cwd / "one_head.keras", (6,), 10)
    code = main(["bench", str(export), "--data", str(data), "--reference", reference, "--runs", "1",
                 "-o", "results.json", "--no-history"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line == (f"edgeprune: error: reference model '{reference}' does not match two_heads/fp32: the variant has 2 "
                    "outputs, the Keras model 1 (pass --reference the Keras model two_heads was exported from)")
    assert not (isolated_cwd / "results.json").exists()
