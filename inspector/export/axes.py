"""Dynamic axes: which axes of which inputs may change size, how they are traced, named in the
file, and confirmed there.

The batch (axis 0 of every input) is dynamic unless --static-batch; `--dynamic-dim NAME.AXIS=LABEL`
adds more (a sequence length). One label is one symbol: `input_ids.1=sequence` and
`attention_mask.1=sequence` must always be the same size. A declared axis is only believed once
the written file runs in onnxruntime at sizes the export was not traced with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InspectorError, option
from ..usermodel.inputs import Inputs, onnx_input_names
from ..util.progress import step

if TYPE_CHECKING:
    from ..loading import LoadedModel


BATCH = "batch"
MIN_TRACE_SIZE = 2  # with size 1 torch.export may specialize an axis (pytorch #148629)


def plan_axes(loaded: LoadedModel, dynamic_batch: bool, dynamic_dims=()) -> list[dict[int, str]]:
    """Per input (ONNX order): axis -> label, for every axis that is to be dynamic."""
    axes = [{0: BATCH} if dynamic_batch and spec.shape else {} for spec in loaded.inputs]
    names = onnx_input_names(loaded.inputs)
    aliases = _positional_aliases(loaded)
    for dim in dynamic_dims:
        index = names.index(dim.input) if dim.input in names else aliases.get(dim.input)
        if index is None:
            raise InspectorError(
                f"{option('--dynamic-dim', 'dynamic_dims', str(dim))}: {loaded.spec} has no input "
                f"{dim.input!r}; its inputs are "
                f"{', '.join(names)}"
            )
        rank = len(loaded.inputs[index].shape)
        if not 0 <= dim.axis < rank:
            raise InspectorError(
                f"{option('--dynamic-dim', 'dynamic_dims', str(dim))}: input {dim.input!r} has "
                f"{rank} axes (0 to {rank - 1})"
            )
        axes[index][dim.axis] = dim.label
    return axes


def _positional_aliases(loaded: LoadedModel) -> dict[str, int]:
    """forward's own parameter names for positional inputs (`x.2=width` as well as `input.2`)."""
    import inspect

    try:
        parameters = list(inspect.signature(loaded.module.forward).parameters)
    except (TypeError, ValueError):
        return {}
    positional = [i for i, spec in enumerate(loaded.inputs) if spec.name is None]
    return dict(zip(parameters, positional, strict=False))


def trace_sizes(loaded: LoadedModel, axes: list[dict[int, str]]) -> dict[tuple[int, int], int]:
    """(input, axis) -> size for the trace: every dynamic axis at least 2, and all axes of one
    label of one size (the first one's)."""
    by_label: dict[str, int] = {}
    sizes = {}
    for index, labels in enumerate(axes):
        for axis, label in labels.items():
            size = max(loaded.inputs[index].shape[axis], MIN_TRACE_SIZE)
            sizes[(index, axis)] = by_label.setdefault(label, size)
    return sizes


def dynamo_shapes(loaded: LoadedModel, inputs: Inputs, axes: list[dict[int, str]]):
    """torch.export's dynamic_shapes: a tuple for positional inputs only, else a dict keyed by
    forward's argument names (as torch.export requires once keywords are involved)."""
    import torch

    dims: dict[str, Any] = {}

    def spec_for(labels):
        return {
            axis: dims.setdefault(label, torch.export.Dim(label)) for axis, label in labels.items()
        } or None

    tensor_axes = iter(axes)
    per_value = [
        spec_for(next(tensor_axes)) if isinstance(value, torch.Tensor) else None
        for value in (*inputs.args, *inputs.kwargs.values())
    ]
    if not any(per_value):
        return None
    if not inputs.kwargs:
        return tuple(per_value)
    return _by_argument_name(loaded, inputs, per_value)


