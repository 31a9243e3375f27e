"""torchinfo's summary of a PyTorch model: layers, output shapes, parameters, mult-adds.

The same questions asked of an ONNX file are `inspector.onnx.summary`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .counting import (
    MULT_ADDS_COUNTER,
    count_mult_adds,
    parameter_counts,
    shared_owners,
)
from .defaults import SUMMARY_DEPTH
from .errors import InspectorError
from .usermodel.inputs import onnx_input_names
from .usermodel.outputs import named_outputs
from .usermodel.usercode import forward_hint, user_code
from .util.modes import modes_restored
from .util.text import markdown_cell, one_line, printable, shape_text

if TYPE_CHECKING:
    from .loading import LoadedModel


@dataclass(frozen=True)
class Layer:
    name: str
    type: str
    depth: int
    input_shape: list
    output_shape: list
    params: int
    shared_with: str | None = None  # the layer whose parameters these are (a tied weight)
    mult_adds: int | None = None  # where the FLOP counter attributes them to this layer


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
    input_names: list = field(default_factory=list)
    input_dtypes: list = field(default_factory=list)
    output_names: list = field(default_factory=list)
    mult_adds_counter: str = MULT_ADDS_COUNTER
    inputs_text: str = field(default="", repr=False)

    def __str__(self) -> str:
        inputs = self.inputs_text or ", ".join(map(shape_text, self.input_shapes))
        return f"{self.model} (input {inputs})\n{self.table}"

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["table"], data["inputs_text"]
        return data

    def to_markdown(self) -> str:
        rows = [
            f"## {printable(self.model)}",
            "",
            "| layer | type | output shape | params |",
            "|---|---|---|---:|",
        ]
        for layer in self.layers:
            indent = "&nbsp;&nbsp;" * max(layer.depth - 1, 0)
            shared = f" (shared with {layer.shared_with})" if layer.shared_with else ""
            cells = [layer.name, layer.type, shape_text(layer.output_shape)]
            name, kind, shape = (markdown_cell(str(cell)) for cell in cells)
            shared = markdown_cell(shared)
            rows.append(f"| {indent}{name} | {kind} | {shape} | {layer.params:,}{shared} |")
        inputs = self.inputs_text or ", ".join(map(shape_text, self.input_shapes))
        rows += [
            "",
            f"- inputs: {printable(inputs)}",
            f"- output shapes: {', '.join(map(shape_text, self.output_shapes))}",
            f"- total params: {self.total_params:,} (a shared parameter counted once)",
            f"- trainable params: {self.trainable_params:,}",
            f"- non-trainable params: {self.non_trainable_params:,}",
            f"- mult-adds: {self.mult_adds:,} (counted by {self.mult_adds_counter})",
        ]
        return "\n".join(rows)


def summarize(loaded: LoadedModel, depth: int = SUMMARY_DEPTH) -> Summary:
    """Run torchinfo on a LoadedModel's example inputs (seeded random, on the CPU, in eval mode),
    with the totals counted right: a tied weight once, mult-adds by PyTorch's FLOP counter."""
    model = loaded.module
    inputs = loaded.first_inputs()
    stats, outputs = _torchinfo(loaded, inputs, depth)
    counts = parameter_counts(model)
    mult_adds = count_mult_adds(model, inputs)
    shared = shared_owners(model)
    paths = {id(module): path for path, module in model.named_modules()}
    _correct_statistics(stats, counts, mult_adds, shared, paths)
    named = named_outputs(outputs)
    return Summary(
        model=loaded.spec,
        input_shapes=[list(shape) for shape in loaded.input_shapes],
        output_shapes=[list(tensor.shape) for _, tensor in named],
        total_params=counts.total,
        trainable_params=counts.trainable,
        non_trainable_params=counts.non_trainable,
        mult_adds=mult_adds.total if mult_adds else int(stats.total_mult_adds),
        layers=[
            _layer(info, paths, shared, mult_adds)
            for info in stats.summary_list
            if info.depth <= depth
        ],
        table=_fix_units(str(stats)) + _counter_note(mult_adds, shared),
        input_names=onnx_input_names(loaded.inputs),
        input_dtypes=[spec.dtype for spec in loaded.inputs],
        output_names=[name for name, _ in named],
        mult_adds_counter=MULT_ADDS_COUNTER if mult_adds else "torchinfo",
        inputs_text=", ".join(map(str, loaded.inputs)),
    )


def _torchinfo(loaded: LoadedModel, inputs, depth: int):
    """torchinfo's statistics and the model's own outputs, every layer's mode restored."""
    import torch
    import torchinfo

    model = loaded.module
    # Keyword inputs go to forward through torchinfo's **kwargs; with none positional, as a dict.
    data = list(inputs.args) if inputs.args else dict(inputs.kwargs)
    extra = dict(inputs.kwargs) if inputs.args else {}
    with (
        user_code(loaded.spec, "its forward"),
        modes_restored(model),
        torch.no_grad(),
        _LayerTracker(model) as tracker,
    ):
        try:
            stats = torchinfo.summary(
                model,
                input_data=data,
                depth=depth,
                device="cpu",
                mode="eval",
                verbose=0,
                row_settings=("var_names",),
                col_names=("output_size", "num_params"),
                **extra,
            )
        except Exception as error:
            raise _forward_error(loaded, inputs, error, tracker.failing_layer()) from error
    return stats, tracker.outputs


def _correct_statistics(stats, counts, mult_adds, shared: dict, paths: dict) -> None:
    """The totals torchinfo prints, from our counts; a tied layer's count marked as shared."""
    stats.total_params = counts.total
    stats.trainable_params = counts.trainable
    stats.total_param_bytes = counts.bytes
    if mult_adds is not None:
        stats.total_mult_adds = mult_adds.total
    for info in stats.summary_list:
        if paths.get(id(info.module)) in shared and info.num_params:
            shown = info.num_params_to_str
            info.num_params_to_str = lambda reached, shown=shown: f"{shown(reached)} (shared)"


def _counter_note(mult_adds, shared: dict) -> str:
    notes = []
    if mult_adds is not None:
        notes.append(f"Mult-adds counted by PyTorch's FLOP counter ({MULT_ADDS_COUNTER})")
    if shared:
        notes.append("(shared): parameters tied to an earlier layer, counted once in the totals")
    return "".join(f"\n{note}" for note in notes)


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


def _forward_error(loaded: LoadedModel, inputs, error: BaseException, layer: str) -> InspectorError:
    cause = error.__cause__ or error
    message = one_line(cause)
    where = f" in layer {layer}" if layer else ""
    return InspectorError(
        f"{loaded.spec}: forward failed on inputs {inputs.describe()}{where}: {message}"
        f"{forward_hint(message)}"
    )


def _fix_units(table: str) -> str:
    """torchinfo 1.8.0 prints its unit enum as "Units.MEGABYTES" on Python >= 3.11; print "M"."""
    from torchinfo.enums import Units

    for unit in Units:
        table = table.replace(f"({unit})", f"({unit.value})" if unit.value else "")
    return table


def _layer(info, paths: dict, shared: dict, mult_adds) -> Layer:
    path = paths.get(id(info.module))
    per_module = mult_adds.per_module if mult_adds else {}
    return Layer(
        name=info.var_name or info.class_name,
        type=info.class_name,
        depth=info.depth,
        input_shape=list(info.input_size or []),
        output_shape=list(info.output_size or []),
        params=int(info.num_params),
        shared_with=shared.get(path),
        mult_adds=per_module.get(path),
    )
