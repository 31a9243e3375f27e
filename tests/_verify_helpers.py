"""Shared by the verify tests: a small layered model, BatchNorm statistics, tampering ONNX files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from inspector import checkall

HERE = Path(__file__).resolve().parent
TINY_SPEC = f"{HERE / '_verify_helpers.py'}:TinyNet"
TINY_SHAPE = "2,3,16,16"
BACKEND_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"


class TinyNet(nn.Module):
    """Two Conv-BN-ReLU stages, a pooling and a Linear: enough layers to localize a fault."""

    def __init__(self):
        super().__init__()
        # The same weights on every load: the CLI builds it afresh from "file.py:TinyNet".
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(8, 5)
        randomize_batchnorm(self, seed=1)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = self.pool(x)
        return self.head(x.flatten(1))


def randomize_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics: with mean 0 and var 1 a BN layer is nearly the identity,
    and an export that dropped it would still verify."""
    return checkall.give_batchnorm_statistics(module, seed=seed)


def export(loaded, path: Path) -> Path:
    """Export with the toolkit's own exporter (the file a user would verify)."""
    from inspector.export import export_onnx

    export_onnx(loaded, path)
    return path


def tamper(source: Path, destination: Path, initializer: str, change) -> Path:
    """Copy an ONNX file with one initializer changed by `change(array) -> array`."""
    model = onnx.load(str(source))
    names = [init.name for init in model.graph.initializer]
    matches = [i for i, name in enumerate(names) if name == initializer]
    assert matches, f"{initializer} not among {names}"
    init = model.graph.initializer[matches[0]]
    array = change(numpy_helper.to_array(init).copy())
    init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), init.name))
    onnx.save(model, str(destination))
    return destination


def nudge(array: np.ndarray) -> np.ndarray:
    """Shift every element of one initializer by far more than the tolerance."""
    return array + np.asarray(0.5, dtype=array.dtype)
