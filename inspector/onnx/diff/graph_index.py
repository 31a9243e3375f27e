"""One pass over an ONNX graph for what a diff asks of it again and again: its nodes, their names
and modules, who makes and who reads each value, its weights (no torch)."""

from __future__ import annotations

from collections import Counter

from ..scopes import node_module


class GraphIndex:
    def __init__(self, graph):
        self.graph = graph
        # protobuf builds a new wrapper on every graph.node[i]; keep one list of them.
        self.nodes = list(graph.node)
        self.names = unique_node_names(self.nodes)
        self.modules = [node_module(node) for node in self.nodes]
        self.initializers = {init.name: init for init in graph.initializer}
        self.inputs = {value.name for value in graph.input}
        self.producers = {v: i for i, node in enumerate(self.nodes) for v in node.output if v}
        self.consumers: dict[str, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for value in node.input:
                self.consumers.setdefault(value, []).append(index)

    def source(self, value: str) -> str:
        """Where a value comes from, in words: `node NAME` or `input NAME`."""
        producer = self.producers.get(value)
        return f"node {self.names[producer]}" if producer is not None else f"input {value}"


def unique_node_names(nodes) -> list[str]:
    """A name for every node: its own, unless empty or taken (then `<op>_<index>`)."""
    counts = Counter(node.name for node in nodes)
    return [
        node.name if node.name and counts[node.name] == 1 else f"{node.op_type}_{index}"
        for index, node in enumerate(nodes)
    ]
