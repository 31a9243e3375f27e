"""torchinfo's summary of a PyTorch model: layers, output shapes, parameters, mult-adds.

The same questions asked of an ONNX file are `inspector.onnx.summary`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..defaults import (
    SUMMARY_COLUMNS,
    SUMMARY_DEFAULT_COLUMNS,
    SUMMARY_DEFAULT_ROW_SETTINGS,
    SUMMARY_DEPTH,
    SUMMARY_MODES,
    SUMMARY_ROW_SETTINGS,
)
from ..errors import InspectorError, LibraryError, option
from ..usermodel.inputs import onnx_input_names
from ..usermodel.outputs import named_outputs
from ..usermodel.usercode import forward_hint, user_code
from ..util import html
from ..util.html import short_repr
from ..util.inductor import inductor_cache_removed
from ..util.modes import modes_restored
from ..util.text import markdown_cell, one_line, printable, shape_text
from .counting import (
    MULT_ADDS_COUNTER,
    count_mult_adds,
    parameter_counts,
    shared_owners,
)
from .units import bytes_with_unit, count_with_unit, labelled

if TYPE_CHECKING:
    from ..loading import LoadedModel


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
    mult_adds: int | None  # None: no input was given, nothing ran
    layers: list[Layer] = field(default_factory=list)
    table: str = field(default="", repr=False)
    input_names: list = field(default_factory=list)
    input_dtypes: list = field(default_factory=list)
    output_names: list = field(default_factory=list)
    mult_adds_counter: str = MULT_ADDS_COUNTER
    inputs_text: str = field(default="", repr=False)
    dense_params: int = 0  # total_params before pruning (torch.nn.utils.prune keeps both)
    uncounted_layers: list = field(default_factory=list)  # the counter saw nothing in these
    meta: bool = False  # built on the meta device: shapes and counts, no values

    def __str__(self) -> str:
        inputs = self.inputs_text or ", ".join(map(shape_text, self.input_shapes))
        return f"{self.model} (input {inputs})\n{self.table}"

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["table"], data["inputs_text"]
        return data

    def __repr__(self) -> str:
        inputs = self.inputs_text or ", ".join(map(shape_text, self.input_shapes))
        counted = "" if self.mult_adds is None else f", {self.mult_adds:,} mult-adds"
        return short_repr(
            "Summary", f"{self.model}: {self.total_params:,} params{counted}, input {inputs}"
        )

    def _repr_html_(self) -> str:
        ran = self.mult_adds is not None  # None: no input, nothing ran
        rows = [
            [
                "\u00a0\u00a0" * max(layer.depth - 1, 0) + layer.name,  # indented by depth
                layer.type,
                shape_text(layer.output_shape) if ran else "--",
                f"{layer.params:,}"
                + (f" (shared with {layer.shared_with})" if layer.shared_with else ""),
            ]
            for layer in self.layers
        ]
        counted = (
            f"{self.mult_adds:,} (counted by {self.mult_adds_counter})" if ran else no_input_note()
        )
        totals = [
            ["inputs", self.inputs_text or ", ".join(map(shape_text, self.input_shapes))],
            ["output shapes", ", ".join(map(shape_text, self.output_shapes)) if ran else "--"],
            ["total params", f"{self.total_params:,} (a shared parameter counted once)"],
            ["trainable params", f"{self.trainable_params:,}"],
            ["non-trainable params", f"{self.non_trainable_params:,}"],
            ["mult-adds", counted],
        ]
        return html.block(
            self.model,
            html.table(["layer", "type", "output shape", "params"], rows, right=["params"]),
            html.table(["", ""], totals),
        )

    def to_markdown(self) -> str:
        rows = [
            f"## {printable(self.model)}",
            "",
            "| layer | type | output shape | params |",
            "|---|---|---|---:|",
        ]
        ran = self.mult_adds is not None  # None: no input, nothing ran
        for layer in self.layers:
            indent = "&nbsp;&nbsp;" * max(layer.depth - 1, 0)
            shared = f" (shared with {layer.shared_with})" if layer.shared_with else ""
            shape = shape_text(layer.output_shape) if ran else "--"
            # Names are the model's own (add_module takes "a|b"): escaped, so none adds a column.
            name, kind, shape, shared = map(markdown_cell, (layer.name, layer.type, shape, shared))
            rows.append(f"| {indent}{name} | {kind} | {shape} | {layer.params:,}{shared} |")
        outputs = ", ".join(map(shape_text, self.output_shapes)) if ran else "--"
        counted = (
            f"- mult-adds: {self.mult_adds:,} (counted by {self.mult_adds_counter})"
            if self.mult_adds is not None
            else f"- {no_input_note().lower()}"
        )
        inputs = self.inputs_text or ", ".join(map(shape_text, self.input_shapes))
        rows += [
            "",
            f"- inputs: {printable(inputs)}",
            f"- output shapes: {outputs}",
            f"- total params: {self.total_params:,} (a shared parameter counted once)",
            f"- trainable params: {self.trainable_params:,}",
            f"- non-trainable params: {self.non_trainable_params:,}",
            counted,
        ]
        return "\n".join(rows)


COLUMNS, ROW_SETTINGS, MODES = SUMMARY_COLUMNS, SUMMARY_ROW_SETTINGS, SUMMARY_MODES
_NEED_INPUT = {"input_size", "output_size", "mult_adds"}  # columns a forward fills
META_NOTE = (
    "Built on the meta device (weights without storage): shapes, parameters and mult-adds are "
    "exact, no value was computed"
)


def no_input_note() -> str:
    """Said when nothing ran: how to give an input, in the caller's terms."""
    given = option("--input", "inputs=")
    return f"Shapes and mult-adds need an example input: pass {given} (or input data)"


