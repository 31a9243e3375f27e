"""inspector: summarize, export, verify and view PyTorch models.

The Python API mirrors the command line; heavy backends load on first use:

    import inspector
    loaded = inspector.load_model("exercise_model")
    print(inspector.summarize(loaded))
"""

import os
from importlib import import_module

__version__ = "0.1.0"

# onnxruntime >= 1.32 starts Microsoft's telemetry client when imported (it writes $TMPDIR/.ses and
# can send usage events); a model inspector has no business reporting on its users. Set
# ORT_DISABLE_TELEMETRY=0 yourself to opt back in.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# name -> module that defines it; imported on first access so `import inspector` stays light.
_API = {
    "ExitStatus": "errors",
    "InspectorError": "errors",
    "LoadedModel": "loading",
    "load_model": "loading",
    "register_model": "models",
    "list_models": "models",
    "Summary": "summary",
    "summarize": "summary",
    "OnnxSummary": "onnx.summary",
    "summarize_onnx": "onnx.summary",
    "ExportResult": "export",
    "export_onnx": "export",
    "OutputDiff": "onnx.compare",
    "VerifyReport": "onnx.report",
    "verify": "verification",
    "verify_data": "onnx.golden",
    "diff": "diffing",
    "diff_models": "onnx.diff",
    "ModelDiff": "onnx.diff.diff_report",
    "BenchReport": "bench",
    "benchmark": "bench",
    "RenderResult": "netron.render",
    "render": "netron.render",
    "view": "netron.serve",
    "show": "drawing",
    "Drawing": "drawing",
    "conv_output_size": "convshape",
    "solve_conv": "convshape",
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")
