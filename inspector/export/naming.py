"""Names in the exported graph: inputs and outputs as the user knows them, and our metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import __version__

if TYPE_CHECKING:
    from ..loading import LoadedModel


def name_inputs_and_outputs(model, input_names: list[str], output_names: list[str]) -> None:
    """Keyword inputs keep their names and positional ones are `input`/`input_K`; outputs take
    their names from forward's structure (`logits`, `output_0`, ...). When the graph's count
    differs from forward's (an exporter that dropped an unused input), they are numbered."""
    import onnx_ir.passes.common as common_passes

    common_passes.OutputFixPass()(model)  # an output that is an input gets its own Identity node
    graph = model.graph
    wanted = {
        **_paired(graph.inputs, input_names, "input"),
        **_paired(graph.outputs, output_names, "output"),
    }
    taken = set(wanted.values())
    for node in graph:
        for value in node.outputs:
            if value.name in taken and value not in wanted:
                value.name = f"{value.name}__inner"
    for name, initializer in list(graph.initializers.items()):
        if name in taken:
            graph.initializers.pop(name)
            initializer.name = f"{name}__inner"
            graph.register_initializer(initializer)
    for value, name in wanted.items():
        value.name = name


def _paired(values, names: list[str], base: str) -> dict:
    if len(values) == len(names) and len(set(names)) == len(names):
        return dict(zip(values, names, strict=True))
    if len(values) == 1:
        return {values[0]: base}
    return {value: f"{base}_{i}" for i, value in enumerate(values)}


def add_metadata(model, loaded: LoadedModel, inputs, graph: str, exporter: str) -> None:
    import torch

    params = {id(p): p.numel() for p in loaded.module.parameters()}
    model.metadata_props.update(
        {
            "inspector.model": loaded.spec,
            "inspector.parameters": str(sum(params.values())),
            "inspector.input_shapes": ";".join(
                ",".join(map(str, shape)) for shape in loaded.input_shapes
            ),
            "inspector.inputs": ";".join(str(spec) for spec in loaded.inputs),
            "inspector.trace_shapes": ";".join(
                ",".join(map(str, x.shape)) for x in inputs.tensors()
            ),
            "inspector.graph": graph,
            "inspector.exporter": exporter,
            "inspector.version": __version__,
            "torch.version": torch.__version__,
        }
    )
    model.producer_name = "inspector"
    model.producer_version = __version__
