"""What an ONNX file holds: its interface, opset, operators and parameter count (no torch)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

from ..util.text import markdown_cell, printable, shape_text
from .files import load_onnx


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list  # ints, or names for symbolic dimensions such as "batch"
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
        for title, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            lines.append(f"{title}:")
            lines += [f"  {t.name:<16} {t.dtype:<8} {shape_text(t.shape)}" for t in tensors]
        lines.append("ops:")
        lines += [f"  {op:<24} {count:>5}" for op, count in self.ops.items()]
        lines.append(f"total params: {self.total_params:,}")
        # Names come from the file: its escape sequences must not reach the terminal.
        return "\n".join(map(printable, lines))

    def to_markdown(self) -> str:
        rows = [
            f"## {self.file}",
            "",
            f"opset {self.opset}",
            "",
            "| tensor | kind | dtype | shape |",
            "|---|---|---|---|",
        ]
        for kind, tensors in (("input", self.inputs), ("output", self.outputs)):
            rows += [_row(t.name, kind, t.dtype, shape_text(t.shape)) for t in tensors]
        rows += ["", "| op | count |", "|---|---:|"]
        rows += [_row(op, count) for op, count in self.ops.items()]
        rows += ["", f"- total params: {self.total_params:,}"]
        return "\n".join(map(printable, rows))


def summarize_onnx(path) -> OnnxSummary:
    """Summarize an ONNX file without torch, and without reading its (external) weights."""
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
    tensor_type = value.type.tensor_type
    shape = [
        d.dim_param or d.dim_value if (d.dim_param or d.HasField("dim_value")) else "?"
        for d in tensor_type.shape.dim
    ]
    dtype = (
        onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        if tensor_type.elem_type
        else "?"
    )
    return TensorInfo(value.name, shape, dtype)


def _row(*cells) -> str:
    # A name from the file holding `|` would otherwise add a column or end the row.
    return "| " + " | ".join(markdown_cell(str(cell)) for cell in cells) + " |"
