"""Counting a model: its parameters (a tied weight once) and the mult-adds that really run.

torchinfo counts a tied weight (GPT-2's lm_head is its wte) once per layer that holds it, and its
mult-adds see only module hooks, so the matmuls of attention and functional code escape it. The
totals here come from the parameters themselves and from PyTorch's own FLOP counter.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MULT_ADDS_COUNTER = "torch.utils.flop_counter"  # what `mult_adds` is counted by
FLOPS_PER_MULT_ADD = 2


@dataclass(frozen=True)
class ParameterCounts:
    total: int
    trainable: int
    bytes: int
    dense: int  # before pruning: every element of a pruned weight, as stored

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable


def parameter_counts(module) -> ParameterCounts:
    """Every parameter once, however many layers share it (parameters() deduplicates); a weight
    pruned by torch.nn.utils.prune counts its mask's kept elements, as torchinfo's rows do."""
    kept = _pruned_counts(module)
    params = {id(p): p for p in module.parameters()}.values()
    counts = [(kept.get(id(p), p.numel()), p) for p in params]
    return ParameterCounts(
        total=sum(n for n, _ in counts),
        trainable=sum(n for n, p in counts if p.requires_grad),
        bytes=sum(n * p.element_size() for n, p in counts),
        dense=sum(p.numel() for _, p in counts),
    )


def _pruned_counts(module) -> dict[int, int]:
    """id of each `NAME_orig` parameter -> the ones in its `NAME_mask` buffer (prune's layout)."""
    kept = {}
    for sub in module.modules():
        buffers = dict(sub.named_buffers(recurse=False))
        for name, param in sub.named_parameters(recurse=False):
            mask = buffers.get(name.removesuffix("_orig") + "_mask")
            if name.endswith("_orig") and mask is not None:
                kept[id(param)] = int(mask.count_nonzero())
    return kept


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

    device = next((t.device for t in (*module.parameters(), *module.buffers())), None)
    if device is not None:
        inputs = inputs.to(device)  # a CUDA model counts on CUDA, as it runs
    try:
        with (
            torch.inference_mode(),
            _dynamo_left_unloaded(),
            FlopCounterMode(display=False, custom_mapping=_missing_formulas()) as counter,
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


def _missing_formulas() -> dict:
    """Formulas for CPU kernels torch's counter has none for (torch 2.13), so they counted 0:
    nn.LSTM's oneDNN layer and the CPU flash attention behind F.scaled_dot_product_attention.
    Each returns FLOPs (2 per mult-add), as the counter's own formulas do."""
    import torch

    aten = torch.ops.aten
    formulas: dict[str, Callable[..., int]] = {
        "mkldnn_rnn_layer": _rnn_layer_flops,
        "_scaled_dot_product_flash_attention_for_cpu": _attention_flops,
    }
    return {getattr(aten, name): f for name, f in formulas.items() if hasattr(aten, name)}


def _rnn_layer_flops(input_shape, weight_ih, weight_hh, *_args, out_shape=None, **_kwargs) -> int:
    """One direction of one recurrent layer: each time step of each sequence multiplies its input
    by weight_ih and the hidden state by weight_hh (all gates at once). A packed sequence's input
    is (sum of its lengths, features): the same product counts only the real steps. The gates'
    elementwise products and the bias adds are not counted (see the README)."""
    steps = math.prod(input_shape[:-1])
    return FLOPS_PER_MULT_ADD * steps * (math.prod(weight_ih) + math.prod(weight_hh))


def _attention_flops(query, key, value, *_args, out_shape=None, **_kwargs) -> int:
    """softmax(Q K^T) V: two batched matmuls; causal attention counts the whole square, as
    torch's formulas for the CUDA kernels do. Grouped-query attention (fewer key/value heads than
    query heads) counts as the kernel runs it, each key/value head broadcast to its query heads:
    given as such, since torch's formula refuses unequal heads before 2.13."""
    from torch.utils.flop_counter import sdpa_flop_count

    heads = query[-3]
    return sdpa_flop_count(query, _with_heads(key, heads), _with_heads(value, heads))


def _with_heads(shape, heads: int) -> tuple:
    """(batch, heads, sequence, features) with `heads` heads."""
    return (*shape[:-3], heads, *shape[-2:])


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
