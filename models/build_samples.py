"""Build the sample models shipped in models/: two pruned tf_keras classifiers on scikit-learn's digits.

Run from the repository root:  .venv/bin/python models/build_samples.py

Writes, next to this file:
  digits_cnn.keras             small Conv2D/Dense CNN on 8x8x1 digits, 80% of every kernel pruned
  digits_cnn_dense.keras       the same CNN trained but not pruned: where `edgeprune prune` and `sweep` start
  mobilenet_digits.keras       MobileNetV1-style net on 32x32x3 digits whose structure XNNPACK's sparse
                               inference accepts, 90% of every 1x1 convolution pruned
  *_eval.npz                   held-out split: x (float32, model input shape), y (int64)
  *_calibration.npz            x: training samples for full-int8 calibration
  digits_train.npz             the training split: x (float32, 8x8x1), y (int64), for prune and sweep

The data is the UCI digits set bundled inside scikit-learn, so nothing is downloaded. Seeds are fixed and
TensorFlow runs in deterministic-op mode, so a rebuild gives the same weights.
"""

from __future__ import annotations

import os

# tfmot only wraps Keras 2 models; TensorFlow reads this once, at its first import.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

layers = keras.layers

MODELS_DIR = Path(__file__).resolve().parent
SEED = 20240607
TEST_FRACTION = 0.25
BATCH_SIZE = 32
CALIBRATION_SAMPLES = 100
NUM_CLASSES = 10

MOBILENET_UPSCALE = 4  # 8x8 digits -> 32x32, so the stride-2 stages still leave a 4x4 map at the end
# (pointwise filters, depthwise stride) of each depthwise-separable block after the 32-channel stem.
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))

DIGITS_CNN_TARGET_SPARSITY = 0.80
MOBILENET_TARGET_SPARSITY = 0.90
MIN_DIGITS_CNN_ACCURACY = 0.95
MIN_MOBILENET_ACCURACY = 0.90
# XNNPACK needs > 2/3 zeros in the 1x1 convolutions; keep a margin above that.
MIN_POINTWISE_SPARSITY = 0.85


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digit_split() -> Split:
    """UCI digits from scikit-learn as (8, 8, 1) float32 images in [0, 1], split stratified with a fixed seed."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]  # pixel values are 0..16
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SEED
    )
    return Split(x_train, y_train, x_test, y_test)


def to_mobilenet_input(images: np.ndarray) -> np.ndarray:
    """Upscale 8x8x1 to 32x32x3: nearest-neighbour, grey copied to the 3 channels the sparse stem needs.

    Nearest-neighbour repeats pixels exactly, which keeps the shipped .npz files small once compressed.
    """
    upscaled = images.repeat(MOBILENET_UPSCALE, axis=1).repeat(MOBILENET_UPSCALE, axis=2)
    return np.repeat(upscaled, 3, axis=-1)


def build_digits_cnn() -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def batchnorm_relu6(x: tf.Tensor, name: str) -> tf.Tensor:
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def stride2_padding(x: tf.Tensor, name: str) -> tf.Tensor:
    # Keras padding="same" pads stride-2 layers only bottom/right; XNNPACK's sparse path needs 1 pixel all round.
    return layers.ZeroPadding2D(1, name=f"{name}_pad")(x)


def depthwise_separable_block(x: tf.Tensor, filters: int, stride: int, name: str) -> tf.Tensor:
    if stride == 2:
        x = stride2_padding(x, name)
    padding = "valid" if stride == 2 else "same"
    x = layers.DepthwiseConv2D(3, strides=stride, padding=padding, use_bias=False, name=f"{name}_dw")(x)
    x = batchnorm_relu6(x, f"{name}_dw")
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    return batchnorm_relu6(x, f"{name}_pw")


def build_mobilenet_digits() -> keras.Model:
    """MobileNetV1 in miniature, shaped so PruneForLatencyOnXNNPack accepts it and XNNPACK can run it sparse.

    The sparse subgraph must start with a 3x3 stride-2 convolution on 3 channels padded by 1 on each side
    and end in a global average pooling; in between only 1x1 convolutions, 3x3 depthwise convolutions,
    batch norm (folded by the converter) and ReLU6.
    """
    inputs = keras.Input((8 * MOBILENET_UPSCALE, 8 * MOBILENET_UPSCALE, 3), name="image")
    x = stride2_padding(inputs, "stem")
    x = layers.Conv2D(32, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(x)
    x = batchnorm_relu6(x, "stem")
    for index, (filters, stride) in enumerate(MOBILENET_BLOCKS, start=1):
        x = depthwise_separable_block(x, filters, stride, name=f"block{index}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="mobilenet_digits")


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, learning_rate: float,
          callbacks: tuple[keras.callbacks.Callback, ...] = ()) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0, callbacks=list(callbacks))


def prune_and_fine_tune(model: keras.Model, x: np.ndarray, y: np.ndarray, target_sparsity: float, epochs: int,
                        learning_rate: float,
                        pruning_policy: tfmot.sparsity.keras.PruningPolicy | None = None) -> keras.Model:
    """Magnitude-prune a trained model to target_sparsity while fine-tuning, and return it stripped of wrappers."""
    steps_per_epoch = math.ceil(len(x) / BATCH_SIZE)
    # Masks are updated once per epoch; reaching the target after 2/3 of the epochs leaves the rest for recovery.
    # end_step is a multiple of frequency, otherwise the last update would fall short of final_sparsity.
    ramp_epochs = max(1, 2 * epochs // 3)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=ramp_epochs * steps_per_epoch,
        frequency=steps_per_epoch,
    )
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=schedule, pruning_policy=pruning_policy
    )
    train(pruned, x, y, epochs, learning_rate, callbacks=(tfmot.sparsity.keras.UpdatePruningStep(),))
    return tfmot.sparsity.keras.strip_pruning(pruned)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    predictions = model.predict(x, batch_size=256, verbose=0).argmax(axis=-1)
    return float(np.mean(predictions == y))


def prunable_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Weights tfmot can prune, by layer: Conv2D/Dense kernels and DepthwiseConv2D kernels (biases never)."""
    kernels = {}
    for layer in model.layers:
        kernel = getattr(layer, "depthwise_kernel", None)
        if kernel is None:
            kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            kernels[layer.name] = kernel.numpy()
    return kernels


