"""Models for the --localize memory benchmark (benchmarks/localize_memory.py), built under a fixed
seed like every model inspector loads.

    inspector export benchmarks/localize_models.py:ten_wide_linears -o big.onnx
"""

from __future__ import annotations

from torch import nn

WIDE = 7776  # ten 7,776-wide Linear layers: 604,727,520 parameters, 2.25 GiB of float32
WIDE_LAYERS = 10


def ten_wide_linears() -> nn.Module:
    """Linear -> ReLU, ten times, 7,776 wide: past protobuf's 2 GiB, so the file keeps its weights
    as external data."""
    layers = []
    for _ in range(WIDE_LAYERS):
        layers += [nn.Linear(WIDE, WIDE), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def vit_b_32() -> nn.Module:
    """A transformers ViT of vit_b_32's size (patch 32, 768 wide, 12 layers: 88M parameters),
    built from its config (nothing downloaded)."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=224, patch_size=32, num_labels=1000, attn_implementation="eager")
    return ViTForImageClassification(config).eval()