@inductor_cache_removed()  # a meta forward imports torch._dynamo, which makes torch's cache folder
def summarize(
    loaded: LoadedModel,
    depth: int = SUMMARY_DEPTH,
    *,
    col_names: Sequence[str] | None = None,
    row_settings: Sequence[str] | None = None,
    mode: str = "eval",
) -> Summary:
    """Run torchinfo on a LoadedModel's example inputs (seeded random, on the model's device, in
    eval mode unless `mode="train"`), with the totals counted right: a tied weight once, a pruned
    weight as its mask keeps it, mult-adds by PyTorch's FLOP counter.

    Without any input the table lists the parameters only, as torchinfo's `summary(model)` does.

    Args:
        loaded: the model and its example inputs, from `load_model`.
        depth: how deep nested layers are listed.
        col_names: torchinfo's column names (COLUMNS).
        row_settings: torchinfo's row settings (ROW_SETTINGS).
        mode: "eval" or "train"; every layer's flag (and BatchNorm's statistics) come back.

    Returns:
        A Summary: prints torchinfo's table; `to_dict()` gives the JSON document.
    """
    columns = _choices(col_names, COLUMNS, SUMMARY_DEFAULT_COLUMNS, "col_names")
    rows = _choices(row_settings, ROW_SETTINGS, SUMMARY_DEFAULT_ROW_SETTINGS, "row_settings")
    if mode not in MODES:
        raise InspectorError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    model = loaded.module
    inputs = loaded.first_inputs() if loaded.inputs or loaded.given is not None else None
    if inputs is None:
        columns = tuple(c for c in columns if c not in _NEED_INPUT) or ("num_params",)
    with _in_mode(model, mode):
        stats, outputs = _torchinfo(loaded, inputs, depth, columns, rows, mode)
        mult_adds = count_mult_adds(model, inputs) if inputs is not None else None
    counts = parameter_counts(model)
    shared = shared_owners(model)
    paths = {id(module): path for path, module in model.named_modules()}
    unseen = _unseen_layers(stats, mult_adds, paths) if inputs is not None else {}
    total = _total_mult_adds(stats, mult_adds, unseen) if inputs is not None else None
    _mark_rows(stats, mult_adds, unseen, shared, paths)
    counter = _counter_name(inputs, mult_adds)
    per_module = {**(mult_adds.per_module if mult_adds else {}), **unseen}
    named = named_outputs(outputs) if inputs is not None else []
    summary = Summary(
        model=loaded.spec,
        input_shapes=[list(shape) for shape in loaded.input_shapes],
        output_shapes=[list(tensor.shape) for _, tensor in named],
        total_params=counts.total,
        trainable_params=counts.trainable,
        non_trainable_params=counts.non_trainable,
        mult_adds=total,
        layers=[
            _layer(info, paths, shared, per_module)
            for info in stats.summary_list
            if info.depth <= depth
        ],
        input_names=onnx_input_names(loaded.inputs),
        input_dtypes=[spec.dtype for spec in loaded.inputs],
        output_names=[name for name, _ in named],
        mult_adds_counter=counter,
        inputs_text=_inputs_text(loaded),
        dense_params=counts.dense,
        uncounted_layers=sorted(unseen),
        meta=_device_of(model).type == "meta",
    )
    summary.table = _table(stats, summary, counts, inputs is not None) + _notes(
        summary, shared, inputs is not None
    )
    return summary


