"""Counting a model: its parameters (a tied weight once) and the mult-adds that really run.

torchinfo counts a tied weight (GPT-2's lm_head is its wte) once per layer that holds it, and its
mult-adds see only module hooks, so the matmuls of attention and functional code escape it. The
totals here come from the parameters themselves and from PyTorch's own FLOP counter.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MULT_ADDS_COUNTER = "torch.utils.flop_counter"  # what `mult_adds` is counted by
FLOPS_PER_MULT_ADD = 2


@dataclass(frozen=True)
class ParameterCounts:
    total: int
    trainable: int
    bytes: int

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable


def parameter_counts(module) -> ParameterCounts:
    """Every parameter once, however many layers share it (parameters() deduplicates)."""
    params = list(module.parameters())
    return ParameterCounts(
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        bytes=sum(p.numel() * p.element_size() for p in params),
    )


def shared_owners(module) -> dict[str, str]:
    """Module path -> the path of the module that first holds its parameters, for every module
    whose own parameters all belong to an earlier one (a tied weight)."""
    owner_of: dict[int, str] = {}
    shared: dict[str, str] = {}
    for path, sub in module.named_modules():
        own = list(sub.parameters(recurse=False))
        owners = [owner_of.get(id(p)) for p in own]
        known = sorted(owner for owner in owners if owner is not None)
        if own and len(known) == len(owners):
            shared[path] = known[0]
        for p in own:
            owner_of.setdefault(id(p), path)
    return shared


@dataclass
class MultAdds:
    """Mult-adds per call: the total and, where the counter attributes them, per module path."""

    total: int
    per_module: dict[str, int] = field(default_factory=dict)
    counter: str = MULT_ADDS_COUNTER


def count_mult_adds(module, inputs) -> MultAdds | None:
    """PyTorch's FlopCounterMode over one forward; None when it cannot count this model."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with (
            torch.inference_mode(),
            _dynamo_left_unloaded(),
            FlopCounterMode(display=False) as counter,
        ):
            inputs.call(module)
    except Exception:  # an operator the counter cannot trace: the caller keeps torchinfo's
        return None
    root = type(module).__name__
    per_module = {}
    for key, counts in counter.get_flop_counts().items():
        if key == "Global":
            continue
        path = "" if key == root else key.removeprefix(root + ".")
        per_module[path] = sum(counts.values()) // FLOPS_PER_MULT_ADD
    return MultAdds(counter.get_total_flops() // FLOPS_PER_MULT_ADD, per_module)


_CACHED_WRAPPER = "__dynamo_disable"  # where torch/_compile.py's _disable_dynamo caches its wrapper


@contextmanager
def _dynamo_left_unloaded() -> Iterator[None]:
    """torch wraps every dispatch mode's handler so that its first call imports torch._dynamo
    (about 1 s) to keep dynamo from tracing into the handler. Nothing compiles while we count, so
    while dynamo is not loaded the handler's cached wrapper is set to the handler itself: torch
    then calls it directly. If torch stops working this way, the lookup finds nothing and the
    counter imports dynamo as before."""
    from torch.utils import flop_counter

    mode = getattr(flop_counter, "_FlopCounterMode", None)
    handler = getattr(vars(mode).get("__torch_dispatch__") if mode else None, "__wrapped__", None)
    if handler is None or "torch._dynamo" in sys.modules or hasattr(handler, _CACHED_WRAPPER):
        yield
        return
    setattr(handler, _CACHED_WRAPPER, handler)
    try:
        yield
    finally:
        delattr(handler, _CACHED_WRAPPER)
