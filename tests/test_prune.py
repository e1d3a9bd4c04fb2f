"""edgeprune prune on real data (scikit-learn's digits, shipped in models/): tfmot's pruning, measured per layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeprune.cli import main
from fixtures.models import MODELS

DENSE = MODELS / "digits_cnn_dense.keras"
TRAIN = MODELS / "digits_train.npz"
EVAL = MODELS / "digits_eval.npz"


def prune_json(capsys, *args: str) -> dict:
    assert main(["prune", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def kernels(path: Path) -> dict[str, np.ndarray]:
    from edgeprune import tfenv

    model = tfenv.tf_keras().models.load_model(path, compile=False)
    return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")}


def test_prune_reaches_the_target_in_every_kernel_and_keeps_top1(capsys, tmp_path):
    output = tmp_path / "pruned.keras"
    report = prune_json(capsys, str(DENSE), "--data", str(TRAIN), "--validation", str(EVAL), "-o", str(output),
                        "--sparsity", "0.8")
    assert {layer["name"] for layer in report["layers"] if layer["target_sparsity"] == 0.8} == \
        {"conv1", "conv2", "dense", "classifier"}
    for name, kernel in kernels(output).items():
        assert 0.78 <= np.mean(kernel == 0) <= 0.82, name
    for layer in report["layers"]:
        assert 0.78 <= layer["achieved_sparsity"] <= 0.82
        assert layer["params_wrapped"] > layer["params_stripped"]  # masks and thresholds while training
    assert report["before"]["top1"] - report["after"]["top1"] <= 0.03
    assert report["top1_drop"] == pytest.approx((report["before"]["top1"] - report["after"]["top1"]) * 100)
    assert "compiled loss" in report["loss"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pruned.keras"]  # nothing left aside
    assert main(["inspect", str(output)]) == 0


def test_m_by_n_leaves_m_zeros_in_every_group_along_the_input_channels(capsys, tmp_path):
    output = tmp_path / "pruned.keras"
    report = prune_json(capsys, str(DENSE), "--data", str(TRAIN), "-o", str(output), "--m-by-n", "2:4",
                        "--epochs", "1")
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert layers["conv1"]["target_sparsity"] is None
    assert "1 input channels do not split into groups of 4" in layers["conv1"]["reason"]
    for name, kernel in kernels(output).items():
        if layers[name]["target_sparsity"] is None:
            continue
        # TFLite's layout puts input channels last: group along Keras' axis -2, within one output channel.
        groups = np.moveaxis(kernel, -1, 0).reshape(-1, kernel.shape[-2] // 4, 4)
        assert (np.sum(groups == 0, axis=-1) >= 2).all(), name


def mobilenet_training_data(folder: Path) -> Path:
    """The digits as the MobileNet-style sample takes them: upscaled 4x by repeating pixels, grey to 3 channels."""
    with np.load(TRAIN) as data:
        x = data["x"].repeat(4, axis=1).repeat(4, axis=2).repeat(3, axis=-1)
        path = folder / "mobilenet_train.npz"
        np.savez(path, x=x[:400], y=data["y"][:400])
    return path


def test_xnnpack_policy_gives_a_model_inspect_calls_eligible(capsys, tmp_path):
    from edgeprune.inspection import inspect_path

    output = tmp_path / "pruned.keras"
    report = prune_json(capsys, str(MODELS / "mobilenet_digits.keras"), "--data", str(mobilenet_training_data(tmp_path)),
                        "-o", str(output), "--policy", "xnnpack", "--sparsity", "0.9", "--epochs", "1")
    pruned = [layer for layer in report["layers"] if layer["target_sparsity"] is not None]
    assert pruned and all(layer["name"].endswith("_pw") for layer in pruned)
    assert all("1x1 convolutions" in layer["reason"] for layer in report["layers"] if layer["target_sparsity"] is None
               and layer["kind"] != "BatchNormalization")
    verdict = inspect_path(output).xnnpack_sparse
    assert verdict.eligible, verdict.reasons


def blocked_mobilenet(path: Path) -> Path:
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.ZeroPadding2D(1)(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="valid")(x)
    x = layers.MaxPooling2D(name="blocker")(x)
    x = layers.Conv2D(16, 1)(x)
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(x))
    keras.Model(inputs, outputs).save(path)
    return path


def test_xnnpack_policy_names_the_layer_that_blocks_it(capsys, tmp_path):
    model = blocked_mobilenet(tmp_path / "blocked.keras")
    data = tmp_path / "data.npz"
    np.savez(data, x=np.zeros((8, 16, 16, 3), np.float32), y=np.arange(8))
    assert main(["prune", str(model), "--data", str(data), "-o", str(tmp_path / "out.keras"),
                 "--policy", "xnnpack"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "layer 'blocker' (MaxPooling2D)" in error
    assert not (tmp_path / "out.keras").exists()


def test_a_model_without_the_sparse_stem_is_refused_in_one_line(capsys, tmp_path):
    assert main(["prune", str(DENSE), "--data", str(TRAIN), "-o", str(tmp_path / "out.keras"),
                 "--policy", "xnnpack"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("edgeprune: error: --policy xnnpack: Could not find `Conv2D 3x3`") and "\n" not in error


def test_skip_layers_leaves_matching_layers_dense(capsys, tmp_path):
    report = prune_json(capsys, str(DENSE), "--data", str(TRAIN), "-o", str(tmp_path / "p.keras"),
                        "--skip-layers", "conv.*|classifier", "--epochs", "1", "--schedule", "constant")
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert [name for name, layer in layers.items() if layer["target_sparsity"]] == ["dense"]
    assert layers["conv2"]["reason"] == "matches --skip-layers 'conv.*|classifier'"
    assert layers["conv2"]["achieved_sparsity"] < 0.05


def test_ctrl_c_during_training_leaves_nothing(tmp_path):
    from edgeprune.pruning.run import PruneRequest, prune

    def interrupt(epoch, logs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prune(PruneRequest(DENSE, TRAIN, tmp_path / "out" / "p.keras"), verbose=0, on_epoch=interrupt)
    assert not list(tmp_path.rglob("*.keras"))


def test_ctrl_c_while_the_model_is_written_leaves_no_partial_file(tmp_path, monkeypatch):
    from edgeprune.pruning import run

    def interrupted_rename(source, target):
        assert Path(source).stat().st_size > 0  # the model is written aside, whole, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(run.os, "replace", interrupted_rename)
    request = run.PruneRequest(DENSE, TRAIN, tmp_path / "p.keras",
                               run.PruneSettings(epochs=1))
    with pytest.raises(KeyboardInterrupt):
        run.prune(request, verbose=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["-o", "out.txt"], "output 'out.txt' must end in .keras or .h5"),
    (["-o", "p.keras", "--m-by-n", "4:4"], "--m-by-n 4:4: M must be at least 1 and below N"),
    (["-o", "p.keras", "--m-by-n", "2:4", "--sparsity", "0.5"], "--m-by-n sets the sparsity"),
    (["-o", "p.keras", "--skip-layers", "("], "--skip-layers '(' is not a regular expression"),
])
def test_bad_prune_input_is_one_line(capsys, isolated_cwd, args, message):
    assert main(["prune", str(DENSE), "--data", str(TRAIN), *args]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_data_without_labels_names_the_file(capsys, isolated_cwd):
    np.savez("nolabels.npz", x=np.zeros((4, 8, 8, 1), np.float32))
    assert main(["prune", str(DENSE), "--data", "nolabels.npz", "-o", "p.keras"]) == 2
    assert "'nolabels.npz' has no array 'y'" in capsys.readouterr().err


def test_one_hot_labels_train_a_model_compiled_with_a_sparse_loss(capsys, tmp_path):
    with np.load(TRAIN) as data:
        one_hot = tmp_path / "one_hot.npz"
        np.savez(one_hot, x=data["x"][:300], y=np.eye(10, dtype=np.float32)[data["y"][:300]])
    report = prune_json(capsys, str(DENSE), "--data", str(one_hot), "-o", str(tmp_path / "p.keras"),
                        "--epochs", "1")
    assert report["loss"].startswith("sparse_categorical_crossentropy (the model's compiled loss)")
    assert report["after"]["top1"] is not None


def test_an_unknown_loss_is_one_line(capsys, isolated_cwd):
    assert main(["prune", str(DENSE), "--data", str(TRAIN), "-o", "p.keras", "--loss", "nonsense"]) == 2
    error = capsys.readouterr().err
    assert "--loss 'nonsense' is not a Keras loss" in error and error.count("\n") == 1
    assert not Path("p.keras").exists()
