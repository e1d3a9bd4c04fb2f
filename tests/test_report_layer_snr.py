"""The HTML report's per-layer SNR plot: each variant's op outputs against fp32's, from the export manifests, for the
models whose exports compared layers, and nothing for the others; names from the manifest shown as text."""

from __future__ import annotations

import base64
import warnings
from dataclasses import replace
from pathlib import Path

from edgeprune.reports import plots
from edgeprune.reports.html import render_html
from edgeprune.reports.report_data import LAYER_SNR_MEANING, collect, variant_layer_snr
from edgeprune.results.document import ResultsDocument
from edgeprune.results.manifest import Manifest, VariantRecord
from test_report import PNG_SIGNATURE, page_elements, run_record, write_export_manifest

HOSTILE_LAYER = "model/$\\frac{a}$<script>alert(1)</script>\x1b[31mred\x07\u202e/Relu"
SNR_ALT = "per-layer SNR against fp32 of digits_cnn"


def layer(op: str, tensor: str, snr_db: float | None, cosine: float | None = 0.9999) -> dict:
    return {"op": op, "reference_tensor": tensor, "candidate_tensor": tensor + "1", "snr_db": snr_db,
            "cosine": None if snr_db is None else cosine, "max_abs_error": None if snr_db is None else 0.01,
            "paired_by": "name"}


def variant(name: str, validation: dict | None, *, valid: bool = True) -> VariantRecord:
    return VariantRecord(name=name, quantization="int8" if name.startswith("int8") else "float32",
                         sparse=name.endswith("-sparse"), file=f"{name}.tflite" if valid else None, size_bytes=1000,
                         gzip_bytes=900, sha256="0" * 64, sparse_tensors=0, valid=valid,
                         error=None if valid else "int8 diverges from fp32", validation=validation)


def write_snr_manifest(folder: Path) -> None:
    """fp32 (no layers), fp16 (no layer diverges), int8 (rejected: diverges at its hostile layer 1, NaN at 2) and
    fp16-sparse (no per-layer figures)."""
    names = ["model/conv1/Relu;model/conv1/BiasAdd", HOSTILE_LAYER, "model/dense/MatMul", "StatefulPartitionedCall:0"]
    fp16 = [layer("CONV_2D", names[0], 72.5), layer("CONV_2D", names[1], 66.0),
            layer("FULLY_CONNECTED", names[2], 200.0), layer("SOFTMAX", names[3], 80.1)]
    int8 = [layer("CONV_2D", names[0], 41.2), layer("CONV_2D", names[1], 18.4, 0.97),
            layer("FULLY_CONNECTED", names[2], None), layer("SOFTMAX", names[3], 12.0, 0.9)]
    Manifest(source={"path": "/models/digits_cnn.keras", "sha256": "0" * 64, "format": "keras", "stripped": False},
             input={"shape": [None, 28, 28, 1], "dtype": "float32"}, created="", edgeprune_version="0.1.0",
             variants=[variant("fp32", {"valid": True, "error": None}),
                       variant("fp16", {"valid": True, "error": None, "layers": fp16, "first_divergent": None}),
                       variant("fp16-sparse", {"valid": True, "error": None}),
                       variant("int8", {"valid": False, "error": "diverges", "layers": int8, "first_divergent": 1,
                                        "float_layers": [names[3]]}, valid=False)]).write(folder)


def results(*models: tuple[str, str]) -> ResultsDocument:
    """fp32 and fp16 runs of each (model, manifest path)."""
    runs = [replace(run_record(name, seed=seed), model=model, export_manifest=manifest)
            for model, manifest in models for seed, name in enumerate(["fp32", "fp16"])]
    return ResultsDocument(created="2025-01-01T00:00:00+00:00", settings={}, runs=runs)


def snr_images(html: str) -> list[dict[str, str]]:
    return [attrs for tag, attrs in page_elements(html) if tag == "img" and "SNR" in attrs.get("alt", "")]


