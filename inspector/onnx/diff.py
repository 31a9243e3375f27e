"""Compare two ONNX models: interface, opsets, metadata, ops, nodes per PyTorch module, weights,
and their outputs on the same seeded inputs. No torch here, so tests and CI can diff two exports
(or two architecture snapshots) with only onnx and onnxruntime:

    from inspector.onnx.diff import diff_models
    result = diff_models("authored.onnx", "optimized.onnx")
    assert result, result  # truthy when equal; prints a summary line and tables

Nodes are paired across the graphs by inspector.onnx.matching. A paired node changed when its
attributes, its weights (beyond atol/rtol, as verify compares outputs) or where its inputs come
from differ; a node of B next to a node that A had and B lost is a "removed-neighbour" (the Conv
that BatchNormalization was folded into).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..defaults import ATOL, DIFF_BATCH_SIZES, RTOL, SEEDS
from ..errors import InspectorError
from .compare import compare_arrays, compare_outputs, largest_value, scale_warnings
from .diff_report import InitializerChange, ModelDiff, NodeChange, OpCount, TensorChange
from .files import check_onnx_file, load_onnx
from .inputs import input_specs, recorded_shapes, seeded_arrays
from .matching import NodeMatch, match_nodes
from .report import Run
from .runtime import feeds, open_session, output_names, run_session
from .scopes import node_module

_MAX_PROTO_BYTES = 2**31 - 1


def diff_models(
    a,
    b,
    *,
    run: bool = True,
    atol: float = ATOL,
    rtol: float = RTOL,
    seeds: int = SEEDS,
    labels: tuple[str, str] | None = None,
) -> ModelDiff:
    """Compare model `a` with model `b`: each an onnx.ModelProto or the path of an .onnx file.

    With `run`, and when both take the same inputs, both run in onnxruntime on `seeds` seeded
    inputs per batch size and their outputs are compared (|a - b| > atol + rtol * |a| mismatches).
    A path is checked (inspector.onnx.files) before it is read or run.
    """
    if not (atol >= 0 and rtol >= 0):
        raise InspectorError(f"atol and rtol must be numbers >= 0 (got {atol}, {rtol})")
    model_a, label_a = _model(a, run)
    model_b, label_b = _model(b, run)
    labels = labels or (label_a, label_b)
    result = ModelDiff(labels[0], labels[1], atol, rtol)
    result.sizes = _sizes(model_a, model_b)
    result.interface = _interface(model_a.graph, model_b.graph)
    result.opsets = (_opsets(model_a), _opsets(model_b))
    result.metadata = _metadata(model_a, model_b)
    result.ops = _ops(model_a.graph, model_b.graph)
    weights = _Weights(model_a.graph, model_b.graph, atol, rtol)
    result.initializers = weights.changes()
    match = match_nodes(model_a.graph, model_b.graph)
    result.nodes, result.node_states = _nodes(model_a.graph, model_b.graph, match, weights)
    if run:
        result.runs, result.runs_skipped = _compare_outputs(a, b, model_a, model_b, result, seeds)
    return result


def unique_node_names(graph) -> list[str]:
    """A name for every node: its own, unless empty or taken (then `<op>_<index>`)."""
    counts = Counter(node.name for node in graph.node)
    names = []
    for index, node in enumerate(graph.node):
        unique = node.name and counts[node.name] == 1
        names.append(node.name if unique else f"{node.op_type}_{index}")
    return names


def _model(source, run: bool):
    """(ModelProto with its weights, label) from a proto or a path (checked first)."""
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source, source.graph.name or "model"
    path = Path(source)
    if run:
        check_onnx_file(path)  # onnxruntime will run it: the checker and a first load
    return load_onnx(path, external_data=True), path.name


# --- structure -------------------------------------------------------------------------------


def _sizes(model_a, model_b) -> dict:
    return {
        "nodes": {"a": len(model_a.graph.node), "b": len(model_b.graph.node)},
        "initializers": {"a": len(model_a.graph.initializer), "b": len(model_b.graph.initializer)},
    }


def _interface(graph_a, graph_b) -> list[TensorChange]:
    changes = []
    for kind in ("input", "output"):
        side_a, side_b = _typed(graph_a, kind), _typed(graph_b, kind)
        for name in [*side_a, *(n for n in side_b if n not in side_a)]:
            if side_a.get(name) != side_b.get(name):
                changes.append(TensorChange(name, kind, side_a.get(name), side_b.get(name)))
    return changes


def _typed(graph, kind: str) -> dict[str, str]:
    initializers = {init.name for init in graph.initializer}
    values = graph.input if kind == "input" else graph.output
    return {v.name: _type_text(v) for v in values if v.name not in initializers}


def _type_text(value) -> str:
    import onnx

    tensor = value.type.tensor_type
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    except (KeyError, TypeError, ValueError):
        dtype = "?"
    dims = [
        d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?")
        for d in tensor.shape.dim
    ]
    return f"{dtype}[{','.join(dims)}]"


def _opsets(model) -> dict[str, int]:
    # "" and "ai.onnx" both name the default domain.
    return {("" if op.domain == "ai.onnx" else op.domain): op.version for op in model.opset_import}


def _metadata(model_a, model_b) -> list[tuple[str, str | None, str | None]]:
    def entries(model) -> dict[str, str]:
        found = {p.key: p.value for p in model.metadata_props}
        found.update(
            {
                "(ir_version)": str(model.ir_version),
                "(producer)": f"{model.producer_name} {model.producer_version}".strip(),
                "(graph name)": model.graph.name,
            }
        )
        return found

    side_a, side_b = entries(model_a), entries(model_b)
    keys = [*side_a, *(k for k in side_b if k not in side_a)]
    return [(k, side_a.get(k), side_b.get(k)) for k in keys if side_a.get(k) != side_b.get(k)]


def _ops(graph_a, graph_b) -> list[OpCount]:
    count_a = Counter(_op_name(node) for node in graph_a.node)
    count_b = Counter(_op_name(node) for node in graph_b.node)
    ops = sorted({*count_a, *count_b}, key=lambda op: (-max(count_a[op], count_b[op]), op))
    return [OpCount(op, count_a[op], count_b[op]) for op in ops]


def _op_name(node) -> str:
    return f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


class _Weights:
    """The initializers of both graphs, compared by name (each pair compared once)."""

    def __init__(self, graph_a, graph_b, atol: float, rtol: float):
        self.a = {init.name: init for init in graph_a.initializer}
        self.b = {init.name: init for init in graph_b.initializer}
        self.atol, self.rtol = atol, rtol
        self._compared: dict[tuple[str, str], InitializerChange | None] = {}

    def changes(self) -> list[InitializerChange]:
        found = []
        for name, init in self.a.items():
            if name not in self.b:
                found.append(InitializerChange(name, "removed", _tensor_text(init), None))
            else:
                change = self.compare(name, name)
                if change:
                    found.append(change)
        found += [
            InitializerChange(name, "added", None, _tensor_text(init))
            for name, init in self.b.items()
            if name not in self.a
        ]
        return found

    def compare(self, name_a: str, name_b: str) -> InitializerChange | None:
        """The difference between A's `name_a` and B's `name_b` (None: equal within tolerance)."""
        key = (name_a, name_b)
        if key not in self._compared:
            self._compared[key] = self._difference(self.a[name_a], self.b[name_b])
        return self._compared[key]

    def _difference(self, init_a, init_b) -> InitializerChange | None:
        from onnx import numpy_helper

        text_a, text_b = _tensor_text(init_a), _tensor_text(init_b)
        if text_a != text_b:
            return InitializerChange(init_b.name, "shape", text_a, text_b)
        if init_a.SerializeToString() == init_b.SerializeToString():
            return None
        values_a, values_b = numpy_helper.to_array(init_a), numpy_helper.to_array(init_b)
        diff = compare_arrays(init_b.name, values_a, values_b, atol=self.atol, rtol=self.rtol)
        if diff:
            return None
        return InitializerChange(
            init_b.name, "values", text_a, text_b, diff.max_abs_diff, diff.mismatched
        )


def _tensor_text(init) -> str:
    import onnx

    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name
    except (KeyError, TypeError, ValueError):
        dtype = "?"
    return f"{dtype}[{','.join(str(d) for d in init.dims)}]"


# --- nodes -----------------------------------------------------------------------------------


def _nodes(graph_a, graph_b, match: NodeMatch, weights: _Weights):
    """(NodeChange rows in A's order then B's, B node name -> its states for a drawing)."""
    names_a, names_b = unique_node_names(graph_a), unique_node_names(graph_b)
    wiring = _Wiring(graph_a, graph_b, match)
    rows, states = [], {name: () for name in names_b}
    removed = set(match.removed)
    for a in range(len(graph_a.node)):
        node = graph_a.node[a]
        if a in removed:
            rows.append(NodeChange("removed", node.op_type, node_module(node), names_a[a], None))
            continue
        b = match.pairs[a]
        reasons = _reasons(node, graph_b.node[b], weights, wiring, a, b)
        if reasons:
            module = node_module(node)
            rows.append(
                NodeChange("changed", node.op_type, module, names_a[a], names_b[b], reasons)
            )
            states[names_b[b]] += ("changed",)
    for b in match.added:
        node = graph_b.node[b]
        rows.append(NodeChange("added", node.op_type, node_module(node), None, names_b[b]))
        states[names_b[b]] += ("added",)
    for b in wiring.neighbours_of_removed():
        states[names_b[b]] += ("removed-neighbour",)
    return rows, {name: found for name, found in states.items() if found}


def _reasons(node_a, node_b, weights: _Weights, wiring, a: int, b: int) -> tuple[str, ...]:
    reasons = _attribute_reasons(node_a, node_b)
    slots = _input_names(node_b)
    for k in range(max(len(node_a.input), len(node_b.input))):
        value_a = node_a.input[k] if k < len(node_a.input) else ""
        value_b = node_b.input[k] if k < len(node_b.input) else ""
        slot = slots[k] if k < len(slots) else f"input {k}"
        reason = _input_reason(slot, value_a, value_b, weights, wiring, a, b, k)
        if reason:
            reasons.append(reason)
    if len(node_a.output) != len(node_b.output):
        reasons.append(f"{len(node_a.output)} output(s) -> {len(node_b.output)}")
    return tuple(reasons)


def _input_reason(slot, value_a, value_b, weights, wiring, a, b, k) -> str | None:
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
    if weight_a != weight_b:
        return f"{slot}: {'a weight' if weight_a else 'computed'} in A, " + (
            "a weight in B" if weight_b else "computed in B"
        )
    if not wiring.same_source(a, b, k):
        return f"{slot}: comes from {wiring.source_b(b, k)} instead of {wiring.source_a(a, k)}"
    return None


def _attribute_reasons(node_a, node_b) -> list[str]:
    """Attributes that differ, an unset one counting as its default (Conv's auto_pad NOTSET)."""
    values_a, values_b = _attributes(node_a), _attributes(node_b)
    reasons = []
    for name in [*values_a, *(n for n in values_b if n not in values_a)]:
        value_a, value_b = values_a.get(name), values_b.get(name)
        if value_a != value_b:
            reasons.append(f"attribute {name}: {_short(value_a)} -> {_short(value_b)}")
    return reasons


def _attributes(node) -> dict:
    """Attribute name -> value (serialized for tensors and graphs), defaults filled in."""
    import onnx

    values = {}
    try:
        schema = onnx.defs.get_schema(node.op_type, domain=node.domain)
        defaults = {n: a.default_value for n, a in schema.attributes.items()}
    except onnx.defs.SchemaError:
        defaults = {}
    given = {attribute.name: attribute for attribute in node.attribute}
    for name, attribute in {**defaults, **given}.items():
        if attribute.type == onnx.AttributeProto.UNDEFINED:
            continue  # no default: unset means unset
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, onnx.TensorProto | onnx.GraphProto):
            value = value.SerializeToString()
        values[name] = value
    return values


