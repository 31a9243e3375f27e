"""--localize: find the first layer whose ONNX value differs from its PyTorch module's output.

PyTorch side: a forward hook on every submodule records its output, in the order the modules finish
(so a layer comes before the block that contains it). ONNX side: torch.onnx records which module
each node came from (the dynamo exporter in the node's `pkg.torch.onnx.name_scopes` metadata, the
TorchScript exporter in node names like `/features/features.0/conv/Conv`); the last node of a
module's scope produces its output, and that value becomes an extra graph output.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InspectorError
from .inputs import to_numpy
from .onnx.compare import OutputDiff, compare_arrays
from .onnx.runtime import feeds, open_session, run_session
from .onnx.scopes import node_scopes

WHOLE_MODEL = "(whole model)"  # the name --localize gives the top module
_MAX_PROTO_BYTES = 2**31 - 1  # protobuf cannot serialize more; onnxruntime would need a file


@dataclass(frozen=True)
class Divergence:
    """The first layer (in execution order) whose ONNX value is out of tolerance."""

    layer: str
    type: str
    onnx_value: str
    diff: OutputDiff

    def to_dict(self) -> dict:
        data = {"layer": self.layer, "type": self.type, "onnx_value": self.onnx_value}
        data.update({k: v for k, v in self.diff.to_dict().items() if k != "name"})
        return data

    def __str__(self) -> str:
        diff = self.diff
        return (
            f"layer {self.layer} ({self.type}) -> ONNX value {self.onnx_value!r}: "
            f"max abs diff {diff.max_abs_diff:.3g}, max rel diff {diff.max_rel_diff:.3g}, "
            f"{diff.mismatched} mismatched"
        )


def first_divergence(loaded, onnx_path, inputs, *, atol: float, rtol: float) -> Divergence | None:
    """Run both sides once on `inputs`; None when every layer that has an ONNX value matches."""
    import onnx

    expected = layer_outputs(loaded.module, inputs)
    model = onnx.load(str(onnx_path))
    values = layer_values(model.graph)
    pairs = [(name, values[name]) for name in expected if name in values]
    if not pairs:
        raise InspectorError(
            f"--localize: no output of {loaded.spec} matches a value in {onnx_path}"
        )
    session = _session_with_outputs(model, [value for _, value in pairs], str(onnx_path))
    arrays = inputs.arrays()
    actual = run_session(
        session,
        feeds(session, arrays, str(onnx_path)),
        str(onnx_path),
        output_names=[value for _, value in pairs],
    )
    for (layer, value), got in zip(pairs, actual, strict=True):
        layer_type, want = expected[layer]
        if want.shape != got.shape:
            continue  # not this module's output after all (e.g. a tuple-returning module)
        diff = compare_arrays(layer, want, got, atol=atol, rtol=rtol)
        if not diff:
            return Divergence(layer, layer_type, value, diff)
    return None


def layer_outputs(module, inputs) -> dict:
    """Module name -> (type name, first output tensor as numpy), in the order modules finish.

    A module called more than once (a shared ReLU) is left out: one ONNX value cannot stand for
    several calls.
    """
    import torch
    from torch.utils import _pytree

    recorded, calls = {}, {}

    def hook_for(name):
        def hook(sub, args, output):
            calls[name] = calls.get(name, 0) + 1
            tensors = [t for t in _pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]
            if calls[name] == 1 and tensors:
                # Copy now: an in-place op later in forward would change the recorded tensor.
                recorded[name] = (type(sub).__name__, to_numpy(tensors[0]).copy())

        return hook

    handles = [
        sub.register_forward_hook(hook_for(name or WHOLE_MODEL))
        for name, sub in module.named_modules()
    ]
    try:
        with torch.inference_mode():
            inputs.call(module)
    finally:
        for handle in handles:
            handle.remove()
    return {name: recorded[name] for name in recorded if calls[name] == 1}


def layer_values(graph) -> dict[str, str]:
    """Module name -> the ONNX value its last node produces (nodes are in topological order)."""
    # The whole model last of all (it finishes last): a model without submodules still localizes.
    last = {WHOLE_MODEL: graph.output[0].name} if graph.output else {}
    for node in graph.node:
        if not node.output:
            continue
        for scope in node_scopes(node):
            last[scope] = node.output[0]
    produced_elsewhere = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    return {
        scope: value for scope, value in last.items() if value and value not in produced_elsewhere
    }


def _session_with_outputs(model, values: list[str], label: str):
    import onnx

    present = {output.name for output in model.graph.output}
    for value in values:
        if value not in present:
            # Name only: onnxruntime takes the type and shape from the producing node.
            model.graph.output.append(onnx.ValueInfoProto(name=value))
            present.add(value)
    if model.ByteSize() > _MAX_PROTO_BYTES:
        raise InspectorError(f"--localize: {label} is larger than 2 GB, which it cannot handle")
    return open_session(model.SerializeToString(), label)