def is_pointwise_conv(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, layers.Conv2D) and layer.kernel_size == (1, 1)


def pointwise_zero_fraction(model: keras.Model) -> float:
    """Zero fraction over all 1x1 convolution weights together, the figure XNNPACK checks against 2/3."""
    weights = np.concatenate([layer.kernel.numpy().ravel() for layer in model.layers if is_pointwise_conv(layer)])
    return float(np.mean(weights == 0.0))


def report(model: keras.Model, held_out_accuracy: float) -> None:
    print(f"\n== {model.name}")
    print(f"held-out accuracy: {held_out_accuracy:.4f}")
    print("zero fraction of prunable weights (kernels), per layer:")
    for name, kernel in prunable_kernels(model).items():
        print(f"  {name:<16} {np.mean(kernel == 0.0):6.1%} of {kernel.size:>6} weights")


def save_model(model: keras.Model, name: str) -> None:
    model.save(MODELS_DIR / f"{name}.keras")


def save_data(name: str, x_eval: np.ndarray, y_eval: np.ndarray, x_train: np.ndarray) -> None:
    # Compressed: the upscaled MobileNet inputs repeat every pixel 48 times and shrink ~80x.
    np.savez_compressed(MODELS_DIR / f"{name}_eval.npz", x=x_eval, y=y_eval)
    # The split is already shuffled, so the first training samples are a fair calibration set.
    np.savez_compressed(MODELS_DIR / f"{name}_calibration.npz", x=x_train[:CALIBRATION_SAMPLES])


def require(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"build_samples: {message}")


def build_digits_cnn_sample(split: Split) -> None:
    keras.utils.set_random_seed(SEED)
    model = build_digits_cnn()
    train(model, split.x_train, split.y_train, epochs=30, learning_rate=1e-3)
    save_dense_digits_cnn(model, split)
    model = prune_and_fine_tune(model, split.x_train, split.y_train, DIGITS_CNN_TARGET_SPARSITY,
                                epochs=15, learning_rate=5e-4)
    held_out_accuracy = accuracy(model, split.x_test, split.y_test)
    report(model, held_out_accuracy)
    require(held_out_accuracy >= MIN_DIGITS_CNN_ACCURACY,
            f"digits_cnn accuracy {held_out_accuracy:.4f} < {MIN_DIGITS_CNN_ACCURACY}")
    save_model(model, "digits_cnn")
    save_data("digits", split.x_test, split.y_test, split.x_train)


def save_dense_digits_cnn(model: keras.Model, split: Split) -> None:
    """The trained, unpruned CNN (compiled: prune reuses its loss and optimizer) and the data it was trained on."""
    held_out_accuracy = accuracy(model, split.x_test, split.y_test)
    print(f"\n== digits_cnn_dense\nheld-out accuracy: {held_out_accuracy:.4f}")
    require(held_out_accuracy >= MIN_DIGITS_CNN_ACCURACY,
            f"digits_cnn_dense accuracy {held_out_accuracy:.4f} < {MIN_DIGITS_CNN_ACCURACY}")
    save_model(model, "digits_cnn_dense")
    np.savez_compressed(MODELS_DIR / "digits_train.npz", x=split.x_train, y=split.y_train)


def build_mobilenet_sample(split: Split) -> None:
    keras.utils.set_random_seed(SEED)
    x_train, x_test = to_mobilenet_input(split.x_train), to_mobilenet_input(split.x_test)
    model = build_mobilenet_digits()
    train(model, x_train, split.y_train, epochs=20, learning_rate=1e-3)
    # The policy refuses graphs XNNPACK could not run sparse, and wraps only the 1x1 convolutions.
    model = prune_and_fine_tune(model, x_train, split.y_train, MOBILENET_TARGET_SPARSITY, epochs=15,
                                learning_rate=5e-4,
                                pruning_policy=tfmot.sparsity.keras.PruneForLatencyOnXNNPack())
    held_out_accuracy = accuracy(model, x_test, split.y_test)
    report(model, held_out_accuracy)
    pointwise_sparsity = pointwise_zero_fraction(model)
    print(f"zero fraction of all 1x1 conv weights: {pointwise_sparsity:.1%}")
    require(held_out_accuracy >= MIN_MOBILENET_ACCURACY,
            f"mobilenet_digits accuracy {held_out_accuracy:.4f} < {MIN_MOBILENET_ACCURACY}")
    require(pointwise_sparsity >= MIN_POINTWISE_SPARSITY,
            f"mobilenet_digits 1x1 sparsity {pointwise_sparsity:.3f} < {MIN_POINTWISE_SPARSITY}")
    save_model(model, "mobilenet_digits")
    save_data("mobilenet_digits", x_test, split.y_test, x_train)


def main() -> None:
    tf.config.experimental.enable_op_determinism()
    split = load_digit_split()
    print(f"digits: {len(split.x_train)} training and {len(split.x_test)} held-out images")
    build_digits_cnn_sample(split)
    build_mobilenet_sample(split)


if __name__ == "__main__":
    main()
