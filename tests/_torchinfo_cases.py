"""Models shaped like the cases of torchinfo's own test suite (its tests/fixtures), re-written
small: each is something torchinfo summarizes, so inspector must too, with the same parameter
count. Loaded by path in the CLI tests (`tests/_torchinfo_cases.py:LSTMNet`)."""

from __future__ import annotations

from collections import namedtuple

import torch
from torch import nn
from torch.nn import functional as F


class SingleInputNet(nn.Module):
    """A small CNN for 1x28x28 images: two convs, dropout, two Linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(0.3)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


class LSTMNet(nn.Module):
    """Embedding -> 2-layer LSTM -> Linear over a sequence-first batch of token ids."""

    def __init__(self, vocab: int = 20, embed: int = 300, hidden: int = 512, layers: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.encoder = nn.LSTM(embed, hidden, num_layers=layers)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x):
        out, _ = self.encoder(self.embedding(x))
        return self.decoder(out)


class PackedLSTM(nn.Module):
    """An LSTM over a packed batch of sequences of different lengths."""

    def __init__(self, features: int = 8, hidden: int = 16):
        super().__init__()
        self.rnn = nn.LSTM(features, hidden, batch_first=True)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
        out, _ = self.rnn(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        return padded


class Recurrent(nn.Module):
    """One conv called six times: six rows, 1-1 .. 1-6."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        for _ in range(6):
            x = self.conv1(x)
        return x


class LinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)
        )

    def forward(self, x):
        return self.layers(x)


class PartlyScripted(nn.Module):
    """Plain layers around a scripted Sequential."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 5)))

    def forward(self, x):
        return self.head(F.relu(self.conv(x)))


class DictParameter(nn.Module):
    """forward takes a dict of tensors (keyed by ints) and a scale."""

    def forward(self, x: dict, scale_factor: int):
        return scale_factor * (x[256] + x[512][0]) * 5


class DictWithNonTensors(nn.Module):
    """forward takes a dict with a tensor among a label and a None."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x: dict):
        return self.conv(x["tensor"])


class EmptyDictInput(nn.Module):
    """An empty dict makes forward use a tensor of its own."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs: dict):
        x = inputs["foo"] if inputs else torch.arange(3.0)
        return self.linear(x)


Point = namedtuple("Point", ["x", "y"])


class TakesNamedTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x, z: Point):
        return self.linear(x) * z.x + z.y


class TakesNothing(nn.Module):
    """forward() takes no input; a buffer is its data."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 3)
        self.register_buffer("data", torch.linspace(-1, 1, 12).reshape(2, 6))

    def forward(self):
        return self.linear(self.data)


class ParameterHolder(nn.Module):
    """Parameters and no forward."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 4))
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2)])


def module_list():
    return nn.ModuleList([nn.Conv2d(1, 2, 3), nn.Linear(8, 8)])


class TensorKernelSize(nn.Module):
    """A conv wrapper that keeps kernel_size as a 0-d tensor (as some transformers audio models
    do): torchinfo 1.8.0 fails on it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.register_buffer("kernel_size", torch.tensor(3), persistent=False)

    def forward(self, x):
        return self.conv(x)


class CategoricalOutput(nn.Module):
    """forward returns a torch.distributions.Categorical: torchinfo 1.8.0 fails on it."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Linear(10, 5)

    def forward(self, x):
        return torch.distributions.Categorical(logits=self.logits(x))


class ReturnsParameter(nn.Module):
    """forward returns its own nn.Parameter (the FLOP counter cannot run it)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))

    def forward(self, x):
        return self.weight


class Attention(nn.Module):
    """Four-head self-attention through F.scaled_dot_product_attention, no projections. With
    kv_heads, grouped-query attention: keys and values are the first kv_heads heads, each shared
    by heads // kv_heads query heads (as Llama's num_key_value_heads)."""

    def __init__(self, heads: int = 4, causal: bool = False, kv_heads: int | None = None):
        super().__init__()
        self.heads, self.causal, self.kv_heads = heads, causal, kv_heads

    def forward(self, x):
        batch, tokens, width = x.shape
        q = x.reshape(batch, tokens, self.heads, width // self.heads).transpose(1, 2)
        if self.kv_heads is None:
            out = F.scaled_dot_product_attention(q, q, q, is_causal=self.causal)
        else:
            kv = q[:, : self.kv_heads]
            out = F.scaled_dot_product_attention(q, kv, kv, is_causal=self.causal, enable_gqa=True)
        return out.transpose(1, 2).reshape(batch, tokens, width)


class ConvBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return self.bn(self.conv(x))


def dict_parameter_inputs():
    """--inputs for DictParameter: a dict of tensors as a keyword input, and a constant."""
    x = {256: torch.randn(10, 1), 512: [torch.randn(10, 1)]}
    return (), {"x": x, "scale_factor": 5}


def dict_positional_inputs():
    return ({"tensor": torch.randn(1, 3, 8, 8), "label": "cat", "mask": None},)


def empty_dict_inputs():
    return ({},)


def namedtuple_inputs():
    return (torch.randn(2, 4),), {"z": Point(torch.randn(2, 4), torch.randn(2, 4))}


def no_inputs():
    return ()


def packed_inputs():
    return (torch.randn(3, 5, 8),), {"lengths": torch.tensor([5, 3, 2])}
