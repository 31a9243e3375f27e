"""What differs between the releases pyproject.toml admits: each rule is checked here on the
installed stack, and `make test-matrix` runs the suite on the floors and the newest releases."""

import onnx
import pytest
from onnx import TensorProto, helper

from inspector.errors import InspectorError, on_command_line
from inspector.onnx.runtime import open_session


def _relu_model(ir_version: int) -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = ir_version
    return model.SerializeToString()


def test_a_file_newer_than_onnxruntime_reads_names_both_versions_and_the_fix():
    # onnx 1.23.1 writes IR 14 where onnxruntime 1.30 reads up to 13: the same, one step further.
    with pytest.raises(InspectorError) as caught:
        open_session(_relu_model(onnx.IR_VERSION + 50), "new.onnx")
    message = str(caught.value)
    assert f"IR version {onnx.IR_VERSION + 50}" in message and "reads up to IR version" in message
    assert "upgrade onnxruntime" in message and ".cc" not in message and ".h:" not in message
    assert "\n" not in message


def test_a_file_at_ir_8_opens():
    assert open_session(_relu_model(8), "old.onnx").get_outputs()[0].name == "y"


def test_outputs_of_a_type_registered_without_key_functions_are_named_by_their_keys():
    # transformers 5.0 registers its ModelOutput classes so: key paths cannot be asked for.
    import torch
    from torch.utils import _pytree

    from inspector.usermodel.outputs import named_outputs

    class Output(dict):
        pass

    _pytree.register_pytree_node(
        Output,
        lambda d: (list(d.values()), list(d.keys())),
        lambda v, k: Output(zip(k, v, strict=True)),
    )
    generator = torch.Generator().manual_seed(0)
    logits, key, value = (torch.randn(2, 3, generator=generator) for _ in range(3))
    named = named_outputs(Output(logits=logits, past=((key, value),), flag=True))
    assert [name for name, _ in named] == ["logits", "past.0.0", "past.0.1"]
    assert [
        tensor is want for (_, tensor), want in zip(named, (logits, key, value), strict=True)
    ] == [True] * 3


def test_a_transformers_cache_is_named_cache_whatever_the_release_calls_its_field():
    # transformers up to 5.23 calls the field past_key_values, 5.24 on calls it cache.
    from dataclasses import dataclass

    import torch
    from transformers.utils import ModelOutput

    from inspector.usermodel.outputs import named_outputs

    @dataclass
    class OldOutput(ModelOutput):
        logits: torch.Tensor | None = None
        past_key_values: tuple | None = None

    generator = torch.Generator().manual_seed(1)
    key, value, logits = (torch.randn(2, 4, generator=generator) for _ in range(3))
    names = [name for name, _ in named_outputs(OldOutput(logits, (key, value)))]
    assert names == ["logits", "cache.0", "cache.1"]
    # a model's own dict keeps its key
    assert [n for n, _ in named_outputs({"past_key_values": (key, value)})] == [
        "past_key_values.0",
        "past_key_values.1",
    ]


def test_float_token_ids_refused_by_the_checker_get_the_int64_advice():
    # torch 2.11 with transformers 5.17-5.25 exports float ids; the checker's Gather refuses them.
    import re

    from inspector.export import exporter

    reason = (
        "[ShapeInferenceError] (op_type:Gather, node name: node_embedding): indices typestr: "
        "Tind, has unsupported type: tensor(float)"
    )
    with on_command_line(), pytest.raises(InspectorError) as caught, exporter._checker_errors():
        raise onnx.shape_inference.InferenceError(reason)
    assert re.search(
        r"fails the ONNX checker: .*Gather.*--input NAME=SHAPE:int64", str(caught.value)
    )
    with pytest.raises(InspectorError) as caught, exporter._checker_errors():
        raise onnx.shape_inference.InferenceError(reason)
    assert re.search(
        r"fails the ONNX checker: .*Gather.*inputs=\{NAME: 'SHAPE:int64", str(caught.value)
    )
    with pytest.raises(InspectorError) as caught, exporter._checker_errors():
        raise onnx.checker.ValidationError("Field 'type' of 'value_info' is required")
    assert "int64" not in str(caught.value)


def test_a_meta_input_is_described_without_reading_values():
    # A forward that fails on the meta device (transformers 5.0's Llama with torch 2.10) is named
    # with its inputs: describing a meta tensor must not read the values it does not have.
    import torch

    from inspector.usermodel.inputs import spec_of

    ids = torch.empty(2, 16, dtype=torch.int64, device="meta")
    spec = spec_of(ids, "input_ids")
    assert (spec.shape, spec.dtype, spec.name) == ((2, 16), "int64", "input_ids")
