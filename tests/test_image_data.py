"""A folder of images as evaluation data: decoded on the host, scored on the device like an .npz."""

import json
import os
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from edgeprune import tfenv
from edgeprune.cli import main
from fixtures.privileges import unprivileged
from edgeprune.commands.bench import value_range
from edgeprune.errors import DataError
from edgeprune.image_folder import is_image_folder, load_image_folder, scan_image_folder
from fixtures.models import MODELS

SAMPLES = 50  # enough to compare top-1, few enough to stay fast


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The first SAMPLES of the shipped eval split: x [N, 8, 8, 1] in [0, 1], y class indices."""
    with np.load(MODELS / "digits_eval.npz") as data:
        return data["x"][:SAMPLES], data["y"][:SAMPLES]


def png(pixels: np.ndarray) -> bytes:
    """[H, W, C] in [0, 1] as an 8-bit PNG."""
    return tfenv.tensorflow().io.encode_png(np.round(pixels * 255).astype(np.uint8)).numpy()


def write_folder(folder: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    """One PNG per sample; labels.csv when y is given."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"digit-{index:03d}.png" for index in range(len(x))]
    for name, pixels in zip(names, x):
        (folder / name).write_bytes(png(pixels))
    if y is not None:
        (folder / "labels.csv").write_text("file,label\n" + "".join(f"{n},{label}\n" for n, label in zip(names, y)))
    return folder


def bmp(rgb: np.ndarray) -> bytes:
    """[H, W, 3] uint8 as a 24-bit BMP: bottom-up BGR rows padded to 4 bytes (TensorFlow has no BMP encoder)."""
    height, width, _ = rgb.shape
    row = width * 3 + (-width * 3) % 4
    pixels = b"".join(rgb[y, :, ::-1].tobytes().ljust(row, b"\0") for y in reversed(range(height)))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def bench(*args: str) -> tuple[int, dict[str, dict]]:
    code = main(["bench", *args, "--runs", "1", "--rounds", "1", "--warmup", "0", "--no-history", "-o", "results.json"])
    runs = {run["variant"]: run for run in json.loads(Path("results.json").read_text())["runs"]} if code == 0 else {}
    return code, runs


@pytest.mark.slow
def test_an_image_folder_scores_like_the_npz(isolated_cwd, digits_export, digits):
    x, y = digits
    np.savez(isolated_cwd / "eval.npz", x=x, y=y)
    labelled = write_folder(isolated_cwd / "labelled", x, y)
    unlabelled = write_folder(isolated_cwd / "unlabelled", x)
    models = [str(digits_export / "fp32.tflite"), str(digits_export / "int8.tflite")]

    code, from_npz = bench(*models, "--data", "eval.npz")
    assert code == 0
    code, from_images = bench(*models, "--data", str(labelled))
    assert code == 0
    fp32 = from_images["fp32"]["accuracy"]
    assert fp32["n"] == SAMPLES and fp32["data"] == str(labelled)
    assert fp32["top1"] == from_npz["fp32"]["accuracy"]["top1"] and fp32["top1_agreement"] == 1.0
    assert 0.8 < from_images["int8"]["accuracy"]["top1"] <= 1.0  # quantized inputs went through the same path

    code, label_free = bench(models[0], "--data", str(unlabelled))
    assert code == 0
    figures = label_free["fp32"]["accuracy"]
    assert figures["top1"] is None and figures["top1_agreement"] == 1.0 and figures["snr_db"] > 60


