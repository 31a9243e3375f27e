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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
_RECORDINGS: list[list[str]] = []  # open recording_registrations() blocks


def register_model(
    *,
    description: str,
    input_shape: Sequence[int] | None = None,
    input_shapes: Sequence[Sequence[int]] | None = None,
    inputs: Sequence[str] | None = None,
) -> Callable[[Callable], Callable]:
    """Register the decorated builder under its function name, for every inspector command.

        import inspector

        @inspector.register_model(description="my classifier", input_shape=(1, 3, 224, 224))
        def my_net(**kwargs):
            return MyNet(**kwargs)

    The builder returns an nn.Module; its keyword arguments are the model's options (`-k
    key=value`). Its example inputs: `input_shape` (one float32 input), `input_shapes` (one
    float32 shape per forward argument), or `inputs`, typed and named as on the command line
    (["input_ids=2x16:int64:0..1000", "attention_mask=2x16:int64:1..2"]); the first axis is the
    batch. `inspector check-all --models zoo.py` imports a file of such builders and checks
    exactly the models it registers; every model is built under a fixed seed. A name registered
    twice is an error, unless the same builder registers again (its module imported a second
    time).

    Args:
        description: one line for `inspector list`.
        input_shape: the shape of the one float32 input.
        input_shapes: one float32 shape per forward argument.
        inputs: typed, named input specs, as `--input` takes them.

    Returns:
        The decorator, which registers the builder and returns it unchanged.

    Raises:
        ValueError: another builder already has this name.
    """
    given = input_shapes if input_shapes is not None else [input_shape] if input_shape else []
    shapes = tuple(tuple(shape) for shape in given)
    typed = tuple(str(spec) for spec in inputs or ())

    def decorate(builder):
        name = builder.__name__
        if name in _REGISTRY and not _same_builder(_REGISTRY[name].builder, builder):
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, builder, description, shapes, typed)
        for recording in _RECORDINGS:
            recording.append(name)
        return builder

    return decorate


def _same_builder(registered, builder) -> bool:
    return (registered.__module__, registered.__qualname__) == (
        builder.__module__,
        builder.__qualname__,
    )


@contextmanager
def recording_registrations() -> Iterator[list[str]]:
    """Yields a list that collects the name of every model registered inside the block, such as
    while a user's zoo is imported."""
    names: list[str] = []
    _RECORDINGS.append(names)
    try:
        yield names
    finally:
        _RECORDINGS.remove(names)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted.

    Args:
        pattern: a shell-style wildcard such as `"mobilenet*"`; None lists every model.

    Returns:
        The names, sorted.
    """
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
