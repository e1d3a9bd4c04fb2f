"""A folder of images as evaluation data (the second form of ``bench --data``), decoded on the host.

The folder holds image files and, optionally, ``labels.csv``: the header ``file,label``, then one row per image
with its path relative to the folder (subfolders allowed) and its integer class index. With a labels file the
listed images are used, in its order; without one, every image at the top of the folder, by name, unlabelled.
Each image becomes the model's input: alpha dropped, grey and RGB converted into each other, resized
(bilinear, aspect ratio not kept), pixels scaled from [0, 1] into the chosen value range.

An image is decoded whole before it is resized, and a small file may declare a huge image: each header is read
first, and an image of more than ``$EDGEPRUNE_MAX_IMAGE_PIXELS`` pixels (all frames of a GIF) is refused.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import tfenv
from .data import Dataset
from .errors import DataError, UsageError
from .image_header import UnknownImage, decoded_pixels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
LABELS_FILE = "labels.csv"
LABELS_HEADER = ["file", "label"]
LABELS_HINT = (f"{LABELS_FILE} holds the header 'file,label', then one row per image: its path relative to the "
               "folder and its class index")
DEFAULT_IMAGE_RANGE = (0.0, 1.0)
MAX_PIXELS_ENV = "EDGEPRUNE_MAX_IMAGE_PIXELS"
# A 40-megapixel photo decodes to ~1 GB of float32 on its way to the model's size; 20000x20000 would take 6 GB.
DEFAULT_MAX_PIXELS = 40_000_000
# ITU-R BT.601 luma weights; they sum to 1, so a grey image saved as RGB comes back unchanged.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class ImageFolder:
    path: Path
    files: tuple[Path, ...]
    labels: tuple[int, ...] | None
    # The labels file line of each label, to name it once a model says how many classes there are.
    label_lines: tuple[int, ...] = ()


def feeds(input_shape: tuple[int, ...]) -> bool:
    """Whether images can become this input: [H, W, 1] (grey) or [H, W, 3] (RGB)."""
    return len(input_shape) == 3 and input_shape[-1] in (1, 3)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def is_image_folder(path: Path) -> bool:
    """Whether a ``--data`` path is a folder (of images) rather than a file; a path that cannot be looked at is
    a ``DataError`` naming it."""
    try:
        return path.is_dir()
    except OSError as exc:
        raise DataError(f"cannot read data '{path}' ({_reason(exc)})",
                        hint="check the path and its permissions") from exc


def scan_image_folder(path: Path) -> ImageFolder:
    """The folder's images and labels, checked before any image is decoded."""
    labels_file = path / LABELS_FILE
    try:
        labelled = labels_file.is_file()
        # Dotfiles are skipped: macOS leaves '._name.png' metadata files next to copied images.
        files = () if labelled else tuple(sorted(
            item for item in path.iterdir()
            if item.suffix.lower() in IMAGE_SUFFIXES and not item.name.startswith(".") and item.is_file()))
    except OSError as exc:
        raise DataError(f"image folder '{path}' cannot be read ({_reason(exc)})",
                        hint="check the folder's permissions") from exc
    if labelled:
        return read_labels(path, labels_file)
    if not files:
        raise DataError(f"image folder '{path}' has no PNG, JPEG, BMP or GIF files at its top level",
                        hint=f"put the images there, or list them in {LABELS_FILE}: the header 'file,label', then one "
                             "'path,class index' row per image, subfolders allowed")
    return ImageFolder(path, files, None)


