"""Prune a trained tf_keras model with tfmot while fine-tuning it, strip the wrappers, and measure what it cost.

The wrapped model shares the original's layers (as ``prune_low_magnitude`` does), so the score before pruning is
taken first.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import tfenv
from ..errors import UsageError
from .layer_choice import dense_reasons
from .report import LayerPruning, PruneReport, Score
from .settings import PruneSettings
from .training_data import LabelledData

DEFAULT_LEARNING_RATE = 1e-3  # Adam's own default, when the model brings no optimizer
MASK_UPDATES_PER_EPOCH = 4
RAMP_SHARE = 2 / 3  # the polynomial schedule reaches its target here and leaves the rest for recovery
SEED = 0


@dataclass(frozen=True)
class Training:
    """How the model is fine-tuned: its own compiled loss and optimizer when it was saved with them."""
    loss: Any
    optimizer: Any
    description: str
    classes: int  # the model's outputs per sample

    def targets(self, data: LabelledData) -> np.ndarray:
        """``y`` in the form the loss takes: integer labels for a sparse cross-entropy, one-hot rows for a
        categorical one, as given otherwise."""
        name = loss_name(self.loss)
        if "sparse_categorical" in name:
            return data.labels
        if "categorical" in name and not data.one_hot:
            return np.eye(self.classes, dtype=np.float32)[data.labels]
        return data.y


@dataclass(frozen=True)
class PrunedModel:
    model: Any  # stripped tf_keras model
    report: PruneReport


def prune_model(model: Any, train: LabelledData, validation: LabelledData, settings: PruneSettings, *, name: str,
                sha256: str, verbose: int = 2,
                on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> PrunedModel:
    """``model``: compiled when it was saved with its training config (its loss and optimizer are then used).
    ``verbose``: Keras' progress (1 a bar with ETA, 2 a line per epoch, 0 none), written to stderr."""
    keras = tfenv.tf_keras()
    sparsity_api = tfenv.tfmot().sparsity.keras
    keras.utils.set_random_seed(SEED)
    reasons = dense_reasons(model, settings)
    training = training_for(model, train, settings)
    before = score(model, training, validation)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    if settings.m_by_n and steps_per_epoch * settings.epochs < 2:
        raise UsageError("--m-by-n needs at least 2 training steps: tfmot applies the M:N masks after the first",
                         hint="train on more data, or with more --epochs or a smaller --batch-size")
    wrapper_options = {"pruning_schedule": schedule(settings, steps_per_epoch),
                       "sparsity_m_by_n": settings.m_by_n}

    def wrap(layer: Any) -> Any:
        if reasons.get(layer.name, "no weights") is not None:
            return layer
        return sparsity_api.prune_low_magnitude(layer, **wrapper_options)

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    wrapped.compile(optimizer=training.optimizer, loss=training.loss, metrics=["accuracy"])
    callbacks = [sparsity_api.UpdatePruningStep()]
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch, logs or {})))
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Keras' progress is for the eye; stdout stays for --json
        wrapped.fit(train.x, training.targets(train), batch_size=settings.batch_size, epochs=settings.epochs,
                    shuffle=True, validation_data=(validation.x, training.targets(validation)), callbacks=callbacks,
                    verbose=verbose)
    train_seconds = time.perf_counter() - started
    stripped = sparsity_api.strip_pruning(wrapped)
    report = PruneReport(
        model=name, model_sha256=sha256, settings=settings, validation=validation.source,
        loss=training.description, before=before, after=score(stripped, training, validation),
        layers=layer_figures(wrapped, stripped, reasons, settings), train_seconds=round(train_seconds, 3),
    )
    return PrunedModel(stripped, report)


