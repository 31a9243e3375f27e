"""Compare two ONNX models: interface, opsets, metadata, ops, nodes per PyTorch module, weights,
and their outputs on the same seeded inputs. No torch here, so tests and CI can diff two exports
(or two architecture snapshots) with only onnx and onnxruntime:

    from inspector.onnx.diff import diff_models
    result = diff_models("authored.onnx", "optimized.onnx")
    assert result, result  # truthy when equal; prints a summary line and tables

Nodes are paired across the graphs by inspector.onnx.diff.matching and compared by
inspector.onnx.diff.node_diff; weights by name in inspector.onnx.diff.weight_diff.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from ...defaults import ATOL, DIFF_BATCH_SIZES, RTOL, SEEDS
from ...errors import InspectorError
from ...util.progress import step
from ..compare import compare_outputs, largest_value, scale_warnings
from ..files import check_onnx_file, check_onnx_file_once
from ..report import Run
from ..runtime import feeds, open_session, output_names, run_session
from .diff_report import ModelDiff, OpCount, TensorChange
from .graph_index import GraphIndex
from .inputs import input_specs, recorded_shapes, seeded_arrays
from .matching import match_nodes
from .node_diff import node_changes
from .weight_diff import WeightDiff

if TYPE_CHECKING:
    import onnx

_MAX_PROTO_BYTES = 2**31 - 1


def diff_models(
    a: onnx.ModelProto | str | os.PathLike[str],
    b: onnx.ModelProto | str | os.PathLike[str],
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

    Args:
        a: an onnx.ModelProto or the path of an .onnx file.
        b: the same, compared with `a`.
        run: also run both and compare their outputs.
        atol: the absolute tolerance for weights and outputs.
        rtol: the relative tolerance for weights and outputs.
        seeds: seeded random inputs per batch size.
        labels: the names the report gives A and B (default: their paths).

    Returns:
        A ModelDiff, truthy when the two are equal within the tolerances.
    """
    if not (atol >= 0 and rtol >= 0):
        raise InspectorError(f"atol and rtol must be numbers >= 0 (got {atol}, {rtol})")
    with step("checking and reading both ONNX files"):
        model_a, label_a = _model(a, run)
        model_b, label_b = _model(b, run)
    labels = labels or (label_a, label_b)
    result = ModelDiff(labels[0], labels[1], atol, rtol)
    index_a, index_b = GraphIndex(model_a.graph), GraphIndex(model_b.graph)
    result.sizes = _sizes(index_a, index_b)
    result.interface = _interface(index_a, index_b)
    result.opsets = (_opsets(model_a), _opsets(model_b))
    result.metadata = _metadata(model_a, model_b)
    result.ops = _ops(index_a.nodes, index_b.nodes)
    with step("comparing the weights and the nodes"):
        weights = WeightDiff(index_a.initializers, index_b.initializers, atol, rtol)
        result.initializers = weights.changes()
        match = match_nodes(index_a, index_b)
        result.nodes, result.node_states = node_changes(index_a, index_b, match, weights)
    if run:
        with step("running both in onnxruntime, comparing their outputs"):
            result.runs, result.runs_skipped = _compare_outputs(
                a, b, model_a, model_b, result, seeds
            )
    return result


def _model(source, run: bool):
    """(ModelProto with its weights, label) from a proto or a path (checked first)."""
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source, source.graph.name or "model"
    # Checked before it is read; with the first onnxruntime load too when it will be run.
    path = check_onnx_file_once(source) if run else check_onnx_file(source, runtime=False)
    return onnx.load(str(path)), path.name


# --- structure -------------------------------------------------------------------------------


def _sizes(a: GraphIndex, b: GraphIndex) -> dict:
    return {
        "nodes": {"a": len(a.nodes), "b": len(b.nodes)},
        "initializers": {"a": len(a.initializers), "b": len(b.initializers)},
    }


def _interface(a: GraphIndex, b: GraphIndex) -> list[TensorChange]:
    changes = []
    for kind in ("input", "output"):
        side_a, side_b = _typed(a, kind), _typed(b, kind)
        for name in [*side_a, *(n for n in side_b if n not in side_a)]:
            if side_a.get(name) != side_b.get(name):
                changes.append(TensorChange(name, kind, side_a.get(name), side_b.get(name)))
    return changes


def _typed(index: GraphIndex, kind: str) -> dict[str, str]:
    values = index.graph.input if kind == "input" else index.graph.output
    return {v.name: _type_text(v) for v in values if v.name not in index.initializers}


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


def _ops(nodes_a, nodes_b) -> list[OpCount]:
    count_a = Counter(_op_name(node) for node in nodes_a)
    count_b = Counter(_op_name(node) for node in nodes_b)
    ops = sorted({*count_a, *count_b}, key=lambda op: (-max(count_a[op], count_b[op]), op))
    return [OpCount(op, count_a[op], count_b[op]) for op in ops]


def _op_name(node) -> str:
    return f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


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
