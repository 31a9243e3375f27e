import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ONNX_KEYS = {"file", "inputs", "outputs", "opset", "ops", "total_params"}


@pytest.fixture
def small_onnx(tmp_path):
    """Conv(3->4, k3) -> Relu -> Conv(4->4, k1) -> Relu, batch axis symbolic."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"]),
        helper.make_node("Relu", ["c2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    path = tmp_path / "small.onnx"
    onnx.save(model, path)
    return path


def test_onnx_summary_json(cli, small_onnx):
    result = cli("summary", small_onnx, "--format", "json")
    assert result.code == 0, result.err
    data = result.json()
    assert set(data) == ONNX_KEYS
    assert data["opset"] == 18
    assert data["ops"] == {"Conv": 2, "Relu": 2}
    assert data["total_params"] == 4 * 3 * 3 * 3 + 4 + 4 * 4
    assert data["inputs"] == [{"name": "input", "shape": ["batch", 3, 8, 8], "dtype": "float32"}]
    assert data["outputs"][0]["shape"] == ["batch", 4, 8, 8]


def test_onnx_summary_text_and_markdown(cli, small_onnx):
    text = cli("summary", small_onnx).out
    assert "opset 18" in text and "total params: 128" in text
    assert "batchx3x8x8" in text
    markdown = cli("summary", small_onnx, "--format", "markdown").out
    assert "| Conv | 2 |" in markdown


def test_onnx_summary_does_not_import_torch(small_onnx):
    code = (
        "import sys, json\n"
        "from inspector.cli import main\n"
        f"assert main(['summary', {str(small_onnx)!r}, '--format', 'json']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ops"]["Conv"] == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\x08\x07garbage\xff" * 8, "ONNX"), (None, "no such file")],
)
def test_bad_onnx_files_are_one_line_errors(cli, tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    result = cli("summary", path)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