def schedule(settings: PruneSettings, steps_per_epoch: int) -> Any:
    sparsity_api = tfenv.tfmot().sparsity.keras
    frequency = max(1, steps_per_epoch // MASK_UPDATES_PER_EPOCH)
    if settings.schedule == "constant":
        return sparsity_api.ConstantSparsity(settings.sparsity, begin_step=0, frequency=frequency)
    total_steps = steps_per_epoch * settings.epochs
    # end_step on a mask update, else the last update falls short of the final sparsity.
    end_step = max(frequency, int(total_steps * RAMP_SHARE) // frequency * frequency)
    return sparsity_api.PolynomialDecay(initial_sparsity=settings.start_sparsity, final_sparsity=settings.sparsity,
                                        begin_step=0, end_step=end_step, frequency=frequency)


def training_for(model: Any, train: LabelledData, settings: PruneSettings) -> Training:
    keras = tfenv.tf_keras()
    if settings.loss is not None:
        loss, loss_source = settings.loss, "--loss"
    elif getattr(model, "loss", None) is not None:
        loss, loss_source = model.loss, "the model's compiled loss"
    else:
        loss, loss_source = default_loss(model, train), "fits y"
    try:
        loss_object = keras.losses.get(loss)
    except ValueError:
        raise UsageError(f"--loss '{settings.loss}' is not a Keras loss",
                         hint="e.g. sparse_categorical_crossentropy or categorical_crossentropy") from None
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        config = keras.optimizers.serialize(optimizer)  # a fresh copy: none of the original training's state
        if settings.learning_rate is not None:
            config["config"]["learning_rate"] = settings.learning_rate
        optimizer, optimizer_source = keras.optimizers.deserialize(config), "the model's compiled optimizer"
    else:
        optimizer = keras.optimizers.Adam(settings.learning_rate or DEFAULT_LEARNING_RATE)
        optimizer_source = "Adam"
    learning_rate = float(keras.backend.get_value(optimizer.learning_rate))
    return Training(loss_object, optimizer,
                    f"{loss_name(loss_object)} ({loss_source}); {optimizer_source}, learning rate {learning_rate:g}",
                    classes=int(model.outputs[0].shape[-1] or 1))


def default_loss(model: Any, train: LabelledData) -> Any:
    """Cross-entropy for the labels' form (binary for one output); from logits unless the model's outputs are
    probabilities."""
    keras = tfenv.tf_keras()
    sample = np.asarray(model(train.x[:64], training=False))
    if sample.shape[-1] == 1:
        return keras.losses.BinaryCrossentropy(from_logits=not bool(sample.min() >= 0 and sample.max() <= 1))
    probabilities = bool(sample.min() >= 0 and np.allclose(sample.sum(axis=-1), 1.0, atol=1e-3))
    loss_class = keras.losses.CategoricalCrossentropy if train.one_hot else keras.losses.SparseCategoricalCrossentropy
    return loss_class(from_logits=not probabilities)


def loss_name(loss: Any) -> str:
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return f"{name}, from logits" if getattr(loss, "get_config", None) and loss.get_config().get("from_logits") \
        else str(name)


def score(model: Any, training: Training, data: LabelledData) -> Score:
    """Top-1 for a classifier (two or more outputs), and the loss (a loss function gives one per sample)."""
    outputs = np.asarray(model.predict(data.x, batch_size=256, verbose=0))
    top1 = float(np.mean(outputs.argmax(axis=-1) == data.labels)) if outputs.ndim == 2 and training.classes > 1 \
        else None
    return Score(top1=top1, loss=float(np.mean(training.loss(training.targets(data), outputs))))


def layer_figures(wrapped: Any, stripped: Any, reasons: dict[str, str | None],
                  settings: PruneSettings) -> list[LayerPruning]:
    wrappers = {getattr(layer, "layer", layer).name: layer for layer in wrapped.layers}
    figures = []
    for layer in stripped.layers:
        if layer.name not in reasons:
            continue
        wrapper = wrappers[layer.name]
        prunable = list(getattr(wrapper, "prunable_weights", []))
        reason = reasons[layer.name]
        if reason is None and not prunable:
            reason = f"tfmot prunes none of a {type(layer).__name__}'s weights"
        # The wrapper's prunable weights are the stripped layer's own variables, masked by now.
        weights = np.concatenate([np.asarray(weight).ravel() for weight in prunable]) if prunable else np.zeros(0)
        figures.append(LayerPruning(
            name=layer.name, kind=type(layer).__name__,
            target_sparsity=None if reason else settings.target_sparsity,
            prunable_weights=int(weights.size),
            achieved_sparsity=float(np.mean(weights == 0)) if weights.size else zero_share(layer),
            params_wrapped=int(wrapper.count_params()), params_stripped=int(layer.count_params()),
            reason=reason,
        ))
    return figures


def zero_share(layer: Any) -> float:
    """Zeros in a dense layer's largest weight (its kernel), for comparison with the pruned ones."""
    largest = max((np.asarray(weight) for weight in layer.get_weights()), key=np.size)
    return float(np.mean(largest == 0))
