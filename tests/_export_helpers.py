"""Helpers for export tests: BatchNorm with real statistics, and running a file in onnxruntime."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from inspector import checkall


def give_batchnorm_statistics(module: nn.Module, seed: int = 1) -> int:
    """Non-trivial BatchNorm statistics (inspector's own, as check-all uses); return how many.

    Default statistics (mean 0, var 1, weight 1, bias 0) make BatchNorm nearly the identity, so a
    lost or misplaced BatchNorm would still compute the right numbers.
    """
    checkall.give_batchnorm_statistics(module, seed=seed)
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def run_onnxruntime(path, inputs) -> list[np.ndarray]:
    """Run a checked ONNX file on the CPU with torch tensors as inputs."""
    import onnxruntime as ort

    from inspector.onnx.files import check_onnx_file

    session = ort.InferenceSession(str(check_onnx_file(path)), providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_inputs()]
    return session.run(None, {name: x.numpy() for name, x in zip(names, inputs, strict=True)})


def torch_outputs(module: nn.Module, inputs) -> list[torch.Tensor]:
    with torch.inference_mode():
        out = module(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_matches_torch(path, loaded, batch_size: int, seed: int) -> None:
    """onnxruntime and PyTorch agree on seeded random inputs at `batch_size`."""
    inputs = loaded.example_inputs(batch_size=batch_size, seed=seed).args
    expected = torch_outputs(loaded.module, inputs)
    actual = run_onnxruntime(path, inputs)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == tuple(want.shape)
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)
