"""Building a model on PyTorch's meta device: tensors with shapes and dtypes but no storage.

A summary needs shapes, parameter counts and mult-adds, none of which reads a weight's values, so
a model too large to allocate (a 7B-parameter Llama: 27 GB of float32) is summarized from a build
under `torch.device("meta")`: its factories and classes create every tensor there, forward runs on
meta inputs, and the process never holds the weights. Building there first also tells how large
the weights would be before allocating any of them.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

# A model is built on the meta device (for a summary) when its weights would take more than this
# share of the available memory: torchinfo's forward and the FLOP counter need the rest.
WEIGHT_MEMORY_SHARE = 0.5


def build_on_meta(build: Callable) -> tuple[Any, str]:
    """(build()'s module on the meta device, "") or (None, why it cannot be built there). The
    constructor's prints are dropped: a real build that follows prints them once."""
    import torch
    from torch import nn

    try:
        with (
            torch.device("meta"),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            module = build()
    except Exception as error:  # a constructor that reads values (.item(), a file) cannot
        return None, str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    if not isinstance(module, nn.Module):
        return None, f"it returned a {type(module).__name__}"
    return module, ""


def weight_bytes(module) -> int:
    """Bytes of the module's parameters and buffers, each tensor once."""
    tensors = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def fits_in_memory(size: int, available: int | None) -> bool:
    return available is None or size <= available * WEIGHT_MEMORY_SHARE


def is_on_meta(module) -> bool:
    return any(t.is_meta for t in (*module.parameters(), *module.buffers()))
