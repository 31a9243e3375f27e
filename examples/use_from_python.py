"""Summarize, export and verify a model from Python, as the command line does.

    python examples/use_from_python.py [OUT_DIR]

Writes OUT_DIR/exercise_model.onnx (default: a temporary folder) and golden test data beside it,
then checks the file against that data the way CI can, without PyTorch.
"""

import sys
import tempfile
from pathlib import Path

import inspector


def main(out_dir: Path) -> int:
    # 1. Load a model: a registry name, "package.module:Class" or "path/file.py:Class".
    loaded = inspector.load_model("exercise_model")
    print(inspector.summarize(loaded, depth=1))

    # 2. Export: dynamic batch axis, checked by onnx.checker, written atomically.
    exported = inspector.export_onnx(loaded, out_dir / "exercise_model.onnx")
    print(exported, end="\n\n")

    # 3. Verify that onnxruntime computes what PyTorch computes, and keep the inputs and PyTorch's
    #    outputs as golden data (ONNX model-zoo layout) for later checks.
    report = inspector.verify(loaded, onnx=exported.path, save_data=out_dir / "golden")
    print(report, end="\n\n")

    # 4. Later, or on a machine without PyTorch: the file against its golden data.
    golden = inspector.verify_data(exported.path, out_dir / "golden")
    print(golden)
    return 0 if report and golden else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        raise SystemExit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as folder:
        raise SystemExit(main(Path(folder)))
