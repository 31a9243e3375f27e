"""Helpers for export tests: BatchNorm with real statistics, and running a file in onnxruntime."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def give_batchnorm_statistics(module: nn.Module, seed: int = 1) -> int:
    """Give every BatchNorm non-trivial running statistics and affine weights; return how many.

    Default statistics (mean 0, var 1, weight 1, bias 0) make BatchNorm nearly the identity, so a
    lost or misplaced BatchNorm would still compute the right numbers.
    """
    generator = torch.Generator().manual_seed(seed)
    count = 0
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=generator))
                layer.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.25)
                if layer.affine:
                    layer.weight.copy_(torch.randn(n, generator=generator))
                    layer.bias.copy_(torch.randn(n, generator=generator))
                count += 1
    return count


def run_onnxruntime(path, inputs) -> list[np.ndarray]:
    """Run a checked ONNX file on the CPU with torch tensors as inputs."""
    import onnxruntime as ort

    from inspector.onnx_file import check_onnx_file

    session = ort.InferenceSession(str(check_onnx_file(path)), providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_inputs()]
    return session.run(None, {name: x.numpy() for name, x in zip(names, inputs, strict=True)})


def torch_outputs(module: nn.Module, inputs) -> list[torch.Tensor]:
    with torch.inference_mode():
        out = module(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_matches_torch(path, loaded, batch_size: int, seed: int) -> None:
    """onnxruntime and PyTorch agree on seeded random inputs at `batch_size`."""
    inputs = loaded.example_inputs(batch_size=batch_size, seed=seed)
    expected = torch_outputs(loaded.module, inputs)
    actual = run_onnxruntime(path, inputs)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == tuple(want.shape)
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)
