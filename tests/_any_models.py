"""Models nobody here wrote, built small and from code (no hub, no weights): transformers' BERT,
GPT-2 and ViT with tiny configs, and a few shapes of forward that the lecture never shows."""

from __future__ import annotations

from collections import namedtuple

import torch
from torch import nn

VOCAB = 100
SEQUENCE = 16


def tiny_bert():
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    return BertModel(config)


def tiny_t5_encoder():
    """T5's encoder: torch.export fails on a view of symbolic strides; the tracer exports it."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    return T5EncoderModel(config)


def tiny_gpt2():
    """GPT-2's LM head: lm_head.weight is transformer.wte.weight (a tied weight)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_embd=32,
        n_layer=2,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=64,
        use_cache=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def tiny_gpt2_with_cache():
    """GPT-2 as transformers builds it by default: its output holds a DynamicCache (the keys and
    values of every layer), a class torch's pytree does not know."""
    model = tiny_gpt2()
    model.config.use_cache = True
    return model


def tiny_vit():
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
    )
    return ViTModel(config)


BERT_INPUTS = [
    f"input_ids=2x{SEQUENCE}:int64:0..{VOCAB}",
    f"attention_mask=2x{SEQUENCE}:int64:1..2",
]
SEQUENCE_DIMS = ["input_ids.1=sequence", "attention_mask.1=sequence"]


def bert_inputs():
    """For --inputs: a dict of keyword tensors."""
    ids = torch.randint(0, VOCAB, (2, SEQUENCE))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


Pair = namedtuple("Pair", ["low", "high"])


class Structured(nn.Module):
    """A forward that returns a dict holding a tuple, a namedtuple and a nested dict."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, ids, mask=None, scale: float = 1.0):
        hidden = self.embed(ids) * mask.unsqueeze(-1) * scale
        logits = self.head(hidden)
        return {
            "logits": logits,
            "parts": (hidden.sum(-1), Pair(logits.min(-1).values, logits.max(-1).values)),
            "extra": {"key": hidden + 1, "none": None},
        }


def structured_inputs():
    """For --inputs: (positional, keyword) with a Python constant among the keywords."""
    ids = torch.randint(0, VOCAB, (2, 5))
    return (ids,), {"mask": torch.ones(2, 5), "scale": 0.5}


class FrozenSplit(nn.Module):
    """Tracing (the TorchScript exporter) freezes the split sizes it saw, so the file declares a
    dynamic batch yet fails in onnxruntime at any other batch (torchvision's SSDlite does this)."""

    def forward(self, x):
        halves = torch.split(x, max(1, x.shape[0] // 2))  # max() makes the size a Python int
        return torch.cat(halves[::-1]) * 2


class Branchy(nn.Module):
    """Branches on a tensor's value: torch.export cannot capture that."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


class Box:
    """A container of the user's own that torch's pytree does not know."""

    def __init__(self, value):
        self.value = value


class ReturnsABox(nn.Module):
    def forward(self, x):
        return x * 2, Box(x + 1)


def create_model(model_name: str = "tiny_mlp", width: int = 8):
    """A factory in timm's style: the model to build is named by an argument."""
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))
