"""A model registry in the style of timm and torchvision: the names are the builder functions.

@register_model(description="...", input_shape=(1, 3, 224, 224))
def my_net(**kwargs):
    return MyNet(**kwargs)

@register_model(description="...", inputs=["input_ids=2x16:int64:0..1000"])
def my_encoder():
    return MyEncoder()

model = create_model("my_net")
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# Every model is built under this seed, so the same name and kwargs give the same weights on every
# run: a file exported today still verifies against the model built tomorrow.
BUILD_SEED = 0


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    input_shapes: tuple[tuple[int, ...], ...]  # one float32 example shape per forward argument
    inputs: tuple[str, ...] = ()  # or typed inputs: "[NAME=]SHAPE[:DTYPE][:LOW..HIGH]" strings


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(*, description: str, input_shape=None, input_shapes=None, inputs=None):
    """Register the decorated builder under its function name.

    Its example inputs: `input_shape` (one float32 input), `input_shapes` (several), or `inputs`,
    typed and named as on the command line: ["input_ids=2x16:int64:0..1000", ...].
    """
    shapes = input_shapes if input_shapes is not None else [input_shape] if input_shape else []
    shapes = tuple(tuple(shape) for shape in shapes)
    typed = tuple(str(spec) for spec in inputs or ())

    def decorate(builder):
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, builder, description, shapes, typed)
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted; `pattern` is a shell-style wildcard such as "mobilenet*"."""
    names = sorted(_REGISTRY)
    if pattern:
        names = fnmatch.filter(names, pattern)
    return names


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model with deterministic weights."""
    entry = get_entry(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BUILD_SEED)
        return entry.builder(**kwargs)
