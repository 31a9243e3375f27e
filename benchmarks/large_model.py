"""A 100M-parameter model for the large-model benchmarks: six 4096x4096 Linear layers (400 MB of
float32 weights), built under a fixed seed like every model inspector loads.

    inspector export benchmarks/large_model.py:six_linears -o big.onnx
"""

from __future__ import annotations

from torch import nn

WIDTH = 4096
LAYERS = 6
INPUT_SHAPE = (2, WIDTH)


def six_linears() -> nn.Module:
    """Linear -> ReLU, six times: 6 x (4096 x 4096 + 4096) = 100,687,872 parameters."""
    layers = []
    for _ in range(LAYERS):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers[:-1])
