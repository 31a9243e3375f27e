"""torchinfo's summary of a PyTorch model: layers, output shapes, parameters, mult-adds.

The same questions asked of an ONNX file are `inspector.onnx.summary`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import InspectorError
from .modes import modes_restored
from .text import one_line, shape_text
from .usercode import user_code


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
        shapes = ", ".join(map(shape_text, self.input_shapes))
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
                f"| {indent}{layer.name} | {layer.type} | {shape_text(layer.output_shape)} "
                f"| {layer.params:,} |"
            )
        rows += [
            "",
            f"- input shapes: {', '.join(map(shape_text, self.input_shapes))}",
            f"- output shapes: {', '.join(map(shape_text, self.output_shapes))}",
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
    with (
        user_code(loaded.spec, "its forward"),
        modes_restored(model),
        torch.no_grad(),
        _LayerTracker(model) as tracker,
    ):
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
            raise _forward_error(loaded, error, tracker.failing_layer()) from error
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
    shapes = ", ".join(shape_text(s) for s in loaded.input_shapes)
    message = one_line(cause)
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
