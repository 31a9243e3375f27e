"""Summaries: torchinfo's table for a PyTorch model, and the same questions asked of an ONNX file."""

from __future__ import annotations

import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from .errors import InspectorError


@dataclass(frozen=True)
class Layer:
    name: str
    type: str
    depth: int
    input_shape: list
    output_shape: list
    params: int


@dataclass
class Summary:
    """A model's torchinfo summary; prints as torchinfo's table."""

    model: str
    input_shapes: list
    output_shapes: list
    total_params: int
    trainable_params: int
    non_trainable_params: int
    mult_adds: int
    layers: list[Layer] = field(default_factory=list)
    table: str = field(default="", repr=False)

    def __str__(self) -> str:
        shapes = ", ".join(map(_shape_text, self.input_shapes))
        return f"{self.model} (input {shapes})\n{self.table}"

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["table"]
        return data

    def to_markdown(self) -> str:
        rows = [
            f"## {self.model}",
            "",
            "| layer | type | output shape | params |",
            "|---|---|---|---:|",
        ]
        for layer in self.layers:
            indent = "&nbsp;&nbsp;" * max(layer.depth - 1, 0)
            rows.append(
                f"| {indent}{layer.name} | {layer.type} | {_shape_text(layer.output_shape)} "
                f"| {layer.params:,} |"
            )
        rows += [
            "",
            f"- input shapes: {', '.join(map(_shape_text, self.input_shapes))}",
            f"- output shapes: {', '.join(map(_shape_text, self.output_shapes))}",
            f"- total params: {self.total_params:,}",
            f"- trainable params: {self.trainable_params:,}",
            f"- non-trainable params: {self.non_trainable_params:,}",
            f"- mult-adds: {self.mult_adds:,}",
        ]
        return "\n".join(rows)


def summarize(loaded, depth: int = 3) -> Summary:
    """Run torchinfo on a LoadedModel's example inputs (seeded random, on the CPU, in eval mode)."""
    import torch
    import torchinfo

    model = loaded.module
    inputs = loaded.example_inputs()
    with _modes_restored(model), _LayerTracker(model) as tracker, torch.no_grad():
        try:
            stats = torchinfo.summary(
                model,
                input_data=list(inputs),
                depth=depth,
                device="cpu",
                mode="eval",
                verbose=0,
                row_settings=("var_names",),
                col_names=("output_size", "num_params"),
            )
        except RuntimeError as error:
            raise _forward_error(loaded, error, tracker.failing_layer()) from None
    outputs = tracker.outputs
    params = _unique_parameters(model)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return Summary(
        model=loaded.spec,
        input_shapes=[list(shape) for shape in loaded.input_shapes],
        output_shapes=[list(t.shape) for t in _tensors(outputs)],
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        mult_adds=int(stats.total_mult_adds),
        layers=[_layer(info) for info in stats.summary_list if info.depth <= depth],
        table=_fix_units(str(stats)),
    )


@contextmanager
def _modes_restored(model):
    """torchinfo sets every submodule to the top module's mode afterwards; put each one back."""
    saved = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in saved:
            module.training = training


class _LayerTracker:
    """Hooks that remember the model's outputs and which layer was running when forward failed."""

    def __init__(self, model):
        self.model, self.running, self.outputs, self.handles = model, [], None, []

    def __enter__(self):
        for name, module in self.model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(name, module)))
            self.handles.append(module.register_forward_hook(self._leave))
        return self

    def __exit__(self, *exc_info):
        for handle in self.handles:
            handle.remove()

    def _enter(self, name, module):
        def hook(_module, _inputs):
            self.running.append(f"{name} ({type(module).__name__})" if name else "")

        return hook

    def _leave(self, module, _inputs, output):
        self.running.pop()
        if module is self.model:
            self.outputs = output

    def failing_layer(self) -> str:
        return self.running[-1] if self.running else ""


def _forward_error(loaded, error: RuntimeError, layer: str) -> InspectorError:
    cause = error.__cause__ or error
    shapes = ", ".join(_shape_text(s) for s in loaded.input_shapes)
    message = " ".join(str(cause).split()) or type(cause).__name__
    where = f" in layer {layer}" if layer else ""
    return InspectorError(
        f"{loaded.spec}: forward failed on input shape {shapes}{where}: {message}"
    )


def _fix_units(table: str) -> str:
    """torchinfo 1.8.0 prints its unit enum as "Units.MEGABYTES" on Python >= 3.11; print "M"."""
    from torchinfo.enums import Units

    for unit in Units:
        table = table.replace(f"({unit})", f"({unit.value})" if unit.value else "")
    return table


def _layer(info) -> Layer:
    return Layer(
        name=info.var_name or info.class_name,
        type=info.class_name,
        depth=info.depth,
        input_shape=list(info.input_size or []),
        output_shape=list(info.output_size or []),
        params=int(info.num_params),
    )


def _unique_parameters(model) -> list:
    return list(model.parameters())  # parameters() already yields a shared parameter once


def _tensors(outputs) -> list:
    import torch

    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in _tensors(item)]
    return []


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


# ONNX files -----------------------------------------------------------------------------------


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
            lines += [f"  {t.name:<16} {t.dtype:<8} {_shape_text(t.shape)}" for t in tensors]
        lines.append("ops:")
        lines += [f"  {op:<24} {count:>5}" for op, count in self.ops.items()]
        lines.append(f"total params: {self.total_params:,}")
        return "\n".join(lines)

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
        return "\n".join(rows)


def summarize_onnx(path) -> OnnxSummary:
    """Summarize an ONNX file without torch, and without reading its (external) weights."""
    import onnx

    from .onnx_file import load_onnx

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
