"""Which node of graph B is which node of graph A: the pairing a diff of two exports starts from.

Two exports of one model rarely agree on node names (the optimizer renames what it rewrites), so
nodes are paired by what survives a rewrite, strongest evidence first:

1. the same op reading the same weight (an initializer of that name read by that node alone):
   a Conv with BatchNormalization folded in still reads `features.0.0.weight`;
2. the same name, op and module;
3. the same op in the same module, in graph order (aligned with difflib, so one node removed from
   a module does not shift every later pair).

What is left over was removed (in A only) or added (in B only). No torch here.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

from .scopes import node_module


@dataclass
class NodeMatch:
    """Pairs of node indices (A, B), and the indices left unpaired on each side."""

    pairs: dict[int, int] = field(default_factory=dict)  # A index -> B index
    removed: list[int] = field(default_factory=list)  # A indices
    added: list[int] = field(default_factory=list)  # B indices

    @property
    def reverse(self) -> dict[int, int]:
        return {b: a for a, b in self.pairs.items()}


def match_nodes(graph_a, graph_b) -> NodeMatch:
    match = NodeMatch()
    taken_b: set[int] = set()

    def pair(a: int, b: int) -> None:
        match.pairs[a] = b
        taken_b.add(b)

    for a, b in _by_weight(graph_a, graph_b):
        pair(a, b)
    for a, b in _by_name(graph_a, graph_b, match.pairs, taken_b):
        pair(a, b)
    for a, b in _by_module_order(graph_a, graph_b, match.pairs, taken_b):
        pair(a, b)
    match.removed = [a for a in range(len(graph_a.node)) if a not in match.pairs]
    match.added = [b for b in range(len(graph_b.node)) if b not in taken_b]
    return match


def _by_weight(graph_a, graph_b):
    readers_a, readers_b = _sole_readers(graph_a), _sole_readers(graph_b)
    taken_b = set()
    for weight, a in readers_a.items():
        b = readers_b.get(weight)
        if b is None or b in taken_b:
            continue
        if graph_a.node[a].op_type == graph_b.node[b].op_type:
            taken_b.add(b)
            yield a, b


def _sole_readers(graph) -> dict[str, int]:
    """Initializer name -> the index of the one node reading it (shared ones prove nothing)."""
    weights = {init.name for init in graph.initializer}
    reads = Counter(value for node in graph.node for value in node.input if value in weights)
    readers = {}
    for index, node in enumerate(graph.node):
        for value in node.input:
            if reads.get(value) == 1 and value not in readers:
                readers[value] = index
    # One pair per node: the first weight it reads stands for it.
    first = {}
    for weight, index in readers.items():
        first.setdefault(index, weight)
    return {weight: index for index, weight in first.items()}


def _by_name(graph_a, graph_b, paired: dict, taken_b: set):
    names_b = Counter(node.name for node in graph_b.node if node.name)
    index_b = {node.name: i for i, node in enumerate(graph_b.node) if names_b[node.name] == 1}
    names_a = Counter(node.name for node in graph_a.node if node.name)
    for a, node in enumerate(graph_a.node):
        if a in paired or names_a[node.name] != 1:
            continue
        b = index_b.get(node.name)
        if b is None or b in taken_b:
            continue
        other = graph_b.node[b]
        if other.op_type == node.op_type and node_module(other) == node_module(node):
            yield a, b


def _by_module_order(graph_a, graph_b, paired: dict, taken_b: set):
    buckets_a = _buckets(graph_a, set(paired))
    buckets_b = _buckets(graph_b, taken_b)
    for key, left in buckets_a.items():
        right = buckets_b.get(key, [])
        if right:
            yield from _aligned(graph_a, graph_b, left, right)


def _buckets(graph, skip: set) -> dict[tuple, list[int]]:
    buckets: dict[tuple, list[int]] = {}
    for index, node in enumerate(graph.node):
        if index not in skip:
            key = (node_module(node), node.domain, node.op_type)
            buckets.setdefault(key, []).append(index)
    return buckets


def _aligned(graph_a, graph_b, left: list[int], right: list[int]):
    """Pair two runs of same-op nodes in order, aligning equal attribute sets first."""
    signature_a = [_attributes_key(graph_a.node[i]) for i in left]
    signature_b = [_attributes_key(graph_b.node[i]) for i in right]
    matcher = difflib.SequenceMatcher(None, signature_a, signature_b, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            yield from zip(left[a0:a1], right[b0:b1], strict=False)


def _attributes_key(node) -> bytes:
    return b"".join(sorted(attribute.SerializeToString() for attribute in node.attribute))
