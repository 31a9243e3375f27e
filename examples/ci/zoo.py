"""A model zoo for `inspector check-all --models examples/ci/zoo.py`: each builder registered with
`inspector.register_model` is checked (exported to ONNX, then onnxruntime against PyTorch).

Replace these with your own models; the input shapes are example shapes, batch first.
"""

import torch
from torch import nn

import inspector


class TinyClassifier(nn.Module):
    """Conv -> BatchNorm -> ReLU -> global pool -> Linear: the lecture's building blocks."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class TokenMixer(nn.Module):
    """LayerNorm and a two-layer MLP over a sequence of embeddings."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x):
        return x + self.mlp(self.norm(x))


@inspector.register_model(description="a small image classifier", input_shape=(2, 3, 32, 32))
def tiny_classifier(**kwargs):
    return TinyClassifier(**kwargs)


@inspector.register_model(description="an MLP block over 16 tokens", input_shape=(2, 16, 32))
def token_mixer(**kwargs):
    return TokenMixer(**kwargs)
