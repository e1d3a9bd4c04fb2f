"""What export, inspect and bench must never do with what they are handed: run a model's Python code without the
user's say-so, replace a folder that is not an earlier export (or anything a link in it points to), or leave
staging and retired folders behind when stopped."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgeprune.cli import main
from edgeprune.errors import EXIT_TERMINATED
from fixtures.models import MODELS, build_tiny_classifier

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprune: error: "), err
    return lines[0]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links as links, never followed): what "untouched" compares."""
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                entries[key] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[key] = ("folder",)
            elif path.is_file():
                entries[key] = ("file", path.read_bytes())
            else:  # a FIFO: opening it would block
                entries[key] = ("other", path.stat().st_mode)
    return entries


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".staging-" in p.name or ".retired-" in p.name)


# --- Models that carry code ------------------------------------------------------------------------------------


def marker_writer(marker: Path):
    """A function a Lambda layer serializes as bytecode: it leaves ``marker`` behind whenever it runs."""
    def write_marker(x, marker=str(marker)):
        with open(marker, "a") as handle:
            handle.write("ran\n")
        return x

    return write_marker


# Keras 3 serializes only a lambda expression as bytecode (a named function by its name), and fails to load one
# with default arguments: the marker's path is written into the code.
KERAS3_LAMBDA_SCRIPT = """
import keras
write_marker = lambda x: open({marker!r}, "a").write("ran") and x
inputs = keras.Input((4,))
model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Lambda(write_marker, name="hook")(inputs)))
model.save({path!r})
"""


@pytest.fixture(scope="module")
def code_models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """format -> (a model whose Lambda layer writes a marker file when it runs, that marker file)."""
    from edgeprune import tfenv

    keras = tfenv.tf_keras()
    folder = tmp_path_factory.mktemp("code-models")
    models = {}
    for name, file in (("h5", "hook.h5"), ("keras", "hook.keras"), ("saved_model", "hook_saved_model")):
        marker = folder / f"ran-{name}"
        inputs = keras.Input((4,))
        hooked = keras.layers.Lambda(marker_writer(marker), name="hook")(inputs)
        keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hooked)).save(folder / file)
        models[name] = (folder / file, marker)
    marker = folder / "ran-keras3"
    script = folder / "save_keras3.py"
    script.write_text(KERAS3_LAMBDA_SCRIPT.format(marker=str(marker), path=str(folder / "hook3.keras")))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True,
                   env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    models["keras3"] = (folder / "hook3.keras", marker)
    return models


@pytest.fixture
def code_model(code_models, request) -> tuple[Path, Path]:
    path, marker = code_models[request.param]
    marker.unlink(missing_ok=True)  # building and saving the model ran it
    return path, marker


FORMATS = ["h5", "keras", "saved_model", "keras3"]


def assert_refused_for_code(code: int, err: str) -> None:
    line = one_error_line(err)
    assert code == 2
    assert "carries Python code (Lambda layer 'hook')" in line and "--trust-model-code" in line, line


@pytest.mark.slow
@pytest.mark.parametrize("code_model", FORMATS, indirect=True)
def test_inspect_refuses_a_model_that_carries_code_without_running_it(capsys, code_model):
    path, marker = code_model
    assert_refused_for_code(*run(capsys, "inspect", str(path)))
    assert not marker.exists()

    code, err = run(capsys, "inspect", str(path), "--trust-model-code", "--json")
    assert code == 0, err
    assert marker.exists()  # trusted: Keras built the Lambda layer, running its code


@pytest.mark.slow
@pytest.mark.parametrize("code_model", FORMATS, indirect=True)
def test_export_refuses_a_model_that_carries_code_without_running_it(capsys, tmp_path, code_model):
    path, marker = code_model
    assert_refused_for_code(*run(capsys, "export", str(path), "-o", str(tmp_path / "out")))
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_export_with_trust_model_code_loads_and_converts_the_model(capsys, tmp_path, code_models):
    path, marker = code_models["h5"]
    code, err = run(capsys, "export", str(path), "-o", str(tmp_path / "out"), "--variants", "fp32",
                    "--trust-model-code")
    assert code == 0, err
    assert marker.exists() and (tmp_path / "out" / "fp32.tflite").is_file()


@pytest.fixture(scope="module")
def earlier_export(tmp_path_factory) -> Path:
    """A real export of the tiny classifier (fp32 only), made once; tests copy it."""
    folder = tmp_path_factory.mktemp("earlier")
    model = folder / "tiny.h5"
    build_tiny_classifier().save(model)
    assert main(["export", str(model), "-o", str(folder / "export"), "--variants", "fp32"]) == 0
    return folder / "export"


