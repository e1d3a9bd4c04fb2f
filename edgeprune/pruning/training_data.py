"""TRAIN and EVAL ``.npz`` files for pruning: ``x`` for the model's input, ``y`` integer labels or one-hot rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import checked_inputs, is_one_hot, read_npz
from ..errors import DataError

SPLIT_SEED = 0


@dataclass(frozen=True)
class LabelledData:
    x: np.ndarray
    y: np.ndarray  # as given: integer labels (N,) or one-hot (N, classes)
    source: str  # the file, or which share of it

    @property
    def one_hot(self) -> bool:
        return self.y.ndim == 2

    @property
    def labels(self) -> np.ndarray:
        """Integer class labels, whichever form ``y`` has."""
        return self.y.argmax(axis=1) if self.one_hot else self.y

    def __len__(self) -> int:
        return len(self.x)


def read_labelled(path: Path, input_shape: tuple[int, ...], num_classes: int | None) -> LabelledData:
    arrays = read_npz(path)
    x = checked_inputs(path, arrays, input_shape)
    if "y" not in arrays:
        raise DataError(f"'{path}' has no array 'y' (it has: {', '.join(arrays)})",
                        hint="store the labels as y: integer classes or one-hot rows")
    return LabelledData(x, checked_labels(path, np.asarray(arrays["y"]), len(x), num_classes), str(path))


def checked_labels(path: Path, y: np.ndarray, samples: int, num_classes: int | None) -> np.ndarray:
    if len(y) != samples:
        raise DataError(f"'{path}': 'y' has {len(y)} rows and 'x' {samples}", hint="give one label per sample")
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"'{path}': labels in 'y' range {int(y.min())}..{int(y.max())}, the model has "
                            f"{num_classes} classes (0..{num_classes - 1})")
        return y.astype(np.int64)
    if is_one_hot(y):
        if num_classes is not None and y.shape[1] != num_classes:
            raise DataError(f"'{path}': one-hot 'y' has {y.shape[1]} columns, the model has {num_classes} classes")
        return y.astype(np.float32)
    raise DataError(f"'{path}': 'y' (shape {list(y.shape)}, dtype {y.dtype}) holds neither integer labels nor "
                    "one-hot rows", hint="store y as int labels of shape (N,) or one-hot rows of shape (N, classes)")


def hold_out(data: LabelledData, share: float) -> tuple[LabelledData, LabelledData]:
    """(training, validation): a fixed random ``share`` held out, so reruns see the same split."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data))
    held = max(1, round(len(data) * share))
    if held >= len(data):
        raise DataError(f"'{data.source}' has {len(data)} samples, too few to hold out a validation share",
                        hint="pass --validation EVAL.npz")
    validation, training = order[:held], order[held:]
    return (LabelledData(data.x[training], data.y[training], data.source),
            LabelledData(data.x[validation], data.y[validation], f"{share:.0%} held out of {data.source}"))
