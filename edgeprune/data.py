"""Arrays users hand us (calibration and evaluation data), checked against the model before any work."""

from __future__ import annotations

import lzma
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

# What reading a damaged or crafted zip archive (.npz, .keras) raises: zipfile checks little and passes on
# whatever its decompressors and struct parsing raise (an unknown or encrypted member, a corrupt stream ...).
ARCHIVE_READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, NotImplementedError,
                       RuntimeError, zlib.error, lzma.LZMAError)
# numpy parses a .npy header with ast and tokenize, whose errors a damaged header passes on.
NPY_HEADER_ERRORS = (SyntaxError, tokenize.TokenError)


@dataclass(frozen=True)
class Dataset:
    path: Path
    x: np.ndarray
    y: np.ndarray | None


def read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist", hint="check the path")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ARCHIVE_READ_ERRORS + NPY_HEADER_ERRORS as exc:
        raise DataError(f"'{path}' is not a readable .npz file ({type(exc).__name__})",
                        hint="save it with numpy.savez(path, x=..., y=...)") from exc


def checked_inputs(path: Path, arrays: dict[str, np.ndarray], input_shape: tuple[int, ...]) -> np.ndarray:
    if "x" not in arrays:
        raise DataError(f"'{path}' has no array 'x' (it has: {', '.join(arrays) or 'nothing'})",
                        hint="store the model inputs as x")
    x = arrays["x"]
    expected = f"[N, {', '.join(map(str, input_shape))}]"
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"'{path}': array 'x' is empty", hint=f"the model expects {expected} with N >= 1")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"'{path}': array 'x' has shape {list(x.shape)}, the model expects {expected}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"'{path}': array 'x' has dtype {x.dtype}, expected a numeric type")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"'{path}': array 'x' contains NaN or Inf")
    return x


def load_dataset(path: Path, arrays: dict[str, np.ndarray], input_shape: tuple[int, ...],
                 num_classes: int | None) -> Dataset:
    """The data set in ``arrays`` (``read_npz(path)``), checked against the model."""
    x = checked_inputs(path, arrays, input_shape)
    y = arrays.get("y")
    if y is not None:
        y = np.asarray(y).reshape(-1) if np.asarray(y).ndim <= 1 else one_hot_labels(np.asarray(y))
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"'{path}': array 'y' must hold {len(x)} integer class labels or one-hot rows, has shape "
                            f"{list(np.shape(arrays['y']))} and dtype {np.asarray(arrays['y']).dtype}")
        if num_classes is not None and len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"'{path}': labels in 'y' range {int(y.min())}..{int(y.max())}, "
                            f"the model has {num_classes} classes (0..{num_classes - 1})")
    return Dataset(path, x, y)


def is_one_hot(y: np.ndarray) -> bool:
    """Rows of 0s with a single 1: class labels written one-hot."""
    return bool(y.ndim == 2 and np.issubdtype(y.dtype, np.number) and len(y) and np.isin(y, (0, 1)).all()
                and (y.sum(axis=1) == 1).all())


def one_hot_labels(y: np.ndarray) -> np.ndarray:
    """Integer labels from one-hot rows; any other array as it is (the caller says what is wrong with it)."""
    return y.argmax(axis=1) if is_one_hot(y) else y
