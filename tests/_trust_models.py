"""Models whose verification is easy to get wrong: a zero-initialized head, activations of 1e8,
dict outputs of different scales, and a deep net whose fault sits in a parent's own code.

Every model is built under a fixed seed, so the CLI (which builds it afresh from "file.py:Class")
and the tests see the same weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from inspector import checkall

HERE = Path(__file__).resolve().parent


def spec(name: str) -> str:
    return f"{HERE / '_trust_models.py'}:{name}"


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def conv_bn_relu(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(),
    )


class ZeroHeadNet(nn.Module):
    """Conv stages behind a zero-initialized classifier (as torchvision's ViT-B/16 has): the output
    is exactly 0 whatever the layers before it compute."""

    def __init__(self):
        super().__init__()
        _seeded(self._build)
        checkall.give_batchnorm_statistics(self, seed=1)

    def _build(self):
        self.stem = conv_bn_relu(3, 8)
        self.block = conv_bn_relu(8, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 10)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.pool(self.block(self.stem(x))).flatten(1))


class HugeNet(nn.Module):
    """Ten unnormalized Conv-ReLU layers whose weights grow activations about 6x a layer, like
    inception_v3 with init_weights=True: outputs of about 1e8, where float32 rounding alone
    differs by tens between PyTorch and onnxruntime."""

    def __init__(self, depth: int = 10, width: int = 48):
        super().__init__()
        _seeded(lambda: self._build(depth, width))

    def _build(self, depth: int, width: int):
        layers, channels = [], 3
        for _ in range(depth):
            conv = nn.Conv2d(channels, width, 3, padding=1)
            nn.init.trunc_normal_(conv.weight, std=0.45)
            layers += [conv, nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 1000)
        nn.init.trunc_normal_(self.fc.weight, std=0.45)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


class DetectorHead(nn.Module):
    """Two outputs of different scales in a dict: boxes in pixels (up to a few hundred) and
    scores in [0, 1]."""

    def __init__(self):
        super().__init__()
        _seeded(self._build)

    def _build(self):
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
        self.boxes = nn.Linear(32, 4)
        self.scores = nn.Linear(32, 3)

    def forward(self, x):
        features = self.body(x)
        return {"boxes": self.boxes(features) * 100.0, "scores": self.scores(features).sigmoid()}


class Gained(nn.Module):
    """Two conv stages with a learned gain between them, applied in this module's own forward:
    a fault in the gain shows first in `after`, whose inputs already differ."""

    def __init__(self, channels: int):
        super().__init__()
        self.before = conv_bn_relu(channels, channels)
        self.gain = nn.Parameter(torch.linspace(0.5, 1.5, channels).view(1, channels, 1, 1))
        self.after = conv_bn_relu(channels, channels)

    def forward(self, x):
        return self.after(self.before(x) * self.gain)


class DeepNet(nn.Module):
    """Six stages: a stem, four conv stages (the third with a gain of its own) and a head."""

    def __init__(self):
        super().__init__()
        _seeded(self._build)
        checkall.give_batchnorm_statistics(self, seed=2)

    def _build(self):
        self.stem = conv_bn_relu(3, 8)
        self.stages = nn.Sequential(
            conv_bn_relu(8, 8), conv_bn_relu(8, 8), Gained(8), conv_bn_relu(8, 8)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))
