"""LoadedModel -> a checked ONNX file: the torch.onnx call, our graph passes, the exporter's noise
kept quiet, and a content-addressed cache of exports. Nothing here imports the CLI."""

from .cache import cache_dir, cached_export, exported_model
from .exporter import ExportResult, default_output, export_onnx

__all__ = [
    "ExportResult",
    "cache_dir",
    "cached_export",
    "default_output",
    "export_onnx",
    "exported_model",
]
