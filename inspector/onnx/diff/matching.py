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

from .graph_index import GraphIndex


@dataclass
class NodeMatch:
    """Pairs of node indices (A, B), and the indices left unpaired on each side."""

    pairs: dict[int, int] = field(default_factory=dict)  # A index -> B index
    removed: list[int] = field(default_factory=list)  # A indices
    added: list[int] = field(default_factory=list)  # B indices

    @property
    def reverse(self) -> dict[int, int]:
        return {b: a for a, b in self.pairs.items()}


def match_nodes(a: GraphIndex, b: GraphIndex) -> NodeMatch:
    match = NodeMatch()
    taken_b: set[int] = set()

    def pair(a: int, b: int) -> None:
        match.pairs[a] = b
        taken_b.add(b)

    for i, j in _by_weight(a, b):
        pair(i, j)
    for i, j in _by_name(a, b, match.pairs, taken_b):
        pair(i, j)
    for i, j in _by_module_order(a, b, match.pairs, taken_b):
        pair(i, j)
    match.removed = [i for i in range(len(a.nodes)) if i not in match.pairs]
    match.added = [j for j in range(len(b.nodes)) if j not in taken_b]
    return match


def _by_weight(a: GraphIndex, b: GraphIndex):
    readers_a, readers_b = _sole_readers(a), _sole_readers(b)
    taken_b = set()
    for weight, i in readers_a.items():
        j = readers_b.get(weight)
        if j is not None and j not in taken_b and a.nodes[i].op_type == b.nodes[j].op_type:
            taken_b.add(j)
            yield i, j


def _sole_readers(graph: GraphIndex) -> dict[str, int]:
    """Initializer name -> the one node reading it (a shared one proves nothing), one per node:
    the first weight it reads stands for it."""
    first: dict = {}
    for name in graph.initializers:
        readers = graph.consumers.get(name, ())
        if len(readers) == 1:
            first.setdefault(readers[0], name)
    return {name: index for index, name in first.items()}


def _by_name(a: GraphIndex, b: GraphIndex, paired: dict, taken_b: set):
    counts_a, counts_b = Counter(a.names), Counter(b.names)
    index_b = {name: j for j, name in enumerate(b.names) if b.nodes[j].name and counts_b[name] == 1}
    for i, node in enumerate(a.nodes):
        if i in paired or not node.name or counts_a[node.name] != 1:
            continue
        j = index_b.get(node.name)
        if j is None or j in taken_b:
            continue
        if b.nodes[j].op_type == node.op_type and b.modules[j] == a.modules[i]:
            yield i, j


def _by_module_order(a: GraphIndex, b: GraphIndex, paired: dict, taken_b: set):
    buckets_a, buckets_b = _buckets(a, set(paired)), _buckets(b, taken_b)
    for key, left in buckets_a.items():
        right = buckets_b.get(key, [])
        if right:
            yield from _aligned(a, b, left, right)


def _buckets(graph: GraphIndex, skip: set) -> dict[tuple, list[int]]:
    buckets: dict[tuple, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        if index not in skip:
            key = (graph.modules[index], node.domain, node.op_type)
            buckets.setdefault(key, []).append(index)
    return buckets


def _aligned(a: GraphIndex, b: GraphIndex, left: list[int], right: list[int]):
    """Pair two runs of same-op nodes in order, aligning equal attribute sets first."""
    signature_a = [_attributes_key(a.nodes[i]) for i in left]
    signature_b = [_attributes_key(b.nodes[j]) for j in right]
    matcher = difflib.SequenceMatcher(None, signature_a, signature_b, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            yield from zip(left[a0:a1], right[b0:b1], strict=False)


def _attributes_key(node) -> bytes:
    return b"".join(sorted(attribute.SerializeToString() for attribute in node.attribute))
