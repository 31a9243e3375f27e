"""Small ONNX graphs made by hand (no torch), with the module metadata torch.onnx's dynamo exporter
writes, for the diff, excerpt and collapse tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def scoped_node(op: str, inputs, outputs, module: str, name: str | None = None, **attributes):
    """A node recorded as coming from `module` ("layers.0"), as the dynamo exporter records it."""
    parts = module.split(".") if module else []
    scopes = ["", *(".".join(parts[: i + 1]) for i in range(len(parts))), op.lower()]
    classes = ["Net", *(f"Type{i}" for i in range(len(parts))), f"aten.{op.lower()}"]
    node = helper.make_node(
        op, inputs, outputs, name=name or f"{module or 'root'}/{op}", **attributes
    )
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=repr(scopes))
    node.metadata_props.add(key="pkg.torch.onnx.class_hierarchy", value=repr(classes))
    return node


def model_of(nodes, weights: dict, *, features: int = 4, outputs=("y",)) -> onnx.ModelProto:
    """A model reading `x` (float32 [batch, features]) with shapes inferred on every edge."""
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        initializer=[numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def mlp_weights(seed: int = 0, features: int = 4) -> dict:
    generator = np.random.default_rng(seed)
    return {
        "layers.0.weight": generator.standard_normal((features, features)).astype(np.float32),
        "layers.0.bias": generator.standard_normal(features).astype(np.float32),
        "layers.2.weight": generator.standard_normal((features, features)).astype(np.float32),
        "layers.2.bias": generator.standard_normal(features).astype(np.float32),
    }


def mlp(weights: dict | None = None, *, relu: bool = True, extra_neg: bool = False):
    """layers.0 Gemm -> layers.1 Relu -> layers.2 Gemm (-> head Neg), each its own module."""
    weights = weights or mlp_weights()
    nodes = [scoped_node("Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["h0"], "layers.0")]
    if relu:
        nodes.append(scoped_node("Relu", ["h0"], ["h1"], "layers.1"))
    last = "y0" if extra_neg else "y"
    source = "h1" if relu else "h0"
    nodes.append(
        scoped_node("Gemm", [source, "layers.2.weight", "layers.2.bias"], [last], "layers.2")
    )
    if extra_neg:
        nodes.append(scoped_node("Neg", ["y0"], ["y"], "head"))
    return model_of(nodes, weights)


def residual_stack(blocks: int, *, features: int = 4) -> onnx.ModelProto:
    """blocks.i: Neg -> Relu, plus the block's input (a residual), each op its own submodule."""
    nodes, previous = [], "x"
    for i in range(blocks):
        nodes.append(scoped_node("Neg", [previous], [f"n{i}"], f"blocks.{i}.neg"))
        nodes.append(scoped_node("Relu", [f"n{i}"], [f"r{i}"], f"blocks.{i}.act"))
        out = "y" if i == blocks - 1 else f"b{i}"
        nodes.append(scoped_node("Add", [f"r{i}", previous], [out], f"blocks.{i}"))
        previous = out
    return model_of(nodes, {}, features=features)


def run(model: onnx.ModelProto, feeds: dict, outputs=None) -> list:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(outputs, feeds)
