"""Causal language models built from transformers configs (never downloaded): tiny ones that run,
and Llama configs too large to allocate here, which only a meta-device build can summarize."""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 100


def _llama(**sizes):
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**sizes))


def tiny_llama():
    return _llama(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=0,
    )


def llama_1b():
    """About 0.94B parameters (3.8 GB of float32): more than a test may allocate."""
    return _llama(
        hidden_size=2048,
        intermediate_size=5504,
        num_hidden_layers=16,
        num_attention_heads=16,
        vocab_size=32000,
    )


def llama_7b():
    """Llama-2-7B's shape: 6.7B parameters, 27 GB of float32."""
    return _llama(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        vocab_size=32000,
    )


def tiny_gpt2_lm():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_embd=32,
        n_layer=2,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


class ReadsItsWeights(nn.Module):
    """A constructor that reads a value (a meta tensor has none): only a real build runs it."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.scale = float(self.linear.weight.abs().sum().item())

    def forward(self, x):
        return self.linear(x) * self.scale


def reads_its_weights():
    torch.manual_seed(0)
    return ReadsItsWeights()
