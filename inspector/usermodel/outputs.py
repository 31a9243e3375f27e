"""Structured outputs, flattened in one documented order and named.

forward may return a tensor, a tuple, a dict, a transformers ModelOutput, a namedtuple, or any
nesting of those. Its tensors are taken in torch's pytree order (the order torch.onnx gives the
graph's outputs) and named by where they sit:

    a tensor                      output
    a tuple or list (a, b)        output_0, output_1
    a dict / ModelOutput          its keys: last_hidden_state, pooler_output, logits
    nesting                       joined by '.': parts.0.key, output_1.0

Values that are not tensors (None, a flag) are left out: they are not outputs of the graph.
A transformers model's cache (its past keys and values) is a nesting too, once
`register_output_types` has told torch's pytree how to open it: `cache.0`, `cache.1`, ...
(transformers before 5.24 named that field past_key_values: it is `cache` here either way).
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def named_outputs(outputs) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor of forward's result, in pytree order."""
    import torch

    tensors = [(path, leaf) for path, leaf in _leaves(outputs) if isinstance(leaf, torch.Tensor)]
    if len(tensors) == 1 and all(_is_index(key) for key in tensors[0][0]):
        return [("output", tensors[0][1])]  # a tensor, or one in a tuple: as it always was
    names = [_name(path) for path, _ in tensors]
    if _is_transformers_output(outputs):
        names = [_CACHE_FIELD.sub("cache", name) for name in names]
    return list(zip(names, (tensor for _, tensor in tensors), strict=True))


# transformers 5.24 renamed its outputs' cache field from past_key_values to cache: one name for
# both keeps golden data and snapshots valid across that upgrade.
_CACHE_FIELD = re.compile(r"^past_key_values(?=\.|$)")


def _is_transformers_output(outputs) -> bool:
    transformers = sys.modules.get("transformers")
    if transformers is None:
        return False
    try:
        return isinstance(outputs, transformers.utils.ModelOutput)
    except AttributeError:
        return False


def _leaves(outputs) -> list:
    """(key path, leaf) in pytree order."""
    from torch.utils import _pytree

    try:
        return _pytree.tree_flatten_with_path(outputs)[0]
    except ValueError:  # a type registered without key functions (transformers 5.0's outputs)
        return list(_walk(outputs, ()))


def _walk(value, path):
    """The same leaves and order as the pytree flattening, with keys read from the containers."""
    from collections.abc import Mapping

    from torch.utils import _pytree

    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*path, _pytree.MappingKey(key)))
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, _pytree.SequenceKey(index)))
    else:
        leaves = _pytree.tree_leaves(value)
        if len(leaves) == 1 and leaves[0] is value:
            yield path, value
        else:  # a registered node of its own (a cache): its leaves in its order
            for index, leaf in enumerate(leaves):
                yield (*path, _pytree.SequenceKey(index)), leaf


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


def register_output_types(module) -> None:
    """transformers models return Cache objects that torch's pytree does not know: torch.export
    refuses them and a flattening would drop their tensors. transformers' own exporter registers
    every Cache class as a pytree node before it traces; inspector does the same, with the same
    helper, for each transformers model inside `module`."""
    if "transformers" not in sys.modules:
        return  # the model's code never imported it, so it holds no transformers model
    try:
        from transformers import PreTrainedModel
        from transformers.exporters.exporter_dynamo import register_cache_pytrees_for_model
    except ImportError:  # an older transformers: export names the unknown type and the way out
        return
    done = set()
    for sub in module.modules():
        if isinstance(sub, PreTrainedModel) and type(sub).__module__ not in done:
            done.add(type(sub).__module__)
            register_cache_pytrees_for_model(sub)
