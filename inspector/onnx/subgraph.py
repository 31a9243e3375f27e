"""Cut part of an ONNX graph out as a model of its own: the nodes of one or more PyTorch modules,
with the values crossing the cut as the new graph's inputs and outputs (typed, with their shapes).

The weights the cut nodes use stay initializers, so the excerpt runs in onnxruntime on the boundary
values and Netron draws it as it draws the whole graph. No torch here.
"""

from __future__ import annotations

import difflib

from ..errors import InspectorError, option
from .scopes import has_scopes, module_paths, node_scopes

NO_SCOPES_HINT = (
    "it records no PyTorch module names; export it with inspector (the dynamo exporter writes "
    "them into each node's metadata)"
)


def cut_modules(model, paths: list[str], *, label: str = "the model"):
    """A model holding only the nodes exported from the modules `paths` (and modules inside them).

    Raises InspectorError naming an unknown path (with the nearest known ones).
    """
    graph = model.graph
    if not has_scopes(graph):
        raise InspectorError(
            f"{option('--module', 'module')}: {label} cannot be cut by module: {NO_SCOPES_HINT}"
        )
    known = set(module_paths(graph))
    # A collapsed view labels modules features/4 (Netron cuts labels at dots): take that too.
    paths = [p if p in known else p.replace("/", ".") for p in paths]
    for path in paths:
        if path not in known:
            raise InspectorError(
                f"{option('--module', 'module', path)}: {label} has no module {path!r}"
                f"{_hint(path, graph)}"
            )
    wanted = set(paths)
    nodes = [node for node in graph.node if wanted.intersection(node_scopes(node))]
    name = f"{graph.name or 'graph'} [{', '.join(paths)}]"
    excerpt = cut_nodes(model, nodes, name=name)
    excerpt.metadata_props.add(key="inspector.modules", value=",".join(paths))
    return excerpt


def cut_nodes(model, nodes, *, name: str | None = None):
    """A model of `nodes` (NodeProtos of model.graph, kept in the graph's order).

    Its inputs are the values the nodes read but do not make (graph inputs or other nodes'
    outputs); its outputs are the values they make that the rest of the graph, or the graph's own
    outputs, read. Initializers the nodes read stay initializers.
    """
    import onnx

    graph = model.graph
    chosen = {id(node) for node in nodes}
    inside = [node for node in graph.node if id(node) in chosen]
    if not inside:
        raise InspectorError("there are no nodes to cut out")
    made = {value for node in inside for value in node.output if value}
    initializers = {init.name: init for init in graph.initializer}
    read = _ordered(value for node in inside for value in node_reads(node))
    boundary_in = [v for v in read if v not in made and v not in initializers]
    read_outside = {v for node in graph.node if id(node) not in chosen for v in node_reads(node)}
    read_outside.update(output.name for output in graph.output)
    boundary_out = [v for node in inside for v in node.output if v and v in read_outside]
    if not boundary_out:  # nothing reads them (dead code): show what the last node makes
        boundary_out = [v for v in inside[-1].output if v]
    types = _value_types(model, [*boundary_in, *boundary_out])
    excerpt = onnx.helper.make_graph(
        inside,
        name or graph.name,
        inputs=[types[v] for v in boundary_in],
        outputs=[types[v] for v in boundary_out],
        initializer=[initializers[v] for v in read if v in initializers],
        value_info=[
            info for info in graph.value_info if info.name in made and info.name not in boundary_out
        ],
    )
    return _model_like(model, excerpt, inside)


def node_reads(node) -> list[str]:
    """The values a node reads: its inputs, and the outer values its subgraphs (If, Loop) use."""
    reads = [value for value in node.input if value]
    for attribute in node.attribute:
        subgraphs = [attribute.g] if attribute.HasField("g") else []
        for subgraph in [*subgraphs, *attribute.graphs]:
            reads += _outer_reads(subgraph)
    return reads


def _outer_reads(graph) -> list[str]:
    defined = {v.name for v in graph.input} | {init.name for init in graph.initializer}
    reads = []
    for node in graph.node:
        reads += [value for value in node_reads(node) if value not in defined]
        defined.update(node.output)
    return reads


def _ordered(values) -> list[str]:
    return list(dict.fromkeys(values))


def _value_types(model, names: list[str]) -> dict:
    """ValueInfoProtos for `names`, from the graph, or from shape inference when the file has none."""
    import onnx

    graph = model.graph
    known = {v.name: v for v in [*graph.input, *graph.output, *graph.value_info]}
    if any(name not in known for name in names):
        inferred = onnx.shape_inference.infer_shapes(_weightless(model)).graph
        for value in [*inferred.input, *inferred.output, *inferred.value_info]:
            known.setdefault(value.name, value)
    # A value nothing could type is still a valid (untyped) boundary: onnx accepts a bare name.
    return {name: known.get(name) or onnx.ValueInfoProto(name=name) for name in names}


def _weightless(model):
    """A copy whose large initializers are typed graph inputs: shape inference needs only types."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    kept, inputs = [], {v.name for v in graph.input}
    for init in graph.initializer:
        if init.ByteSize() <= 1024:  # small ones may be shapes that inference reads
            kept.append(init)
        elif init.name not in inputs:
            graph.input.append(
                onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return copy


def _model_like(model, graph, nodes):
    """A model around `graph` with the source model's opsets, IR version and used functions."""
    import onnx

    used = {(node.domain, node.op_type) for node in nodes}
    excerpt = onnx.helper.make_model(
        graph,
        opset_imports=list(model.opset_import),
        functions=[f for f in model.functions if (f.domain, f.name) in used],
    )
    excerpt.ir_version = model.ir_version
    excerpt.producer_name, excerpt.producer_version = model.producer_name, model.producer_version
    for prop in model.metadata_props:
        excerpt.metadata_props.add(key=prop.key, value=prop.value)
    return excerpt


def _hint(path: str, graph) -> str:
    known = module_paths(graph)
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
    if close:
        return f"; did you mean {', '.join(close)}?"
    top = [p for p in known if "." not in p]
    return f"; its top-level modules are {', '.join(top[:12])}" if top else ""
