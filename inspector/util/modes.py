"""Train/eval flags: inspector runs a model in eval mode and gives every layer its own flag back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def eval_mode(module) -> Iterator:
    """Eval mode inside (BatchNorm's running statistics, no dropout); afterwards each submodule
    gets back its own training flag, not the top module's (a frozen BatchNorm stays frozen)."""
    with modes_restored(module):
        module.eval()
        yield module


@contextmanager
def modes_restored(module) -> Iterator:
    """Whatever happens inside (torchinfo sets every layer to the top module's mode), each
    submodule's training flag comes back as it was."""
    saved = [(sub, sub.training) for sub in module.modules()]
    try:
        yield module
    finally:
        for sub, training in saved:
            sub.training = training
