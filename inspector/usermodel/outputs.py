"""Structured outputs, flattened in one documented order and named.

forward may return a tensor, a tuple, a dict, a transformers ModelOutput, a namedtuple, or any
nesting of those. Its tensors are taken in torch's pytree order (the order torch.onnx gives the
graph's outputs) and named by where they sit:

    a tensor                      output
    a tuple or list (a, b)        output_0, output_1
    a dict / ModelOutput          its keys: last_hidden_state, pooler_output, logits
    nesting                       joined by '.': past_key_values.0.key, output_1.0

Values that are not tensors (None, a flag) are left out: they are not outputs of the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def named_outputs(outputs) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor of forward's result, in pytree order."""
    import torch
    from torch.utils import _pytree

    leaves, _ = _pytree.tree_flatten_with_path(outputs)
    tensors = [(path, leaf) for path, leaf in leaves if isinstance(leaf, torch.Tensor)]
    if len(tensors) == 1 and all(_is_index(key) for key in tensors[0][0]):
        return [("output", tensors[0][1])]  # a tensor, or one in a tuple: as it always was
    return [(_name(path), tensor) for path, tensor in tensors]


def _name(path) -> str:
    parts = [_key_text(key) for key in path]
    if not parts:
        return "output"
    if _is_index(path[0]):
        parts[0] = f"output_{parts[0]}"
    return ".".join(parts)


def _is_index(key) -> bool:
    from torch.utils import _pytree

    return isinstance(key, _pytree.SequenceKey)


def _key_text(key) -> str:
    for attribute in ("key", "idx", "name"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key).strip(".[]'\"")