def test_images_become_the_models_input(tmp_path):
    grey = (np.arange(64, dtype=np.float32).reshape(8, 8, 1) * 4) / 255
    (tmp_path / "a-grey.png").write_bytes(png(grey))
    (tmp_path / "b-rgb.jpg").write_bytes(tfenv.tensorflow().io.encode_jpeg(np.full((16, 24, 3), 200, np.uint8)).numpy())
    (tmp_path / "c-rgba.png").write_bytes(png(np.concatenate([np.repeat(grey, 3, -1), np.zeros_like(grey)], -1)))
    (tmp_path / "d.bmp").write_bytes(bmp(np.repeat(np.round(grey * 255).astype(np.uint8), 3, -1)))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._a-grey.png").write_bytes(b"macOS metadata")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "e.png").write_bytes(png(grey))  # below the top: only labels.csv can name it

    folder = scan_image_folder(tmp_path)
    assert [path.name for path in folder.files] == ["a-grey.png", "b-rgb.jpg", "c-rgba.png", "d.bmp"]
    assert folder.labels is None

    as_grey = load_image_folder(folder, (8, 8, 1), None)
    assert as_grey.x.shape == (4, 8, 8, 1) and as_grey.x.dtype == np.float32 and as_grey.y is None
    for index in (0, 2, 3):  # grey, grey saved as RGBA, grey saved as RGB come back unchanged
        np.testing.assert_allclose(as_grey.x[index], grey, atol=1e-6)
    np.testing.assert_allclose(as_grey.x[1], 200 / 255, atol=3 / 255)  # JPEG is lossy; resized from 16x24

    as_rgb = load_image_folder(folder, (32, 32, 3), None, value_range=(-1.0, 1.0))
    assert as_rgb.x.shape == (4, 32, 32, 3) and as_rgb.x.min() >= -1 and as_rgb.x.max() <= 1
    np.testing.assert_allclose(as_rgb.x[1], 2 * 200 / 255 - 1, atol=6 / 255)
    as_bytes = load_image_folder(folder, (8, 8, 1), None, value_range=(0.0, 255.0))
    np.testing.assert_allclose(as_bytes.x[0], grey * 255, atol=1e-4)


def test_labels_csv_picks_the_images_and_their_order(tmp_path, digits):
    x, _ = digits
    write_folder(tmp_path / "7", x[:1])
    write_folder(tmp_path, x[1:2])
    (tmp_path / "labels.csv").write_bytes("\ufefffile, label\r\n7/digit-000.png,7\r\n\r\ndigit-000.png,0\r\n".encode())
    folder = scan_image_folder(tmp_path)  # a spreadsheet's CSV: byte order mark, CRLF, a blank line
    assert folder.files == (tmp_path / "7" / "digit-000.png", tmp_path / "digit-000.png")
    assert folder.labels == (7, 0) and folder.label_lines == (2, 4)
    dataset = load_image_folder(folder, (8, 8, 1), 10)
    np.testing.assert_allclose(dataset.x, x[:2], atol=0.5 / 255)
    assert dataset.y.tolist() == [7, 0]


def test_value_range_option():
    assert value_range("0:1") == (0.0, 1.0) and value_range("-1:1") == (-1.0, 1.0) and value_range("0:255") == (0, 255)
    for bad in ("1", "1:0", "0:x", "0:1:2", "nan:1"):
        with pytest.raises(Exception, match=bad):
            value_range(bad)


def expect_one_line(capsys, code: int, *expected: str) -> None:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], err
    assert not Path("results.json").exists()


LABELS_PROBLEMS = [
    ("image,class\na.png,1\n", "line 1: the header must be 'file,label', found 'image,class'"),
    ("file,label\n", "lists no images"),
    ("file,label\na.png,1\nmissing.png,2\n", "line 3: image 'missing.png' does not exist"),
    ("file,label\na.png,seven\n", "line 2: label 'seven' is not a class index"),
    ("file,label\na.png,-1\n", "line 2: label '-1' is not a class index"),
    ("file,label\n\na.png,1,extra\n", "line 3: expected 2 fields"),
    ("file,label\na.png,1\na.png,12\n", "line 3: label 12 is out of range, the model has 10 classes (0..9)"),
    # A name too long for any file system: looking it up fails (for root too), and says so.
    (f"file,label\na.png,1\n{'x' * 300}.png,2\n", f"line 3: image '{'x' * 300}.png' cannot be read in"),
]


