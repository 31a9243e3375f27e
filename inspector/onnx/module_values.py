"""Which ONNX values carry each PyTorch module's inputs and outputs (no torch).

A module's nodes are the nodes exported from it or from a module inside it (onnx/scopes.py). Its
inputs are the values those nodes read that neither they nor weights make; its outputs are the
values they make that a node outside the module, or the graph's output, reads. Values computed
from weights and constants alone (a Reshape's target shape) are left out of the inputs: they carry
no data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .scopes import node_scopes
from .subgraph import node_reads


@dataclass
class ModuleValues:
    """One module's nodes (indices into graph.node, in graph order) and its boundary values."""

    path: str
    nodes: list[int] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def module_values(graph) -> dict[str, ModuleValues]:
    """Module path -> its nodes, input values and output values, for every module with nodes."""
    reads = [node_reads(node) for node in graph.node]
    constant = constant_values(graph, reads)
    producer = {value: index for index, node in enumerate(graph.node) for value in node.output}
    consumers = defaultdict(list)
    for index, values in enumerate(reads):
        for value in values:
            consumers[value].append(index)
    graph_outputs = {output.name for output in graph.output}
    modules: dict[str, ModuleValues] = {}
    for index, node in enumerate(graph.node):
        for path in node_scopes(node):
            modules.setdefault(path, ModuleValues(path)).nodes.append(index)
    for entry in modules.values():
        inside = set(entry.nodes)
        entry.inputs = _ordered(
            value
            for index in entry.nodes
            for value in reads[index]
            if value not in constant and producer.get(value) not in inside
        )
        entry.outputs = _ordered(
            value
            for index in entry.nodes
            for value in graph.node[index].output
            if value and (value in graph_outputs or any(c not in inside for c in consumers[value]))
        )
    return modules


def constant_values(graph, reads=None) -> set[str]:
    """Initializers and every value computed from them and from Constant nodes alone."""
    reads = reads if reads is not None else [node_reads(node) for node in graph.node]
    constant = {init.name for init in graph.initializer}
    constant -= {value.name for value in graph.input}  # an input with a default is still input
    for node, values in zip(graph.node, reads, strict=True):
        if all(value in constant for value in values):
            constant.update(value for value in node.output if value)
    return constant


def constant_producers(graph, values: list[str]) -> list[int]:
    """The nodes (indices, graph order) that compute the constant `values` from weights alone."""
    producer = {value: index for index, node in enumerate(graph.node) for value in node.output}
    needed, stack = set(), [value for value in values if value in producer]
    while stack:
        index = producer[stack.pop()]
        if index not in needed:
            needed.add(index)
            stack += [value for value in node_reads(graph.node[index]) if value in producer]
    return sorted(needed)


def ancestors_within(graph, nodes: list[int], value: str) -> list[int]:
    """The nodes among `nodes` that `value` depends on (itself included), in graph order."""
    producer = {out: index for index in nodes for out in graph.node[index].output}
    needed, stack = set(), [value]
    while stack:
        current = stack.pop()
        if current in producer and producer[current] not in needed:
            needed.add(producer[current])
            stack += node_reads(graph.node[producer[current]])
    return sorted(needed)


def _ordered(values) -> list[str]:
    return list(dict.fromkeys(values))
