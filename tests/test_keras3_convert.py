"""Keras 3 models rebuilt as tf_keras ones: same layers, same outputs, prunable by tfmot; the rest refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeprune import tfenv
from edgeprune.errors import ModelLoadError
from edgeprune.model.keras3_convert import to_tf_keras

PATH = Path("m.keras")


@pytest.fixture(scope="module")
def keras():
    tfenv.tensorflow()  # first, so that TensorFlow comes up with tf_keras as its Keras
    import keras as keras3

    return keras3


def sequential_cnn(keras):
    layers = keras.layers
    return keras.Sequential([
        keras.Input((12, 12, 1), name="image"),
        layers.Conv2D(4, 3, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4), name="conv"),
        layers.BatchNormalization(name="bn"),
        layers.MaxPooling2D(name="pool"),
        layers.Flatten(name="flatten"),
        layers.Dense(8, activation="relu", name="hidden"),
        layers.Dropout(0.25, name="dropout"),
        layers.Dense(3, activation="softmax", name="probabilities"),
    ], name="cnn")


def branched_functional(keras):
    layers = keras.layers
    image = keras.Input((10, 10, 3), name="image")
    stem = layers.Conv2D(6, 3, padding="same", activation="relu", name="stem")(image)
    branch = layers.DepthwiseConv2D(3, padding="same", name="depthwise")(stem)
    branch = layers.BatchNormalization(name="branch_bn")(branch)
    joined = layers.Add(name="add")([stem, branch])
    pooled = layers.GlobalAveragePooling2D(name="gap")(joined)
    outputs = layers.Dense(4, name="logits")(pooled)
    return keras.Model(image, outputs, name="branched")


def with_moved_statistics(model):
    """Non-trivial BatchNormalization statistics, so that copying them is checked too."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("build", [sequential_cnn, branched_functional])
def test_a_keras3_model_becomes_the_same_tf_keras_model(keras, build):
    model = with_moved_statistics(build(keras))
    converted = to_tf_keras(model, PATH)

    assert isinstance(converted, tfenv.tf_keras().Model)
    assert [layer.name for layer in converted.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(0).normal(size=(5, *model.inputs[0].shape[1:])).astype("float32")
    np.testing.assert_allclose(converted(x, training=False), model(x, training=False), atol=1e-5)
    pruned = tfenv.tfmot().sparsity.keras.prune_low_magnitude(converted)
    assert any("prune_low_magnitude" in layer.name for layer in pruned.layers)


def test_a_keras3_only_layer_is_refused_in_one_line(keras):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandomGrayscale(name="gray"),
                              keras.layers.Flatten(name="flatten")])
    with pytest.raises(ModelLoadError) as caught:
        to_tf_keras(model, PATH)

    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.message == ("Keras 3 model 'm.keras' cannot be pruned: layer 'gray' (RandomGrayscale) "
                                    "has no tf_keras equivalent")
    assert "TF_USE_LEGACY_KERAS=1" in caught.value.hint
