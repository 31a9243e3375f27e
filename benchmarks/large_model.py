"""A 100M-parameter model for the large-model benchmarks: six 4096x4096 Linear layers (400 MB of
float32 weights), built under a fixed seed like every model inspector loads.

    inspector export benchmarks/large_model.py:six_linears -o big.onnx
"""

from __future__ import annotations

from torch import nn

WIDTH = 4096
LAYERS = 6
INPUT_SHAPE = (2, WIDTH)
WIDE = 7776  # ten such layers pass protobuf's 2 GiB limit
INPUT_SHAPES = {"vit_b_32": (2, 3, 224, 224), "ten_wide_linears": (2, WIDE)}  # else INPUT_SHAPE


def six_linears() -> nn.Module:
    """Linear -> ReLU, six times: 6 x (4096 x 4096 + 4096) = 100,687,872 parameters."""
    layers = []
    for _ in range(LAYERS):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def sixteen_linears() -> nn.Module:
    """The same layers sixteen times: 268,500,992 parameters, 1.07 GB of float32 (the checkpoint
    benchmark's model)."""
    layers = []
    for _ in range(16):
        layers += [nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def llama_7b() -> nn.Module:
    """Llama-2-7B's shape from a transformers config (6.7B parameters, 27 GB of float32): only a
    meta-device build can summarize it here."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        vocab_size=32000,
    )
    return LlamaForCausalLM(config)


def ten_wide_linears() -> nn.Module:
    """Ten 7776x7776 Linear layers: 604,741,920 parameters, 2.25 GiB of float32, past the 2 GiB
    a single .onnx file (a protobuf message) can hold."""
    layers = []
    for _ in range(10):
        layers += [nn.Linear(WIDE, WIDE), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def vit_b_32() -> nn.Module:
    """ViT-B/32's shape from a transformers config (88M parameters, 353 MB of float32): its
    Linear layers run on (batch, tokens, features), which the exporter writes as
    Transpose(weight) -> MatMul."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(image_size=224, patch_size=32)  # hidden 768, 12 layers, 12 heads
    return ViTModel(config)
