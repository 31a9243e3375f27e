"""The bare exporter as a script: build a model and call torch.onnx.export, no inspector.

    python benchmarks/bare_export.py MODEL OUT.onnx [--check]

MODEL is a registered name or path/file.py:builder (whose module gives its INPUT_SHAPE, or the
builder's own in an INPUT_SHAPES dict). The
options are the ones `inspector export` uses for its default (authored) graph: the dynamo
exporter, opset 18, no exporter optimizer, a dynamic batch axis traced at batch >= 2. `--check`
then runs `onnx.checker.check_model(OUT.onnx, full_check=True)`, as inspector checks what it writes.
"""

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's models/

import torch  # noqa: E402

import models  # noqa: E402


def build(name: str):
    """(model in eval mode, example input shape)."""
    if ":" not in name:
        return models.create_model(name).eval(), models.get_entry(name).input_shapes[0]
    where, attr = name.rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("bare_model", where)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shape = getattr(module, "INPUT_SHAPES", {}).get(attr, module.INPUT_SHAPE)
    return getattr(module, attr)().eval(), shape


def main(name: str, output: str, check: bool = False) -> None:
    model, shape = build(name)
    x = torch.randn(max(2, shape[0]), *shape[1:], generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        model,
        (x,),
        output,
        dynamo=True,
        opset_version=18,
        optimize=False,
        dynamic_shapes=({0: batch},),
    )
    if check:
        import onnx

        onnx.checker.check_model(output, full_check=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--check" in sys.argv[3:])
