"""Fast stand-ins for the real export in bench tests: the TorchScript exporter takes ~0.1 s."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path


def torchscript_export(loaded, path: Path, graph: str = "authored") -> Path:
    """Export with a dynamic batch; "optimized" folds constants (BatchNorm into Conv)."""
    import torch

    names = [f"input_{i}" for i in range(len(loaded.input_shapes))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation warning
        torch.onnx.export(
            loaded.module,
            loaded.example_inputs(batch_size=2).args,
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["output"],
            dynamic_axes={n: {0: "batch"} for n in [*names, "output"]},
            do_constant_folding=graph == "optimized",
        )
    return path


def fake_exported(tmp_path: Path):
    """A drop-in for inspector.bench._exported that writes TorchScript exports under tmp_path."""

    @contextmanager
    def exported(loaded, graph, use_cache):
        yield torchscript_export(loaded, tmp_path / f"{loaded.name}_{graph}.onnx", graph)

    return exported
