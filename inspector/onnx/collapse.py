"""A collapsed view of an ONNX graph: every PyTorch module N levels below the root becomes one node.

Each collapsed module is a model-local ONNX function (domain `inspector.modules`) called once from
the main graph, so the result is still a valid model that onnxruntime runs and Netron draws: the
call is one box labelled with the module path (as features/4: Netron cuts labels at dots), named
by it, with the module's class, parameter count and output shape as attributes, and Netron opens
the function to show the layers inside. The weights a module uses move into its function as
Constant nodes, which Netron draws as the layers' own weights.

A module whose nodes cannot be one node without a cycle (a shared module called at two places) is
split into its separate calls, and a call that still cannot is left expanded. No torch here.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass

from ..errors import InspectorError, option
from .scopes import NAME_SCOPES, has_scopes, module_types, node_scopes
from .subgraph import NO_SCOPES_HINT, node_reads

DOMAIN = "inspector.modules"
ATTRIBUTES = ("type", "params", "output_shape")


@dataclass
class _Unit:
    """Nodes (indices into graph.node) that become one node of the collapsed graph."""

    path: str | None  # the module, or None for a node left as it is
    nodes: list[int]
    split: bool = False  # already split into its connected parts


def collapse(model, depth: int, *, label: str = "the model"):
    """The model with each module `depth` levels below the root drawn as one function call."""

    graph = model.graph
    _check_depth(graph, depth, label)
    units = _ordered_units(graph, [_group_key(node, depth) for node in graph.node])
    names = _function_names(units)
    initializers = {init.name: init for init in graph.initializer}
    types = {v.name: v for v in [*graph.input, *graph.output, *graph.value_info]}
    unit_reads = [{v for i in unit.nodes for v in node_reads(graph.node[i])} for unit in units]
    readers = Counter(v for reads in unit_reads for v in reads)
    readers.update(output.name for output in graph.output)
    nodes, functions = [], []
    for unit, name, reads in zip(units, names, unit_reads, strict=True):
        if unit.path is None:
            nodes.append(graph.node[unit.nodes[0]])
            continue
        # A value leaves the function when another node (or the graph's output) reads it.
        made = [v for i in unit.nodes for v in graph.node[i].output if v]
        needed = [v for v in made if readers[v] > (v in reads)] or made[-1:]
        function, call = _function_for(model, unit, name or "", initializers, types, needed)
        functions.append(function)
        nodes.append(call)
    return _collapsed_model(model, nodes, functions, initializers)


def collapsed_size(graph, depth: int) -> int:
    """How many nodes the graph has collapsed at `depth` (before any split of a shared module)."""
    keys = [_group_key(node, depth) for node in graph.node]
    groups = {key for key in keys if key is not None}
    return len(groups) + keys.count(None)


def deepest_depth_within(graph, limit: int) -> int | None:
    """The most detailed depth whose collapsed graph has at most `limit` nodes (None: none has)."""
    deepest = max((len(node_scopes(node)) for node in graph.node), default=0)
    for depth in range(deepest, 0, -1):
        if collapsed_size(graph, depth) <= limit:
            return depth
    return None


def _check_depth(graph, depth: int, label: str) -> None:
    if depth < 1:
        raise InspectorError(f"{option('--depth', 'depth', depth)}: give a depth of 1 or more")
    if not has_scopes(graph):
        raise InspectorError(
            f"{option('--depth', 'depth')}: {label} cannot be collapsed by module: {NO_SCOPES_HINT}"
        )


def _group_key(node, depth: int) -> str | None:
    scopes = node_scopes(node)
    return scopes[depth - 1] if len(scopes) >= depth else None


# --- which nodes become one node, in an order that keeps the graph topologically sorted -------


def _ordered_units(graph, keys: list[str | None]) -> list[_Unit]:
    by_path: dict[str, list[int]] = {}
    units = []
    for index, key in enumerate(keys):
        if key is None:
            units.append(_Unit(None, [index]))
        else:
            by_path.setdefault(key, []).append(index)
    pending = [_Unit(path, nodes) for path, nodes in by_path.items()]
    consumers = _consumers(graph)
    while pending:
        unit = pending.pop()
        if len(unit.nodes) == 1:
            units.append(_Unit(None, unit.nodes))  # one node stands for itself
        elif _is_convex(graph, consumers, set(unit.nodes)):
            units.append(unit)
        elif not unit.split:
            pending += [_Unit(unit.path, part, split=True) for part in _parts(graph, unit.nodes)]
        else:
            units += [_Unit(None, [index]) for index in unit.nodes]
    return _topological(graph, units)


def _is_convex(graph, consumers: dict, members: set[int]) -> bool:
    """No path leaves the nodes and comes back into them (else one node would make a cycle)."""
    last = max(members)
    made = {value for index in members for value in graph.node[index].output}
    todo = [c for value in made for c in consumers.get(value, ()) if c not in members]
    seen = set(todo)
    while todo:
        index = todo.pop()
        # Nodes are in topological order: one after the last member cannot lead back into them.
        if index > last:
            continue
        for value in graph.node[index].output:
            for consumer in consumers.get(value, ()):
                if consumer in members:
                    return False
                if consumer not in seen:
                    seen.add(consumer)
                    todo.append(consumer)
    return True


def _parts(graph, nodes: list[int]) -> list[list[int]]:
    """The weakly connected parts of `nodes` (each call of a module called more than once)."""
    parent = {index: index for index in nodes}

    def root(index):
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    producer = {value: index for index in nodes for value in graph.node[index].output}
    for index in nodes:
        for value in node_reads(graph.node[index]):
            if value in producer:
                parent[root(index)] = root(producer[value])
    parts: dict[int, list[int]] = {}
    for index in nodes:
        parts.setdefault(root(index), []).append(index)
    return list(parts.values())


def _consumers(graph) -> dict[str, list[int]]:
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for value in node_reads(node):
            consumers.setdefault(value, []).append(index)
    return consumers


def _topological(graph, units: list[_Unit]) -> list[_Unit]:
    """Kahn's algorithm over the units, earliest original node first among the ready ones."""
    owner = {index: u for u, unit in enumerate(units) for index in unit.nodes}
    producer = {value: owner[i] for i, node in enumerate(graph.node) for value in node.output}
    needs: list[set] = [set() for _ in units]
    users: list[set] = [set() for _ in units]
    for u, unit in enumerate(units):
        for index in unit.nodes:
            for value in node_reads(graph.node[index]):
                source = producer.get(value)
                if source is not None and source != u:
                    needs[u].add(source)
                    users[source].add(u)
    ready = [(min(unit.nodes), u) for u, unit in enumerate(units) if not needs[u]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, u = heapq.heappop(ready)
        order.append(units[u])
        for user in users[u]:
            needs[user].discard(u)
            if not needs[user]:
                heapq.heappush(ready, (min(units[user].nodes), user))
    return order


def _function_names(units: list[_Unit]) -> list[str | None]:
    """The module path written with slashes (Netron labels a node with the part of its op type
    after the last dot, which would leave "4" of "features.4"), with #2, #3 ... for the further
    calls of a module split into its calls."""
    seen: dict[str, int] = {}
    names: list[str | None] = []
    for unit in units:
        if unit.path is None:
            names.append(None)
            continue
        seen[unit.path] = seen.get(unit.path, 0) + 1
        count = seen[unit.path]
        name = unit.path.replace(".", "/")
        names.append(name if count == 1 else f"{name}#{count}")
    return names


# --- building the functions and the model -------------------------------------------------------


def _function_for(model, unit: _Unit, name: str, initializers: dict, types: dict, outputs: list):
    assert unit.path is not None and name  # module units only; loose nodes are kept as they are
    """(FunctionProto, the NodeProto that calls it) for one collapsed module; `outputs` are the
    values it makes that are read outside it."""
    import onnx

    graph = model.graph
    nodes = [graph.node[index] for index in unit.nodes]
    made = {value for node in nodes for value in node.output if value}
    reads = list(dict.fromkeys(v for node in nodes for v in node_reads(node) if v not in made))
    weights = [initializers[v] for v in reads if v in initializers]
    inputs = [v for v in reads if v not in initializers]
    constants = [onnx.helper.make_node("Constant", [], [w.name], value=w) for w in weights]
    function = onnx.helper.make_function(
        DOMAIN,
        name,
        inputs,
        outputs,
        [*constants, *nodes],
        [op for op in model.opset_import if op.domain != DOMAIN],
        attributes=list(ATTRIBUTES),
    )
    if model.ir_version >= 10:  # value types inside functions arrived with IR version 10
        function.value_info.extend(types[v] for v in made if v in types)
    call = onnx.helper.make_node(
        name,
        inputs,
        outputs,
        name=unit.path,
        domain=DOMAIN,
        type=_module_type(nodes, unit.path),
        params=sum(math.prod(w.dims) for w in weights),
        output_shape=_shape_text(types.get(outputs[0])),
    )
    scopes = _scopes_up_to(nodes[0], unit.path)
    call.metadata_props.add(key=NAME_SCOPES, value=repr(["", *scopes, name]))
    return function, call


def _module_type(nodes, path: str) -> str:
    for node in nodes:
        found = module_types(node).get(path)
        if found:
            return found
    return "module"


def _scopes_up_to(node, path: str) -> list[str]:
    scopes = node_scopes(node)
    return scopes[: scopes.index(path) + 1] if path in scopes else [path]


def _collapsed_model(model, nodes, functions, initializers: dict):
    import onnx

    graph = model.graph
    made = {v for node in nodes for v in node.output}
    reads = {v for node in nodes for v in node_reads(node)}
    collapsed = onnx.helper.make_graph(
        nodes,
        graph.name,
        inputs=list(graph.input),
        outputs=list(graph.output),
        initializer=[init for name, init in initializers.items() if name in reads],
        value_info=[info for info in graph.value_info if info.name in made],
    )
    opsets = [op for op in model.opset_import if op.domain != DOMAIN]
    opsets.append(onnx.helper.make_opsetid(DOMAIN, 1))
    result = onnx.helper.make_model(
        collapsed, opset_imports=opsets, functions=[*model.functions, *functions]
    )
    result.ir_version = max(model.ir_version, 8)  # model-local functions need IR version 8
    result.producer_name, result.producer_version = model.producer_name, model.producer_version
    for prop in model.metadata_props:
        result.metadata_props.add(key=prop.key, value=prop.value)
    return result


def _shape_text(value) -> str:
    if value is None or not value.type.tensor_type.HasField("shape"):
        return "?"
    dims = [
        d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?")
        for d in value.type.tensor_type.shape.dim
    ]
    return "×".join(dims) if dims else "scalar"
