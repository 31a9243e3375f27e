"""Nodes of two graphs, once paired (inspector.onnx.diff.matching): which were removed, added or changed,
and how each node of B should be coloured in a drawing. No torch here.

A paired node changed when an attribute differs (an unset one counts as its default), a weight it
reads differs (beyond tolerance), an input became a weight or stopped being one, or an input comes
from another node than before. "Another node" looks through the nodes one side lost or gained: a
HardSwish that read a BatchNormalization, now folded into the Conv before it, still reads from
that Conv, so it did not change; it sits next to a removed node ("removed-neighbour").
"""

from __future__ import annotations

import functools

from .diff_report import NodeChange
from .graph_index import GraphIndex
from .matching import NodeMatch
from .weight_diff import WeightDiff


def node_changes(a: GraphIndex, b: GraphIndex, match: NodeMatch, weights: WeightDiff):
    """(NodeChange rows, A's order then B's; B node name -> its states for a drawing)."""
    wiring = _Wiring(a, b, match)
    rows: list = []
    states: dict = {}
    removed = set(match.removed)
    for i, node in enumerate(a.nodes):
        if i in removed:
            rows.append(NodeChange("removed", node.op_type, a.modules[i], a.names[i], None))
            continue
        j = match.pairs[i]
        reasons = _reasons(node, b.nodes[j], weights, wiring, i, j)
        if reasons:
            module, name_a, name_b = a.modules[i], a.names[i], b.names[j]
            rows.append(NodeChange("changed", node.op_type, module, name_a, name_b, reasons))
            states.setdefault(b.names[j], []).append("changed")
    for j in match.added:
        rows.append(NodeChange("added", b.nodes[j].op_type, b.modules[j], None, b.names[j]))
        states.setdefault(b.names[j], []).append("added")
    for j in wiring.neighbours_of_removed():
        states.setdefault(b.names[j], []).append("removed-neighbour")
    return rows, {name: tuple(states[name]) for name in b.names if name in states}  # B's order


def _reasons(node_a, node_b, weights: WeightDiff, wiring, i: int, j: int) -> tuple[str, ...]:
    reasons = _attribute_reasons(node_a, node_b)
    slots = _input_names(node_b.domain, node_b.op_type)
    inputs_a, inputs_b = list(node_a.input), list(node_b.input)
    for k in range(max(len(inputs_a), len(inputs_b))):
        value_a = inputs_a[k] if k < len(inputs_a) else ""
        value_b = inputs_b[k] if k < len(inputs_b) else ""
        slot = slots[k] if k < len(slots) else (slots[-1] if slots else f"input {k}")
        reason = _input_reason(slot, value_a, value_b, weights, wiring, i, j)
        if reason:
            reasons.append(reason)
    if len(node_a.output) != len(node_b.output):
        reasons.append(f"{len(node_a.output)} output(s) -> {len(node_b.output)}")
    return tuple(reasons)


def _input_reason(slot, value_a, value_b, weights: WeightDiff, wiring, i, j) -> str | None:
    if not value_a and not value_b:
        return None
    if not value_a:
        return f"{slot}: added ({value_b})"
    if not value_b:
        return f"{slot}: removed ({value_a})"
    weight_a, weight_b = value_a in weights.a, value_b in weights.b
    if weight_a and weight_b:
        change = weights.compare(value_a, value_b)
        if change is None:
            return None
        if change.kind == "shape":
            return f"{slot}: {value_b} {change.a} -> {change.b}"
        return f"{slot}: {value_b} has other values (max abs diff {change.max_abs_diff:.3g})"
    if weight_a or weight_b:
        return f"{slot}: {'a weight' if weight_a else 'computed'} in A, " + (
            "a weight in B" if weight_b else "computed in B"
        )
    if not wiring.same_source(value_a, value_b):
        return (
            f"{slot}: comes from {wiring.b.source(value_b)} instead of {wiring.a.source(value_a)}"
        )
    return None


def _attribute_reasons(node_a, node_b) -> list[str]:
    """Attributes that differ, an unset one counting as its default (Conv's auto_pad NOTSET)."""
    given_a = {attr.name: attr.SerializeToString() for attr in node_a.attribute}
    given_b = {attr.name: attr.SerializeToString() for attr in node_b.attribute}
    if given_a == given_b:
        return []
    values_a, values_b = _attributes(node_a), _attributes(node_b)
    return [
        f"attribute {name}: {_short(values_a.get(name))} -> {_short(values_b.get(name))}"
        for name in [*values_a, *(n for n in values_b if n not in values_a)]
        if values_a.get(name) != values_b.get(name)
    ]


def _attributes(node) -> dict:
    """Attribute name -> value (serialized for tensors and graphs), defaults filled in."""
    import onnx

    given = {attribute.name: attribute for attribute in node.attribute}
    values = {}
    for name, attribute in {**_defaults(node.domain, node.op_type), **given}.items():
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, onnx.TensorProto | onnx.GraphProto):
            value = value.SerializeToString()
        values[name] = value
    return values


@functools.lru_cache(maxsize=512)
def _defaults(domain: str, op_type: str) -> dict:
    import onnx

    try:
        schema = onnx.defs.get_schema(op_type, domain=domain)
    except onnx.defs.SchemaError:
        return {}
    return {
        name: attribute.default_value
        for name, attribute in schema.attributes.items()
        if attribute.default_value.type != onnx.AttributeProto.UNDEFINED  # no default
    }


@functools.lru_cache(maxsize=512)
def _input_names(domain: str, op_type: str) -> tuple[str, ...]:
    """The op schema's names for its inputs (Conv: X, W, B), where onnx knows the op."""
    import onnx

    try:
        return tuple(formal.name for formal in onnx.defs.get_schema(op_type, domain=domain).inputs)
    except onnx.defs.SchemaError:
        return ()


def _short(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value) if isinstance(value, (int, float, str, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


class _Wiring:
    """Where node inputs come from, seen through the nodes one side lost or gained."""

    def __init__(self, a: GraphIndex, b: GraphIndex, match: NodeMatch):
        self.a, self.b, self.match = a, b, match
        self.removed, self.added = set(match.removed), set(match.added)

    def same_source(self, value_a: str, value_b: str) -> bool:
        """The two values come from paired nodes, or from the same graph input."""
        source_a = _surviving(self.a, self.removed, value_a)
        source_b = _surviving(self.b, self.added, value_b)
        if isinstance(source_a, int) and isinstance(source_b, int):
            return self.match.pairs.get(source_a) == source_b
        return source_a == source_b

    def neighbours_of_removed(self) -> list[int]:
        """B's nodes paired with a node that fed, or read from, a node B lost."""
        found: set = set()
        for r in self.removed:
            node = self.a.nodes[r]
            around = [self.a.producers.get(v) for v in node.input]
            around += [c for v in node.output for c in self.a.consumers.get(v, ())]
            found.update(self.match.pairs[i] for i in around if i in self.match.pairs)
        return sorted(found)


def _surviving(graph: GraphIndex, skipped: set, value: str):
    """The node (index) or graph input (name) a value comes from, looking through the nodes in
    `skipped` (those the other side does not have) along their first computed input."""
    seen = set()
    while graph.producers.get(value) in skipped and value not in seen:
        seen.add(value)
        node = graph.nodes[graph.producers[value]]
        computed = [v for v in node.input if v in graph.producers or v in graph.inputs]
        if not computed:
            break
        value = computed[0]
    return graph.producers.get(value, value)