def _choices(given, known: tuple, default: tuple, what: str) -> tuple:
    if given is None:
        return default
    chosen = (given,) if isinstance(given, str) else tuple(given)
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise InspectorError(f"{what}: unknown {unknown[0]!r}; choose from {', '.join(known)}")
    return chosen


@contextmanager
def _in_mode(model, mode: str) -> Iterator[None]:
    """Train mode runs BatchNorm on batch statistics and updates its running ones: those come
    back afterwards, like every layer's own flag, so the caller's model leaves as it came."""
    import torch

    buffers = [(b, b.detach().clone()) for b in model.buffers()] if mode == "train" else []
    with modes_restored(model):
        model.train(mode == "train")
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)


def _inputs_text(loaded: LoadedModel) -> str:
    """The inputs as the user gave them: the range asked for (`0..1000`), not the min..max that
    given tensors happen to hold."""
    if loaded.given is not None:
        return loaded.given.describe() or "nothing"
    return ", ".join(map(str, loaded.inputs)) or "none given"


def _torchinfo(loaded: LoadedModel, inputs, depth: int, columns: tuple, rows: tuple, mode: str):
    """torchinfo's statistics and the model's own outputs, every layer's mode restored."""
    import torch
    import torchinfo

    model = loaded.module
    device = _device_of(model)
    data, extra = None, {}
    if inputs is not None:
        inputs = inputs.to(device)
        # Keyword inputs go to forward through torchinfo's **kwargs; with none positional, as a
        # dict; with nothing at all, as an empty list (forward() takes nothing).
        data = list(inputs.args) if inputs.args or not inputs.kwargs else dict(inputs.kwargs)
        extra = dict(inputs.kwargs) if inputs.args else {}
    with (
        user_code(loaded.spec, "its forward"),
        modes_restored(model),
        torch.no_grad(),
        _LayerTracker(model) as tracker,
        _torchinfo_fixes(),
    ):
        try:
            stats = torchinfo.summary(
                model,
                input_data=data,
                depth=depth,
                device=device,
                mode=mode,
                verbose=0,
                row_settings=rows,
                col_names=columns,
                **extra,
            )
        except Exception as error:
            raise _forward_error(loaded, inputs, error, tracker) from error
        _scripted_rows_last(stats, model)
        outputs = tracker.outputs
        if outputs is None and inputs is not None and isinstance(model, torch.jit.ScriptModule):
            outputs = inputs.call(model)  # a scripted model takes no hooks: one more forward
    return stats, outputs


def _scripted_rows_last(stats, model) -> None:
    """torchinfo lists a scripted submodule (it takes no hooks) before it runs anything, so its
    rows come above the model's own and the model's row claims their parameters. Listed after the
    rows of the layers that ran, and numbered again, they sit under the model."""
    from torchinfo.torchinfo import set_children_layers

    rows = stats.summary_list
    root = next((i for i, info in enumerate(rows) if info.module is model), 0)
    if root:
        rows[:] = rows[root:] + rows[:root]
        set_children_layers(rows)


