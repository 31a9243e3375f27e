"""LoadedModel -> a checked ONNX file: the torch.onnx call, our graph passes, the exporter's noise
kept quiet, and a content-addressed cache of exports. Nothing here imports the CLI."""

from .cache import cache_dir, cached_export, exported_model
from .exporter import ExportOptions, ExportResult, default_output, export_onnx, make_export_options

__all__ = [
    "ExportOptions",
    "ExportResult",
    "cache_dir",
    "cached_export",
    "default_output",
    "export_onnx",
    "exported_model",
    "make_export_options",
]
