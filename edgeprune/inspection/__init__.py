"""``edgeprune inspect``: per-layer weights, zeros and MACs of a Keras or TFLite model, and whether XNNPACK
would run it with its sparse kernels, and why."""

from .inspector import inspect_loaded_model, inspect_path
from .render import render_inspection
from .report import Finding, InspectionReport, LayerStats, SparseVerdict, Totals

__all__ = [
    "Finding",
    "InspectionReport",
    "LayerStats",
    "SparseVerdict",
    "Totals",
    "inspect_loaded_model",
    "inspect_path",
    "render_inspection",
]