@contextmanager
def _torchinfo_fixes() -> Iterator[None]:
    """Bugs of torchinfo 1.8.0 that its main branch fixed but no release carries, fixed the same
    way while torchinfo runs: a module whose kernel_size is a 0-d tensor (TypeError: iteration
    over a 0-d tensor), a forward that returns a torch.distributions object (unsupported output
    type), and a dict input holding a str or None beside tensors (int + str). A torchinfo laid
    out differently is left as it is."""
    from unittest import mock

    import torchinfo.torchinfo as core
    from torchinfo.layer_info import LayerInfo

    kernel_size = vars(LayerInfo).get("get_kernel_size")
    calculate_size = vars(LayerInfo).get("calculate_size")
    memory = getattr(core, "get_total_memory_used", None)
    traverse = getattr(core, "traverse_input_data", None)
    if not (
        isinstance(kernel_size, staticmethod)
        and isinstance(calculate_size, staticmethod)
        and callable(memory)
        and callable(traverse)
    ):
        yield
        return
    fixes = (
        mock.patch.object(LayerInfo, "get_kernel_size", _kernel_size_fix(kernel_size.__func__)),
        mock.patch.object(LayerInfo, "calculate_size", _size_fix(calculate_size.__func__)),
        mock.patch.object(core, "get_total_memory_used", _memory_fix(traverse)),
    )
    with fixes[0], fixes[1], fixes[2]:
        yield


def _kernel_size_fix(original):
    import torch

    def get_kernel_size(module):
        k = getattr(module, "kernel_size", None)
        if isinstance(k, torch.Tensor) and k.ndim == 0:
            return int(k)
        return original(module)

    return staticmethod(get_kernel_size)


def _size_fix(original):
    import torch

    def calculate_size(inputs, *args, **kwargs):
        if isinstance(inputs, torch.distributions.Distribution):
            return list(inputs.batch_shape + inputs.event_shape), 0
        return original(inputs, *args, **kwargs)

    return staticmethod(calculate_size)


def _memory_fix(traverse):
    import sys
    from collections.abc import Mapping

    def total(values) -> int:
        return sum(v for v in values if isinstance(v, int))

    def get_total_memory_used(data) -> int:
        return traverse(
            data,
            action_fn=lambda tensor: sys.getsizeof(tensor.untyped_storage()),
            aggregate_fn=lambda d: (
                (lambda m: total(m.values())) if isinstance(d, Mapping) else total
            ),
        )

    return get_total_memory_used


def _device_of(model):
    """Where the model's weights are (the CPU for a model without any): torchinfo would move a
    CUDA model to the device it is given, and leave it there."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _unseen_layers(stats, mult_adds, paths: dict) -> dict[str, int]:
    """Layers that multiply by a weight matrix but in which the FLOP counter saw nothing (an
    operator it has no formula for): path -> torchinfo's figure for them, used instead of 0."""
    if mult_adds is None:
        return {}
    unseen: dict[str, int] = {}
    for info in stats.summary_list:
        path = paths.get(id(info.module))
        if path is None or not info.is_leaf_layer or info.macs <= 0 or info.is_recursive:
            continue
        weights = [p for p in info.module.parameters() if p.dim() >= 2]
        gathers = "Embedding" in info.class_name  # a lookup, no product
        if weights and not gathers and not mult_adds.per_module.get(path):
            unseen[path] = unseen.get(path, 0) + int(info.macs)
    return unseen


def _total_mult_adds(stats, mult_adds, unseen: dict) -> int:
    if mult_adds is None:
        return int(stats.total_mult_adds)
    return mult_adds.total + sum(unseen.values())


def _counter_name(inputs, mult_adds) -> str:
    if inputs is None:
        return "none"
    return MULT_ADDS_COUNTER if mult_adds is not None else "torchinfo"


def _mark_rows(stats, mult_adds, unseen: dict, shared: dict, paths: dict) -> None:
    """Each row's mult-adds from the counter (a module called n times shares its count among
    its n rows) and a tied layer's count marked as shared."""
    calls: dict[str, list] = {}
    for info in stats.summary_list:
        path = paths.get(id(info.module))
        if path is not None:
            calls.setdefault(path, []).append(info)
        if path in shared and info.num_params:
            shown = info.num_params_to_str
            info.num_params_to_str = lambda reached, shown=shown: f"{shown(reached)} (shared)"
    if mult_adds is None:
        return
    for path, infos in calls.items():
        counted = unseen.get(path) or mult_adds.per_module.get(path, 0)
        for info, share in zip(infos, _shares(counted, [i.macs for i in infos]), strict=True):
            info.macs_to_str = _mult_adds_text(info, share)


