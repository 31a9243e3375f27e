"""What an ONNX file holds: its interface, opset, operators and parameter count (no torch)."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import asdict, dataclass

from ..util import html
from ..util.html import short_repr
from ..util.text import printable, shape_text
from .files import load_onnx


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list | None  # ints, or names for symbolic dimensions such as "batch"; None: any rank
    dtype: str


@dataclass
class OnnxSummary:
    """What an ONNX file contains: its interface, opset, operators and parameter count."""

    file: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int
    ops: dict[str, int]
    total_params: int

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"ONNX model {self.file} (opset {self.opset})"]
        width = max([8] + [len(t.dtype) for t in self.inputs + self.outputs])
        for title, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            lines.append(f"{title}:")
            lines += [f"  {t.name:<16} {t.dtype:<{width}} {_shape_text(t.shape)}" for t in tensors]
        lines.append("ops:")
        lines += [f"  {op:<24} {count:>5}" for op, count in self.ops.items()]
        lines.append(f"total params: {self.total_params:,}")
        # Names come from the file: its escape sequences must not reach the terminal.
        return "\n".join(map(printable, lines))

    def __repr__(self) -> str:
        nodes = html.counted(sum(self.ops.values()), "node")
        return short_repr(
            "OnnxSummary",
            f"{self.file}: opset {self.opset}, {nodes}, {self.total_params:,} params",
        )

    def _repr_html_(self) -> str:
        tensors = [
            [t.name, kind, t.dtype, shape_text(t.shape)]
            for kind, group in (("input", self.inputs), ("output", self.outputs))
            for t in group
        ]
        return html.block(
            f"ONNX model {self.file} (opset {self.opset}), {self.total_params:,} params",
            html.table(["tensor", "kind", "dtype", "shape"], tensors),
            html.table(["op", "count"], list(self.ops.items()), right=["count"]),
        )

    def to_markdown(self) -> str:
        rows = [
            f"## {self.file}",
            "",
            f"opset {self.opset}",
            "",
            "| tensor | kind | dtype | shape |",
            "|---|---|---|---|",
        ]
        rows += [f"| {t.name} | input | {t.dtype} | {_shape_text(t.shape)} |" for t in self.inputs]
        rows += [
            f"| {t.name} | output | {t.dtype} | {_shape_text(t.shape)} |" for t in self.outputs
        ]
        rows += ["", "| op | count |", "|---|---:|"]
        rows += [f"| {op} | {count} |" for op, count in self.ops.items()]
        rows += ["", f"- total params: {self.total_params:,}"]
        return "\n".join(map(printable, rows))


def _shape_text(shape) -> str:
    return "?" if shape is None else shape_text(shape)


def summarize_onnx(path: str | os.PathLike[str]) -> OnnxSummary:
    """Summarize an ONNX file without torch, and without reading its (external) weights.

    Args:
        path: the .onnx file (checked before it is read).

    Returns:
        An OnnxSummary: inputs, outputs, opset, op counts and the parameter total.
    """
    import onnx

    model = load_onnx(path)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    ops = Counter(node.op_type for node in _all_nodes(graph))
    return OnnxSummary(
        file=str(path),
        inputs=[_tensor_info(v, onnx) for v in graph.input if v.name not in initializers],
        outputs=[_tensor_info(v, onnx) for v in graph.output],
        opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0),
        ops=dict(sorted(ops.items(), key=lambda item: (-item[1], item[0]))),
        total_params=sum(math.prod(init.dims) for init in graph.initializer),
    )


def _all_nodes(graph):
    """Every node, including those inside If/Loop bodies."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs]:
                if sub.node:
                    yield from _all_nodes(sub)


def _tensor_info(value, onnx) -> TensorInfo:
    """A graph input or output: a tensor's numpy dtype name and shape; for a sequence, optional
    or map, its ONNX type (`seq(tensor(float))`) and the shape of the tensors inside it."""
    kind = value.type.WhichOneof("value")
    if kind in (None, "tensor_type"):
        tensor_type = value.type.tensor_type
        dtype = (
            onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
            if tensor_type.elem_type
            else "?"
        )
        return TensorInfo(value.name, _shape(tensor_type), dtype)
    inner = _innermost_tensor(value.type)
    shape = _shape(inner) if inner is not None and inner.HasField("shape") else None
    return TensorInfo(value.name, shape, _type_text(value.type, onnx))


def _shape(tensor_type) -> list:
    return [
        d.dim_param or d.dim_value if (d.dim_param or d.HasField("dim_value")) else "?"
        for d in tensor_type.shape.dim
    ]


def _type_text(type_proto, onnx) -> str:
    """ONNX's own spelling, as onnxruntime prints it: seq(tensor(float)), map(int64,tensor(float))."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        return f"tensor({_element_name(type_proto.tensor_type.elem_type, onnx)})"
    if kind == "sparse_tensor_type":
        return f"sparse_tensor({_element_name(type_proto.sparse_tensor_type.elem_type, onnx)})"
    if kind == "sequence_type":
        return f"seq({_type_text(type_proto.sequence_type.elem_type, onnx)})"
    if kind == "optional_type":
        return f"optional({_type_text(type_proto.optional_type.elem_type, onnx)})"
    if kind == "map_type":
        key = _element_name(type_proto.map_type.key_type, onnx)
        return f"map({key},{_type_text(type_proto.map_type.value_type, onnx)})"
    return "?"


def _element_name(elem_type: int, onnx) -> str:
    if not elem_type:
        return "?"
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def _innermost_tensor(type_proto):
    """The tensor type a sequence, optional or map holds, however deeply (None: none)."""
    while True:
        kind = type_proto.WhichOneof("value")
        if kind == "tensor_type":
            return type_proto.tensor_type
        if kind == "sequence_type":
            type_proto = type_proto.sequence_type.elem_type
        elif kind == "optional_type":
            type_proto = type_proto.optional_type.elem_type
        elif kind == "map_type":
            type_proto = type_proto.map_type.value_type
        else:
            return None