@pytest.fixture
def eval_data(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "eval.npz"
    np.savez(path, x=rng.standard_normal((16, 4)).astype(np.float32), y=rng.integers(0, 3, 16))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("code_model", ["h5", "saved_model"], indirect=True)
@pytest.mark.parametrize("how", ["--reference", "source in the manifest"])
def test_bench_refuses_a_reference_model_that_carries_code(capsys, isolated_cwd, tiny_tflite, earlier_export,
                                                           eval_data, code_model, how):
    path, marker = code_model
    if how == "--reference":
        args = [str(tiny_tflite), "--reference", str(path)]
    else:  # a hostile export folder names the model to compare with; no option is needed to load it
        export = isolated_cwd / "export"
        shutil.copytree(earlier_export, export)
        manifest = json.loads((export / "manifest.json").read_text())
        manifest["source"]["path"] = str(path)
        (export / "manifest.json").write_text(json.dumps(manifest))
        args = [str(export)]
    assert_refused_for_code(*run(capsys, "bench", *args, "--data", str(eval_data), "--runs", "1", "--rounds", "1"))
    assert not marker.exists()
    assert not (isolated_cwd / "results.json").exists()


@pytest.mark.slow
def test_bench_with_trust_model_code_compares_with_that_model(capsys, isolated_cwd, tiny_tflite, eval_data,
                                                              code_models):
    path, marker = code_models["h5"]
    marker.unlink(missing_ok=True)
    code, err = run(capsys, "bench", str(tiny_tflite), "--reference", str(path), "--data", str(eval_data),
                    "--runs", "1", "--rounds", "1", "--warmup", "0", "--trust-model-code")
    assert code == 0, err
    assert marker.exists()
    run_record = json.loads((isolated_cwd / "results.json").read_text())["runs"][0]
    assert run_record["accuracy"]["reference"] == str(path)


def test_a_custom_object_module_is_never_imported(capsys, tmp_path, monkeypatch):
    """A .keras config may name any module for a layer class; Keras would import it (running it) to find it."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    marker = tmp_path / "imported"
    (plugins / "innocent_layers.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(plugins))
    model = tmp_path / "custom.keras"
    with zipfile.ZipFile(MODELS / "digits_cnn.keras") as source, zipfile.ZipFile(model, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1].update(module="innocent_layers", class_name="Conv2D")
                data = json.dumps(config).encode()
            target.writestr(item, data)
    for command in (["inspect", str(model)], ["export", str(model), "-o", str(tmp_path / "out")]):
        code, err = run(capsys, *command)
        line = one_error_line(err)
        assert code == 2 and "'Conv2D' from module 'innocent_layers'" in line, line
    assert not marker.exists() and "innocent_layers" not in sys.modules
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["model.h5", "model.keras", "saved_model/keras_metadata.pb"])
def test_a_fifo_in_place_of_a_model_file_is_refused_not_waited_on(tmp_path, where):
    if where.startswith("saved_model/"):
        (tmp_path / "saved_model").mkdir()
        (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"")
    os.mkfifo(tmp_path / where)
    model = tmp_path / where.split("/")[0]
    # The bound only catches a reader blocked on the FIFO; a refusal takes seconds.
    result = subprocess.run([sys.executable, "-m", "edgeprune", "inspect", str(model)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert f"'{tmp_path / where}' is not a regular file" in result.stderr.strip().splitlines()[-1]


# --- Which folders export may replace --------------------------------------------------------------------------


def export_to(capsys, outdir: Path | str, *extra: str) -> tuple[int, str]:
    return run(capsys, "export", str(MODELS / "digits_cnn.keras"), "-o", str(outdir), "--variants", "fp32", *extra)


def assert_refused_untouched(capsys, outdir: Path | str, watched: Path, fragment: str) -> None:
    """Export to ``outdir`` is refused with one line holding ``fragment``; nothing under ``watched`` changed."""
    before = snapshot(watched)
    code, err = export_to(capsys, outdir)
    line = one_error_line(err)
    assert code == 2 and fragment in line, line
    assert snapshot(watched) == before
    assert leftovers(watched) == []


def test_a_web_app_with_its_own_manifest_json_is_not_replaced(capsys, tmp_path):
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text(json.dumps({"name": "My App", "start_url": "/", "display": "standalone"}))
    (app / "src" / "index.js").write_text("console.log('years of work')\n")
    (app / "index.html").write_text("<!doctype html>\n")
    assert_refused_untouched(capsys, app, tmp_path, "exists and is not an edgeprune export folder")


def test_a_foreign_manifest_of_another_kind_or_schema_is_not_replaced(capsys, tmp_path, earlier_export):
    outdir = tmp_path / "out"
    shutil.copytree(earlier_export, outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    assert_refused_untouched(capsys, outdir, tmp_path, "exists and is not an edgeprune export folder")


@pytest.mark.parametrize("extra, named", [("notes.txt", "notes.txt"), (".env", ".env"), ("src/app.py", "src"),
                                          ("rejected/notes.txt", "rejected/notes.txt"), ("fp16.tflite", "fp16.tflite")])
def test_an_earlier_export_holding_anything_unlisted_is_not_replaced(capsys, tmp_path, earlier_export, extra, named):
    outdir = tmp_path / "out"
    shutil.copytree(earlier_export, outdir)
    (outdir / extra).parent.mkdir(parents=True, exist_ok=True)
    (outdir / extra).write_text("the user's")
    assert_refused_untouched(capsys, outdir, tmp_path, f"'{named}' is not a")


def test_a_manifest_listing_foreign_files_does_not_make_them_variants(capsys, tmp_path, earlier_export):
    outdir = tmp_path / "out"
    shutil.copytree(earlier_export, outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    manifest["variants"][0]["file"] = "index.html"
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    (outdir / "index.html").write_text("<!doctype html>\n")
    assert_refused_untouched(capsys, outdir, tmp_path, "'fp32.tflite' is not a variant file")


@pytest.mark.parametrize("link", ["variant", "rejected", "manifest", "outdir"])
def test_links_never_let_the_replace_reach_outside(capsys, tmp_path, earlier_export, link):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not edgeprune's")
    outdir = tmp_path / "out"
    shutil.copytree(earlier_export, outdir)
    if link == "variant":
        (outdir / "fp32.tflite").unlink()
        (outdir / "fp32.tflite").symlink_to(outside / "secret.txt")
        fragment = "'fp32.tflite' is not a variant file"
    elif link == "rejected":
        (outdir / "rejected").symlink_to(outside)
        fragment = "'rejected' is not a variant file"
    elif link == "manifest":
        shutil.copy(outdir / "manifest.json", outside / "manifest.json")
        (outdir / "manifest.json").unlink()
        (outdir / "manifest.json").symlink_to(outside / "manifest.json")
        fragment = "has no manifest.json file"
    else:  # OUTDIR is a link to a genuine earlier export elsewhere: the link is judged, not what it points to
        shutil.rmtree(outside)
        outdir.rename(outside)
        outdir.symlink_to(outside)
        fragment = "is a symbolic link"
    assert_refused_untouched(capsys, outdir, tmp_path, fragment)


@pytest.mark.slow
def test_an_earlier_export_with_rejected_variants_is_replaced(capsys, tmp_path, earlier_export):
    outdir = tmp_path / "out"
    shutil.copytree(earlier_export, outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    rejected = dict(manifest["variants"][0], name="fp16", file=None, valid=False, error="mismatch",
                    rejected_file="rejected/fp16.tflite")
    manifest["variants"].append(rejected)
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    (outdir / "rejected").mkdir()
    (outdir / "rejected" / "fp16.tflite").write_bytes(b"TFL3 rejected")
    code, err = export_to(capsys, outdir)
    assert code == 0, err
    assert sorted(p.name for p in outdir.iterdir()) == ["fp32.tflite", "manifest.json"]
    assert json.loads((outdir / "manifest.json").read_text())["source"]["format"] == "keras"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("spelling", [".", "./", "..", "sub/..", "sub/../..", "CWD", "CWD/.."])
def test_the_current_folder_or_one_holding_it_is_refused(capsys, tmp_path, monkeypatch, spelling):
    here = tmp_path / "work" / "here"
    (here / "sub").mkdir(parents=True)
    (here / "notes.txt").write_text("mine")
    monkeypatch.chdir(here)
    outdir = spelling.replace("CWD", str(here))
    before = snapshot(tmp_path)
    code, err = export_to(capsys, outdir)
    line = one_error_line(err)
    assert code == 2 and "is the current folder or holds it" in line, line
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_dot_dot_in_outdir_is_resolved(capsys, tmp_path, monkeypatch):
    here = tmp_path / "work"
    (here / "sub").mkdir(parents=True)
    monkeypatch.chdir(here)
    code, err = export_to(capsys, "sub/../../exported")
    assert code == 0, err
    assert (tmp_path / "exported" / "fp32.tflite").is_file()
    assert leftovers(tmp_path) == [] and leftovers(here) == []


# --- Stopped exports leave nothing behind ----------------------------------------------------------------------


def hold_second_conversion(x, staged="", fifo="", released=""):
    """Blocks once, reading ``fifo``, when TensorFlow traces the model after a variant file matching ``staged``
    is in the staging folder (the second conversion); every other call (loading, the reference outputs, the
    first conversion, the traces after the release) passes."""
    import glob
    import os

    if glob.glob(staged) and not os.path.exists(released):
        with open(fifo) as held:
            held.read()
        open(released, "w").close()
    return x


def open_fifo_writer_once_read(fifo: Path, process: subprocess.Popen, within: float = 300.0) -> int:
    """A write end of ``fifo``, opened once ``process`` holds its read end open (so is blocked on it). The bound
    only catches a broken export: the hold itself does not depend on timing."""
    deadline = time.monotonic() + within
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        assert process.poll() is None, "the export ended before it reached the hold"
        assert time.monotonic() < deadline, f"the export did not reach the hold within {within:g} s"
        time.sleep(0.05)


class HeldExport:
    """``python -m edgeprune export`` of a model whose Lambda layer holds it in its second conversion, into
    ``work/out``, which holds a copy of an earlier export."""

    def __init__(self, tmp_path: Path, earlier_export: Path) -> None:
        from edgeprune import tfenv

        keras = tfenv.tf_keras()
        self.work = tmp_path / "work"
        self.outdir = self.work / "out"
        shutil.copytree(earlier_export, self.outdir)
        self.fifo = tmp_path / "hold.fifo"
        os.mkfifo(self.fifo)
        hold = keras.layers.Lambda(hold_second_conversion, arguments={
            "staged": str(self.work / ".out.staging-*" / "*.tflite"), "fifo": str(self.fifo),
            "released": str(tmp_path / "hold.released")})
        inputs = keras.Input((4,))
        model = tmp_path / "held.h5"
        keras.Model(inputs, keras.layers.Dense(3)(hold(inputs))).save(model)
        self._stderr = tmp_path / "export.stderr"
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
        with self._stderr.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edgeprune", "export", str(model), "-o", str(self.outdir),
                 "--variants", "fp32,fp16", "--trust-model-code"],
                stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path, env=env)
        self._writer: int | None = None

    def wait_until_held(self) -> None:
        self._writer = open_fifo_writer_once_read(self.fifo, self.process)
        assert [p.name for p in self.work.glob(".out.staging-*/*.tflite")] == ["fp32.tflite"]

    def release(self) -> None:
        if self._writer is not None:
            os.close(self._writer)  # the held read sees the end of the FIFO and the export goes on
            self._writer = None

    def finish(self, within: float = 300.0) -> tuple[int, str]:
        try:
            code = self.process.wait(within)
        finally:
            self.release()
            if self.process.poll() is None:
                self.process.kill()
        return code, self._stderr.read_text()


@pytest.fixture
def held_export(tmp_path, earlier_export):
    export = HeldExport(tmp_path, earlier_export)
    yield export
    export.release()
    if export.process.poll() is None:
        export.process.kill()
        export.process.wait()


@pytest.mark.slow
def test_sigterm_during_export_leaves_no_staging_folder_and_the_earlier_export(held_export):
    before = snapshot(held_export.work)
    held_export.wait_until_held()
    held_export.process.send_signal(signal.SIGTERM)
    code, err = held_export.finish(within=120)
    assert code == EXIT_TERMINATED, err
    assert "edgeprune: terminated" in err and "Traceback" not in err
    assert leftovers(held_export.work) == []
    assert snapshot(held_export.work) == before  # the earlier export is untouched


@pytest.mark.slow
def test_a_file_added_to_outdir_during_the_export_stops_the_replace(held_export):
    held_export.wait_until_held()
    (held_export.outdir / "notes.txt").write_text("written while the export ran")
    before = snapshot(held_export.outdir)
    held_export.release()
    code, err = held_export.finish()
    assert code == 2, err
    assert "edgeprune: error: output" in err and "'notes.txt' is not a variant file" in err
    assert [p.name for p in held_export.work.iterdir()] == ["out"]  # the staging folder is gone too
    assert snapshot(held_export.outdir) == before


def test_an_interrupted_swap_puts_the_earlier_folder_back(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM between the two renames of the swap (the only moment OUTDIR is missing)."""
    from edgeprune import fsutil

    target, staging = tmp_path / "out", tmp_path / ".out.staging-x"
    target.mkdir()
    (target / "fp32.tflite").write_bytes(b"earlier")
    staging.mkdir()
    (staging / "fp32.tflite").write_bytes(b"new")
    real_replace = os.replace

    def interrupted_after_first(source, destination):
        if Path(source) == staging:
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(fsutil.os, "replace", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        fsutil.publish_dir(staging, target)
    assert (target / "fp32.tflite").read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.staging-x", "out"]  # the caller removes staging