def read_labels(folder: Path, labels_file: Path) -> ImageFolder:
    try:
        # utf-8-sig: spreadsheets save CSV with a byte order mark.
        with labels_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"'{labels_file}' is not a readable UTF-8 CSV file ({type(exc).__name__})",
                        hint=LABELS_HINT) from exc
    if not rows or [cell.strip() for cell in rows[0][1]] != LABELS_HEADER:
        found = ",".join(rows[0][1]) if rows else ""
        raise DataError(f"'{labels_file}' line {rows[0][0] if rows else 1}: the header must be 'file,label', "
                        f"found '{found}'", hint=LABELS_HINT)
    if len(rows) == 1:
        raise DataError(f"'{labels_file}' lists no images", hint=LABELS_HINT)
    files, labels, lines = [], [], []
    for line, row in rows[1:]:
        where = f"'{labels_file}' line {line}"
        if len(row) != 2:
            raise DataError(f"{where}: expected 2 fields 'file,label', found {len(row)}", hint=LABELS_HINT)
        name, label = row[0].strip(), row[1].strip()
        if not (label.isascii() and label.isdigit()):
            raise DataError(f"{where}: label '{label}' is not a class index", hint="labels are whole numbers 0, 1, 2, ...")
        try:
            found = (folder / name).is_file()
        except OSError as exc:
            raise DataError(f"{where}: image '{name}' cannot be read in '{folder}' ({_reason(exc)})",
                            hint="check the path and its permissions") from exc
        if not found:
            raise DataError(f"{where}: image '{name}' does not exist in '{folder}'",
                            hint="paths in labels.csv are relative to its folder")
        files.append(folder / name)
        labels.append(int(label))
        lines.append(line)
    return ImageFolder(folder, tuple(files), tuple(labels), tuple(lines))


def load_image_folder(folder: ImageFolder, input_shape: tuple[int, ...], num_classes: int | None,
                      value_range: tuple[float, float] = DEFAULT_IMAGE_RANGE) -> Dataset:
    """Every image as the model's input: x float32 [N, H, W, C] in ``value_range``, y the labels if any."""
    if folder.labels is not None and num_classes is not None:
        for label, line in zip(folder.labels, folder.label_lines):
            if label >= num_classes:
                raise DataError(f"'{folder.path / LABELS_FILE}' line {line}: label {label} is out of range, the model "
                                f"has {num_classes} classes (0..{num_classes - 1})")
    low, high = value_range
    max_pixels = max_image_pixels()
    x = np.stack([model_input(path, input_shape, max_pixels) for path in folder.files])
    y = None if folder.labels is None else np.array(folder.labels, dtype=np.int64)
    return Dataset(folder.path, (low + x * (high - low)).astype(np.float32), y)


def max_image_pixels() -> int:
    """The most pixels one image may decode to: ``$EDGEPRUNE_MAX_IMAGE_PIXELS``, else ``DEFAULT_MAX_PIXELS``."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0):
        raise UsageError(f"${MAX_PIXELS_ENV} must be a whole number of pixels, like 100000000, not {text[:30]!r}")
    return int(text)


def model_input(path: Path, input_shape: tuple[int, ...], max_pixels: int) -> np.ndarray:
    """One image as float32 [H, W, C] in [0, 1]."""
    tf = tfenv.tensorflow()
    height, width, channels = input_shape
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise unreadable(path, type(exc).__name__) from exc
    try:
        pixels = decoded_pixels(data)
    except UnknownImage as exc:
        raise unreadable(path, str(exc)) from None
    if pixels > max_pixels:
        raise DataError(f"'{path}' decodes to {pixels:,} pixels, more than the {max_pixels:,} an image may have",
                        hint=f"shrink it, or allow more with {MAX_PIXELS_ENV}={pixels}")
    try:
        # float32 scales by the file's own bit depth (8 or 16); a GIF gives its first frame.
        image = tf.io.decode_image(data, dtype=tf.float32, expand_animations=False).numpy()
    except tf.errors.ResourceExhaustedError as exc:  # within a raised bound, beyond the memory there is
        raise DataError(f"'{path}': decoding its {pixels:,} pixels needs more memory than there is",
                        hint=f"shrink it, or lower {MAX_PIXELS_ENV} to refuse such images up front") from exc
    except tf.errors.OpError as exc:
        raise unreadable(path, type(exc).__name__) from exc
    if image.shape[-1] in (2, 4):  # grey or RGB with alpha: the model sees no transparency
        image = image[..., :-1]
    if channels == 1 and image.shape[-1] == 3:
        image = image @ LUMA[:, np.newaxis]
    elif channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.shape[:2] != (height, width):
        image = tf.image.resize(image, (height, width), antialias=True).numpy()
    return image


def unreadable(path: Path, reason: str) -> DataError:
    return DataError(f"'{path}' is not a readable PNG, JPEG, BMP or GIF image ({reason})",
                     hint="re-save it, or remove it from the folder and from labels.csv")
