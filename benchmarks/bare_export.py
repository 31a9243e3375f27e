"""The bare exporter as a script: build a registered model and call torch.onnx.export, no inspector.

    python benchmarks/bare_export.py MODEL OUT.onnx

The options are the ones `inspector export` uses for its default (authored) graph: the dynamo
exporter, opset 18, no exporter optimizer, a dynamic batch axis traced at batch >= 2.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's models/

import torch  # noqa: E402

import models  # noqa: E402


def main(name: str, output: str) -> None:
    model = models.create_model(name).eval()
    shape = models.get_entry(name).input_shapes[0]
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


if __name__ == "__main__":
    main(*sys.argv[1:3])
