"""The single-file writer: the bytes protobuf would write, without a second copy of the weights."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnxscript import ir

from inspector.export import exporter
from inspector.export.writer import weights_detached, write_model

REPO = Path(__file__).resolve().parent.parent


def _model_with_every_kind_of_initializer() -> ir.Model:
    """Gemm(x, W, b) -> Reshape(shape) -> Where(mask, ., .), with odd tensors on the way."""
    rng = np.random.default_rng(0)
    x = ir.Value(name="x", shape=ir.Shape(["batch", 8]), type=ir.TensorType(ir.DataType.FLOAT))
    weight = ir.tensor(rng.standard_normal((8, 300)).astype(np.float32), name="W")
    weight.doc_string = "a weight with its own documentation"
    weight.metadata_props["source"] = "test"
    weight.metadata_props["a_first_key"] = "sorted before 'source'"
    bias = ir.tensor(rng.standard_normal(300).astype(np.float64).astype(np.float32), name="b")
    shape = ir.tensor(np.array([-1, 30, 10], dtype=np.int64), name="shape")
    mask = ir.tensor(rng.random((30, 10)) > 0.5, name="mask")
    zero = ir.tensor(np.array(0.0, dtype=np.float32), name="zero")  # a scalar: no dims at all
    values = {}
    for tensor in (weight, bias, shape, mask, zero):
        values[tensor.name] = ir.Value(
            name=tensor.name,
            shape=tensor.shape,
            type=ir.TensorType(tensor.dtype),
            const_value=tensor,
        )
    gemm = ir.node("Gemm", [x, values["W"], values["b"]])
    reshape = ir.node("Reshape", [gemm.outputs[0], values["shape"]])
    where = ir.node("Where", [values["mask"], reshape.outputs[0], values["zero"]])
    where.outputs[0].name = "y"
    graph = ir.Graph(
        [x],
        where.outputs,
        nodes=[gemm, reshape, where],
        initializers=list(values.values()),
        opset_imports={"": 18},
        name="odd",
    )
    graph.doc_string = "after the initializers in field order"
    model = ir.Model(graph, ir_version=10, producer_name="test")
    model.metadata_props["inspector.model"] = "odd"
    return model


def test_the_file_is_byte_for_byte_what_protobuf_would_write(tmp_path):
    model = _model_with_every_kind_of_initializer()
    expected = ir.serde.serialize_model(model).SerializeToString()
    with weights_detached(model) as weights:
        shell = ir.serde.serialize_model(model)
    assert not shell.graph.initializer and len(weights) == 5
    write_model(shell, weights, tmp_path / "odd.onnx")
    assert (tmp_path / "odd.onnx").read_bytes() == expected
    # The model got its weights back, in their order.
    assert ir.serde.serialize_model(model).SerializeToString() == expected


def test_an_exported_file_is_the_canonical_encoding_of_itself(tmp_path):
    from inspector.loading import load_model

    loaded = load_model("conv_bn_relu")
    result = exporter.export_onnx(loaded, tmp_path / "cbr.onnx")
    written = result.path.read_bytes()
    proto = onnx.load_from_string(written)
    assert proto.SerializeToString() == written
    assert len(proto.graph.initializer) >= 4  # conv weight, BatchNorm's four tensors
    onnx.checker.check_model(str(result.path), full_check=True)


def test_weights_detached_puts_them_back_after_an_error():
    model = _model_with_every_kind_of_initializer()
    before = ir.serde.serialize_model(model).SerializeToString()
    with pytest.raises(RuntimeError), weights_detached(model):
        assert all(v.const_value is None for v in model.graph.initializers.values())
        raise RuntimeError("interrupted")
    assert ir.serde.serialize_model(model).SerializeToString() == before


_MEMORY_PROBE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    import numpy as np
    from onnxscript import ir
    from inspector.export import exporter

    WIDTH, LAYERS = 2048, 6  # six 16 MB weights: 96 MB
    x = ir.Value(name="input", shape=ir.Shape(["batch", WIDTH]), type=ir.TensorType(ir.DataType.FLOAT))
    value, nodes, initializers = x, [], []
    rng = np.random.default_rng(0)
    for i in range(LAYERS):
        w = ir.tensor(rng.standard_normal((WIDTH, WIDTH), dtype=np.float32), name=f"w{i}")
        init = ir.Value(name=f"w{i}", shape=w.shape, type=ir.TensorType(w.dtype), const_value=w)
        initializers.append(init)
        node = ir.node("MatMul", [value, init])
        nodes.append(node)
        value = node.outputs[0]
    value.name, value.type, value.shape = "output", x.type, x.shape
    graph = ir.Graph(
        [x], [value], nodes=nodes, initializers=initializers, opset_imports={"": 18}, name="g"
    )
    model = ir.Model(graph, ir_version=10)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    exporter._write_and_check(model, Path(sys.argv[1]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024, LAYERS * WIDTH * WIDTH * 4)
    """
)


def test_writing_takes_no_second_copy_of_the_weights(tmp_path):
    """Peak memory while writing and checking grows by far less than the weights' size (a whole
    model proto, then its serialized bytes, grew it by twice their size)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(tmp_path / "big.onnx")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    growth, weights = map(int, done.stdout.split())
    assert growth < 0.3 * weights, f"peak grew by {growth / 2**20:.0f} MiB while writing"
    proto = onnx.load(str(tmp_path / "big.onnx"))
    assert len(proto.graph.initializer) == 6
    assert (tmp_path / "big.onnx").stat().st_size > weights