def _by_argument_name(loaded: LoadedModel, inputs: Inputs, per_value: list):
    import inspect

    bound = inspect.signature(loaded.module.forward).bind(*inputs.args, **inputs.kwargs)
    values = iter(per_value)
    shapes: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            shapes[name] = tuple(next(values) for _ in value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            shapes[name] = {key: next(values) for key in value}
        else:
            shapes[name] = next(values)
    return shapes


def torchscript_axes(names: list[str], axes: list[dict[int, str]]) -> dict | None:
    return {name: labels for name, labels in zip(names, axes, strict=True) if labels} or None


def name_symbols(model, axes: list[dict[int, str]]) -> None:
    """Give each dynamic axis its label on every edge of the graph (Netron shows them): the
    exporter names them after internal symbols such as `s77`, which mean nothing to a reader."""
    from onnxscript import ir

    renames: dict[str, str] = {}
    for value, labels in zip(model.graph.inputs, axes, strict=False):
        for axis, label in labels.items():
            if value.shape is None or axis >= len(value.shape):
                continue
            symbol = value.shape[axis]
            if isinstance(symbol, ir.SymbolicDim) and symbol.value not in (None, label):
                renames.setdefault(symbol.value, label)
    if not renames:
        return
    for value in _all_values(model.graph):
        if value.shape is not None and any(_symbol(d) in renames for d in value.shape):
            value.shape = ir.Shape([renames.get(_symbol(d), d) for d in value.shape])


def _symbol(dim):
    return getattr(dim, "value", None) if not isinstance(dim, int) else None


def _all_values(graph):
    yield from graph.inputs
    for node in graph.all_nodes():
        yield from node.outputs


def confirm_declared(proto, loaded: LoadedModel, axes: list[dict[int, str]], hint: str) -> None:
    """Every planned axis is symbolic in the file, and so is axis 0 of every output when the
    batch is dynamic: a fixed number there means the model bakes that size into its code."""
    for value, labels in zip(proto.graph.input, axes, strict=False):
        dims = value.type.tensor_type.shape.dim
        for axis, label in labels.items():
            if axis < len(dims) and not dims[axis].dim_param:
                raise InspectorError(
                    f"{loaded.spec} bakes the size of {label!r} into the graph: axis {axis} of "
                    f"input {value.name!r} came out fixed at {_fixed(dims[axis])} instead of "
                    f"dynamic; {hint}"
                )
    if not any(BATCH in labels.values() for labels in axes):
        return
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_param:
            raise InspectorError(
                f"{loaded.spec} bakes its batch size into the graph: axis 0 of output "
                f"{value.name!r} came out fixed at {_fixed(dims[0])} instead of dynamic; {hint}"
            )


def _fixed(dim) -> str:
    return str(dim.dim_value) if dim.HasField("dim_value") else "unknown"


def other_sizes(traced: dict[tuple[int, int], int], axes: list[dict[int, str]], larger: bool):
    """Sizes the trace did not use, one per label: smaller (1 for the batch, half otherwise) or
    larger (one more)."""
    by_label: dict[str, int] = {}
    for (index, axis), size in traced.items():
        label = axes[index][axis]
        if larger:
            by_label.setdefault(label, size + 1)
        else:
            by_label.setdefault(label, 1 if label == BATCH else max(1, size // 2))
    return {key: by_label[axes[key[0]][key[1]]] for key in traced}


def confirm_runs(light, weights: dict, loaded: LoadedModel, axes, traced, hint: str) -> None:
    """Run the written graph in onnxruntime at sizes it was not traced with. A failure there
    while PyTorch runs at those sizes means the export froze a size (a traced split, a fixed
    view): the file must not be called dynamic.

    `light` is the written graph with its large weights as graph inputs, and `weights` their
    values, views of the model's own tensors: the same computation as the file, without loading
    a second copy of every weight into onnxruntime (a 100M-parameter model would hold 400 MB
    more, and spend a second copying it) or letting it prepack them for a single run.
    """
    if not traced:
        return
    with step("running the export in onnxruntime at other input sizes"):
        _confirm_runs(light, weights, loaded, axes, traced, hint)


def _confirm_runs(light, weights: dict, loaded: LoadedModel, axes, traced, hint: str) -> None:
    from ..onnx.runtime import open_session

    session = open_session(light.SerializeToString(), loaded.spec)
    labels = ", ".join(dict.fromkeys(label for each in axes for label in each.values()))
    tried = []
    for larger in (False, True):
        sizes = other_sizes(traced, axes, larger)
        inputs = loaded.example_inputs(sizes=sizes)
        error = _onnxruntime_problem(session, inputs, weights, axes, sizes)
        if error is None:
            return
        if _torch_runs(loaded, inputs):
            raise InspectorError(
                f"{loaded.spec}: the exported file declares {labels} dynamic, but onnxruntime "
                f"fails at {_describe(axes, sizes)} while PyTorch runs there: {error}; the "
                f"export froze a size it was traced with; {hint}"
            )
        tried.append(_describe(axes, sizes))
    raise InspectorError(
        f"{loaded.spec}: cannot confirm that {labels} can change: the model does not run in "
        f"PyTorch at {' or '.join(tried)} either; {hint}"
    )


def _onnxruntime_problem(session, inputs: Inputs, weights: dict, axes, sizes) -> str | None:
    from ..onnx.runtime import ort_reason, quiet_run

    arrays = inputs.arrays()  # the graph's own inputs come first, then the weights made inputs
    feeds = {spec.name: array for spec, array in zip(session.get_inputs(), arrays, strict=False)}
    feeds.update(weights)
    try:
        outputs = session.run(None, feeds, quiet_run())
    except Exception as error:  # onnxruntime's exceptions all derive from Exception
        return ort_reason(error)
    label_sizes = {axes[i][a]: size for (i, a), size in sizes.items()}
    for spec, array in zip(session.get_outputs(), outputs, strict=True):
        for axis, dim in enumerate(spec.shape):
            if (
                isinstance(dim, str)
                and dim in label_sizes
                and array.shape[axis] != label_sizes[dim]
            ):
                return (
                    f"output {spec.name!r} has {array.shape[axis]} on axis {axis} ({dim!r}) "
                    f"instead of {label_sizes[dim]}"
                )
    return None


def _torch_runs(loaded: LoadedModel, inputs: Inputs) -> bool:
    import torch

    try:
        with torch.inference_mode():
            inputs.call(loaded.module)
    except Exception:
        return False
    return True


def _describe(axes, sizes) -> str:
    labels: dict[str, int] = {}
    for (index, axis), size in sizes.items():
        labels.setdefault(axes[index][axis], size)
    return ", ".join(f"{label} {size}" for label, size in labels.items())