def _shares(total: int, weights: list[int]) -> list[int]:
    """`total` split over the calls as torchinfo's per-call figures are (evenly without any)."""
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares


def _mult_adds_text(info, share: int):
    def text(reached_max_depth: bool) -> str:
        shown = share > 0 and (info.is_leaf_layer or reached_max_depth)
        return f"{share:,}" if shown else "--"

    return text


def _table(stats, summary: Summary, counts, ran: bool) -> str:
    """torchinfo's header and rows; the totals and sizes below them in units that read well."""
    formatting = stats.formatting
    divider = "=" * formatting.get_total_width()
    params = f"{summary.total_params:,}"
    if counts.dense != counts.total:
        params += f" ({counts.dense:,} dense, before pruning)"
    lines = [
        divider,
        formatting.header_row() + divider,
        formatting.layers_to_str(stats.summary_list, summary.total_params) + divider,
        f"Total params: {params}",
        f"Trainable params: {summary.trainable_params:,}",
        f"Non-trainable params: {summary.non_trainable_params:,}",
    ]
    if ran and summary.mult_adds is not None:
        total_bytes = stats.total_input + stats.total_output_bytes + counts.bytes
        lines += [
            labelled("Total mult-adds", count_with_unit(summary.mult_adds)),
            divider,
            labelled("Input size", bytes_with_unit(stats.total_input)),
            labelled("Forward/backward pass size", bytes_with_unit(stats.total_output_bytes)),
            labelled("Params size", bytes_with_unit(counts.bytes)),
            labelled("Estimated Total Size", bytes_with_unit(total_bytes)),
        ]
    else:
        lines += [labelled("Params size", bytes_with_unit(counts.bytes))]
    return "\n".join([*lines, divider])


def _notes(summary: Summary, shared: dict, ran: bool) -> str:
    notes = []
    if not ran:
        notes.append(no_input_note())
    elif summary.mult_adds_counter == MULT_ADDS_COUNTER:
        notes.append(f"Mult-adds counted by PyTorch's FLOP counter ({MULT_ADDS_COUNTER})")
    else:
        notes.append(
            "Mult-adds counted by torchinfo's module hooks: PyTorch's FLOP counter could not "
            "run this model (functional code and attention are missing from the total)"
        )
    if summary.uncounted_layers:
        notes.append(
            "The FLOP counter saw no mult-adds in "
            f"{', '.join(summary.uncounted_layers)}: torchinfo's figure is used for "
            f"{'it' if len(summary.uncounted_layers) == 1 else 'them'}"
        )
    if summary.meta:
        notes.append(META_NOTE)
    if shared:
        notes.append("(shared): parameters tied to an earlier layer, counted once in the totals")
    return "".join(f"\n{note}" for note in notes)


class _LayerTracker:
    """Hooks that remember the model's outputs and which layer was running when forward failed."""

    def __init__(self, model):
        self.model, self.running, self.outputs, self.handles = model, [], None, []

    def __enter__(self):
        import torch

        for name, module in self.model.named_modules():
            if isinstance(module, torch.jit.ScriptModule):  # it takes no Python hooks
                continue
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


def _forward_error(loaded: LoadedModel, inputs, error: BaseException, tracker) -> InspectorError:
    """The user's forward failed (exit 2); torchinfo failing after the forward ran is a failure of
    torchinfo's (exit 3, naming it)."""
    cause = error.__cause__ or error
    message = one_line(cause)
    if tracker.outputs is not None and not tracker.running:
        return LibraryError(
            f"{loaded.spec}: torchinfo failed after the forward ran: "
            f"{type(cause).__name__}: {message}"
        )
    layer = tracker.failing_layer()
    where = f" in layer {layer}" if layer else ""
    given = inputs.describe() if inputs is not None else "none"
    return InspectorError(
        f"{loaded.spec}: forward failed on inputs {given}{where}: {message}{forward_hint(message)}"
    )


def _layer(info, paths: dict, shared: dict, per_module: dict) -> Layer:
    path = paths.get(id(info.module))
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