def _short(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value) if isinstance(value, (int, float, str, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _input_names(node) -> list[str]:
    """The op schema's names for the node's inputs (Conv: X, W, B), where onnx knows the op."""
    import onnx

    try:
        schema = onnx.defs.get_schema(node.op_type, domain=node.domain)
    except onnx.defs.SchemaError:
        return []
    names = [formal.name for formal in schema.inputs]
    if names and schema.inputs[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
        names += [names[-1]] * max(0, len(node.input) - len(names))
    return names


class _Wiring:
    """Where each node input comes from, seen through the nodes one side lost or gained."""

    def __init__(self, graph_a, graph_b, match: NodeMatch):
        self.graph_a, self.graph_b, self.match = graph_a, graph_b, match
        self.producer_a = _producers(graph_a)
        self.producer_b = _producers(graph_b)
        self.inputs_a = {v.name for v in graph_a.input}
        self.inputs_b = {v.name for v in graph_b.input}
        self.removed = set(match.removed)
        self.added = set(match.added)
        self.names_a, self.names_b = unique_node_names(graph_a), unique_node_names(graph_b)

    def same_source(self, a: int, b: int, k: int) -> bool:
        """Input k of A's node a and of B's node b come from the same (paired) node or input."""
        value_a, value_b = self.graph_a.node[a].input[k], self.graph_b.node[b].input[k]
        source_a = _surviving(self.graph_a, self.producer_a, self.inputs_a, self.removed, value_a)
        source_b = _surviving(self.graph_b, self.producer_b, self.inputs_b, self.added, value_b)
        if isinstance(source_a, int) and isinstance(source_b, int):
            return self.match.pairs.get(source_a) == source_b
        return source_a == source_b

    def source_a(self, a: int, k: int) -> str:
        return self._describe(self.graph_a.node[a].input[k], self.producer_a, self.names_a)

    def source_b(self, b: int, k: int) -> str:
        return self._describe(self.graph_b.node[b].input[k], self.producer_b, self.names_b)

    def neighbours_of_removed(self) -> list[int]:
        """B's nodes paired with a node that fed, or read from, a node B lost."""
        consumers = _consumers(self.graph_a)
        found = set()
        for r in self.removed:
            node = self.graph_a.node[r]
            around = [self.producer_a.get(v) for v in node.input]
            around += [c for v in node.output for c in consumers.get(v, ())]
            for index in around:
                if index is not None and index in self.match.pairs:
                    found.add(self.match.pairs[index])
        return sorted(found)

    @staticmethod
    def _describe(value: str, producer: dict, names: list[str]) -> str:
        return f"node {names[producer[value]]}" if value in producer else f"input {value}"


def _surviving(graph, producer: dict, graph_inputs: set, skipped: set, value: str):
    """The node (index) or graph input (name) a value comes from, looking through the nodes in
    `skipped` (those the other side does not have) along their first computed input."""
    seen = set()
    while value in producer and producer[value] in skipped and value not in seen:
        seen.add(value)
        node = graph.node[producer[value]]
        computed = [v for v in node.input if v in producer or v in graph_inputs]
        if not computed:
            break
        value = computed[0]
    return producer.get(value, value)


def _producers(graph) -> dict[str, int]:
    return {value: index for index, node in enumerate(graph.node) for value in node.output if value}


def _consumers(graph) -> dict[str, list[int]]:
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for value in node.input:
            consumers.setdefault(value, []).append(index)
    return consumers


# --- outputs ---------------------------------------------------------------------------------


def _compare_outputs(source_a, source_b, model_a, model_b, result: ModelDiff, seeds: int):
    """(runs, None), or (None, why the outputs cannot be compared)."""
    specs_a, specs_b = input_specs(model_a), input_specs(model_b)
    mismatch = _input_mismatch(specs_a, specs_b)
    if mismatch:
        return None, mismatch
    session_a = _session(source_a, model_a, result.a)
    session_b = _session(source_b, model_b, result.b)
    names = output_names(session_a)
    recorded = recorded_shapes(model_a)
    runs, peaks = [], []
    for batch_size in _batch_sizes(specs_a, specs_b):
        for seed in range(seeds):
            arrays = seeded_arrays(specs_a, seed=seed, batch_size=batch_size, recorded=recorded)
            outputs_a = run_session(session_a, feeds(session_a, arrays, result.a), result.a)
            outputs_b = run_session(session_b, feeds(session_b, arrays, result.b), result.b)
            diffs, notes = compare_outputs(
                names, outputs_a, outputs_b, atol=result.atol, rtol=result.rtol, sides=("A", "B")
            )
            runs.append(Run(seed, batch_size, diffs, notes=notes))
            peaks.append(largest_value(outputs_a))
    result.warnings += scale_warnings(peaks, result.atol)
    return runs, None


def _input_mismatch(specs_a, specs_b) -> str | None:
    if [s.name for s in specs_a] != [s.name for s in specs_b]:
        return "A and B take different inputs"
    for spec_a, spec_b in zip(specs_a, specs_b, strict=True):
        same_rank = len(spec_a.dims) == len(spec_b.dims)
        if spec_a.dtype != spec_b.dtype or not same_rank or not _dims_fit(spec_a, spec_b):
            return f"input {spec_a.name} is {spec_a} in A but {spec_b} in B"
    return None


def _dims_fit(spec_a, spec_b) -> bool:
    return all(
        not (isinstance(x, int) and isinstance(y, int)) or x == y
        for x, y in zip(spec_a.dims, spec_b.dims, strict=True)
    )


def _batch_sizes(specs_a, specs_b) -> list[int]:
    fixed = [s.dims[0] for s in [*specs_a, *specs_b] if s.dims and isinstance(s.dims[0], int)]
    return [fixed[0]] if fixed else list(DIFF_BATCH_SIZES)


def _session(source, model, label: str):
    import onnx

    if not isinstance(source, onnx.ModelProto):
        return open_session(Path(source), label)  # checked in _model
    if model.ByteSize() > _MAX_PROTO_BYTES:
        raise InspectorError(f"{label} is larger than 2 GB: give diff_models its file instead")
    return open_session(model.SerializeToString(), label)