def test_the_manifest_layers_become_one_line_per_variant_with_layers(tmp_path):
    write_snr_manifest(tmp_path / "exp")
    write_export_manifest(tmp_path / "plain")
    data = collect(results(("digits_cnn", "exp/manifest.json"), ("other", "plain/manifest.json")),
                   tmp_path / "results.json")
    [model] = data.layer_snr  # the model whose export compared no layer has none
    assert model.model == "digits_cnn" and model.left_out == ("fp16-sparse",)
    fp16, int8 = model.variants
    assert (fp16.variant, fp16.first_divergent, fp16.valid) == ("fp16", None, True)
    assert (int8.variant, int8.first_divergent, int8.valid, int8.float_layers) == ("int8", 1, False, 1)
    assert [layer.snr_db for layer in int8.layers] == [41.2, 18.4, None, 12.0]
    assert [layer.short_name for layer in int8.layers][::2] == ["conv1", "dense"]
    # The hostile name cleaned as the manifest's other names are: no escape sequence, no control character.
    assert int8.divergent_layer.tensor == "model/$\\frac{a}$<script>alert(1)</script>red\u202e/Relu".replace(
        "\u202e", "")
    headers, rows = data.layer_snr_table(model)
    assert headers[:4] == ["variant", "shipped", "layers", "first divergent"]
    assert [row[:4] for row in rows] == [["fp16", "yes", 4, "none"], ["int8", "no (rejected)", 4, rows[1][3]]]
    assert rows[1][3].startswith("#1 ") and rows[1][7] == "12.0"


def test_html_has_the_snr_plot_for_a_model_with_layers_only(tmp_path):
    write_snr_manifest(tmp_path / "exp")
    write_export_manifest(tmp_path / "plain")
    html = render_html(collect(results(("digits_cnn", "exp/manifest.json"), ("other", "plain/manifest.json")),
                               tmp_path / "results.json"))
    [image] = snr_images(html)
    assert image["alt"] == SNR_ALT
    prefix, _, encoded = image["src"].partition(",")
    assert prefix == "data:image/png;base64" and base64.b64decode(encoded).startswith(PNG_SIGNATURE)
    assert html.count("<h2>Per-layer SNR against fp32</h2>") == 1
    assert LAYER_SNR_MEANING.replace("'", "&#x27;") in html
    assert html.index("<h2>Per-layer sparsity</h2>") < html.index("<h2>Per-layer SNR against fp32</h2>")
    assert "Not plotted, with no per-layer figures in the manifest: fp16-sparse." in html
    # The hostile layer name is text: escaped, no raw tag, no escape or bidirectional character.
    assert "<script>" not in html and "\x1b" not in html and "\u202e" not in html and "\x07" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_snr_section_when_no_variant_has_layers(tmp_path):
    write_export_manifest(tmp_path / "plain")
    html = render_html(collect(results(("other", "plain/manifest.json")), tmp_path / "results.json"))
    assert not snr_images(html) and "Per-layer SNR" not in html
    assert "per-layer sparsity of other" in html


def test_snr_plot_draws_hostile_names_nan_and_clipped_values_without_warnings(tmp_path):
    write_snr_manifest(tmp_path / "exp")
    [model] = collect(results(("$\\frac{a}$ <b>模型</b>", "exp/manifest.json")), tmp_path / "results.json").layer_snr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = plots.layer_snr_png(model)
    assert image.startswith(PNG_SIGNATURE)


def test_a_first_divergent_outside_the_layers_marks_none():
    layers = [layer("CONV_2D", "m/a/Relu", 12.0), layer("SOFTMAX", "m/b/Softmax", 50.0)]
    assert variant_layer_snr("int8", True, {"layers": layers, "first_divergent": 7}).first_divergent is None
    # Without the key (an older export), the first layer below the thresholds.
    assert variant_layer_snr("int8", True, {"layers": layers}).first_divergent == 0
    assert variant_layer_snr("int8", True, {"layers": []}) is None
    assert variant_layer_snr("int8", True, {"layers": None}) is None
    assert variant_layer_snr("fp32", True, None) is None