@pytest.mark.slow
@pytest.mark.parametrize("labels, expected", LABELS_PROBLEMS)
def test_a_bad_labels_file_is_one_line_naming_file_and_line(capsys, isolated_cwd, digits_export, digits, labels,
                                                             expected):
    folder = isolated_cwd / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(digits[0][0]))
    (folder / "labels.csv").write_text(labels)
    code = main(["bench", str(digits_export / "fp32.tflite"), "--data", str(folder), "-o", "results.json"])
    expect_one_line(capsys, code, str(folder / "labels.csv"), expected)


@pytest.mark.slow
def test_a_corrupt_image_is_named(capsys, isolated_cwd, digits_export, digits):
    folder = write_folder(isolated_cwd / "images", digits[0][:3])
    (folder / "digit-001.png").write_bytes(png(digits[0][1])[:40])  # cut short
    code = main(["bench", str(digits_export / "fp32.tflite"), "--data", str(folder), "-o", "results.json"])
    expect_one_line(capsys, code, str(folder / "digit-001.png"), "is not a readable PNG, JPEG, BMP or GIF image")


@pytest.mark.slow
def test_an_empty_folder_says_what_it_needs(capsys, isolated_cwd, digits_export):
    (isolated_cwd / "images").mkdir()
    code = main(["bench", str(digits_export / "fp32.tflite"), "--data", "images", "-o", "results.json"])
    expect_one_line(capsys, code, "image folder 'images' has no PNG, JPEG, BMP or GIF files", "labels.csv")


def test_an_image_folder_does_not_fit_a_model_without_image_input(capsys, isolated_cwd, tiny_tflite, digits):
    write_folder(isolated_cwd / "images", digits[0][:1])
    code = main(["bench", str(tiny_tflite), "--data", "images", "-o", "results.json"])
    expect_one_line(capsys, code, "no --data fits", "[N, 4]", "'images' (images, for [N, H, W, 1 or 3] inputs)")


@pytest.mark.parametrize("args, expected", [
    (["--data", "eval.npz", "--image-range", "0:255"], "--image-range scales the images of an image folder"),
    (["--data", "images", "--image-range", "1:0"], "argument --image-range: '1:0'"),
])
def test_image_range_misuse(capsys, isolated_cwd, tiny_tflite, args, expected):
    code = main(["bench", str(tiny_tflite), *args, "-o", "results.json"])
    expect_one_line(capsys, code, expected)




@contextmanager
def locked_folder(mode: int, labels: str | None = None):
    """An image folder (one PNG, maybe labels.csv) with ``mode`` for everyone, under a folder anyone may enter."""
    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o755)
        folder = write_folder(Path(base) / "images", np.zeros((1, 8, 8, 1), np.float32))
        if labels is not None:
            (folder / "sub").mkdir()
            (folder / "labels.csv").write_text(labels)
        locked = folder / "sub" if labels is not None else folder
        os.chmod(locked, mode)
        try:
            yield folder
        finally:
            os.chmod(locked, 0o755)


@pytest.mark.parametrize("mode", [0o111, 0o444], ids=["may-enter-not-list", "may-list-not-enter"])
def test_an_unreadable_image_folder_is_a_data_error_naming_it(mode):
    with locked_folder(mode) as folder, unprivileged(), pytest.raises(DataError) as error:
        scan_image_folder(folder)
    assert error.value.message == f"image folder '{folder}' cannot be read (Permission denied)"


def test_a_labels_entry_in_an_unreadable_subfolder_is_a_data_error_naming_it():
    labels = "file,label\nsub/a.png,1\n"
    with locked_folder(0o444, labels=labels) as folder, unprivileged(), pytest.raises(DataError) as error:
        scan_image_folder(folder)
    assert error.value.message == (f"'{folder / 'labels.csv'}' line 2: image 'sub/a.png' cannot be read in "
                                   f"'{folder}' (Permission denied)")


def test_data_that_cannot_be_looked_at_is_a_data_error_naming_it():
    with locked_folder(0o000) as folder, unprivileged(), pytest.raises(DataError) as error:
        is_image_folder(folder / "eval.npz")
    assert error.value.message == f"cannot read data '{folder / 'eval.npz'}' (Permission denied)"
