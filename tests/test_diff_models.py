"""inspector diff on the lecture's MobileNetV3-Small: golden JSON for authored vs optimized, and for a
file with one weight changed (INSPECTOR_UPDATE_GOLDEN=1 rewrites them; review the change)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from _export_helpers import give_batchnorm_statistics
from _golden import assert_golden
from onnx import numpy_helper

from inspector.export import cached_export, make_export_options
from inspector.loading import load_model

MODEL = "mobilenet_v3_small"
pytestmark = pytest.mark.slow  # its exports take seconds; test_diff.py covers small graphs
CHANGED_WEIGHT = "features.4.block.1.0.weight"  # block 4's depthwise 5x5 convolution


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """MobileNetV3-Small with seeded BatchNorm statistics: the defaults fold into a Conv almost
    without changing it, which would hide what the optimizer does."""
    loaded = load_model(MODEL)
    assert give_batchnorm_statistics(loaded.module) == 34
    path = tmp_path_factory.mktemp("weights") / "mnv3_statistics.pt"
    torch.save(loaded.module.state_dict(), path)
    return path


def _rounded(value):
    """Floats to 4 significant digits: the golden file must not change with the last bits."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def _golden_json(data: dict, name: str) -> None:
    assert_golden(json.dumps(_rounded(data), indent=2) + "\n", f"diff/{name}.json")


def test_authored_vs_optimized_removes_batchnorm_and_nothing_else(cli, checkpoint):
    args = ["diff", MODEL, MODEL, "--checkpoint", checkpoint, "--graph", "authored"]
    result = cli(*args, "--graph", "optimized", "--structure-only", "--format", "json")
    assert result.code == 1, result.err
    data = result.json()
    _golden_json(data, "mobilenet_v3_small_authored_vs_optimized")
    # What the golden file says, in words: 34 BatchNormalization nodes are gone, no op type
    # changed its count otherwise, and every other difference is in weights and biases.
    assert [(op["op"], op["delta"]) for op in data["ops"] if op["delta"]] == [
        ("BatchNormalization", -34)
    ]
    kinds = Counter((node["kind"], node["op"]) for node in data["nodes"])
    assert kinds[("removed", "BatchNormalization")] == 34
    assert {kind for kind, _ in kinds} == {"removed", "changed"}
    assert {op for kind, op in kinds if kind == "changed"} == {"Conv", "Gemm"}
    assert all(
        r.startswith(("W:", "B:", "C:")) for n in data["nodes"] for r in n.get("reasons", [])
    )
    assert not data["interface"]
    assert data["metadata"] == [{"key": "inspector.graph", "a": "authored", "b": "optimized"}]
    colours = Counter(data["node_colours"].values())
    assert colours["removed-neighbour"] >= 34  # each lost BatchNormalization had neighbours


def test_authored_and_optimized_compute_the_same(cli, checkpoint):
    args = ["diff", MODEL, MODEL, "--checkpoint", checkpoint, "--graph", "authored"]
    data = cli(*args, "--graph", "optimized", "--format", "json").json()
    assert data["outputs"] and len(data["outputs"]) == 6
    for run in data["outputs"]:
        [output] = run["outputs"]
        assert output["mismatched"] == 0 and output["shape"][1] == 1000


@pytest.fixture(scope="module")
def authored_file(checkpoint):
    return cached_export(
        load_model(MODEL, checkpoint=checkpoint), make_export_options(graph="authored")
    )


def test_a_changed_weight_is_named(cli, authored_file, tmp_path, monkeypatch):
    model = onnx.load(str(authored_file))
    [weight] = [init for init in model.graph.initializer if init.name == CHANGED_WEIGHT]
    values = numpy_helper.to_array(weight).copy()
    values[7, 0, 2, 2] += 1.0  # the centre tap of channel 7's 5x5 kernel
    weight.CopyFrom(numpy_helper.from_array(values.astype(np.float32), CHANGED_WEIGHT))
    monkeypatch.chdir(tmp_path)  # short, stable labels in the golden file
    onnx.save(model, "changed.onnx")
    onnx.save(onnx.load(str(authored_file)), "authored.onnx")

    structure = cli("diff", "authored.onnx", "changed.onnx", "--structure-only", "--format", "json")
    assert structure.code == 1, structure.err
    data = structure.json()
    _golden_json(data, "mobilenet_v3_small_changed_weight")
    [changed] = data["initializers"]
    assert (changed["name"], changed["kind"], changed["mismatched"]) == (
        CHANGED_WEIGHT,
        "values",
        1,
    )
    assert changed["max_abs_diff"] == pytest.approx(1.0, abs=1e-6)
    [node] = data["nodes"]
    assert (node["kind"], node["op"], node["module"]) == ("changed", "Conv", "features.4.block.1.0")

    # One tap of one kernel hardly moves the untrained network's outputs: within the default
    # tolerances they match, and only the weight comparison above tells the files apart.
    # Asked for exact outputs, every run differs (the files differ in that weight alone).
    default = cli("diff", "authored.onnx", "changed.onnx", "--format", "json").json()
    assert all(not run["outputs"][0]["mismatched"] for run in default["outputs"])
    exact = cli("diff", "authored.onnx", "changed.onnx", "--atol", "0", "--rtol", "0")
    assert exact.code == 1
    assert "outputs differ in 6 of 6 run(s)" in exact.out.splitlines()[0]


def test_text_report_starts_with_the_summary(cli, checkpoint):
    args = ["diff", MODEL, MODEL, "--checkpoint", checkpoint, "--graph", "authored"]
    result = cli(*args, "--graph", "optimized", "--structure-only")
    first, *rest = result.out.splitlines()
    assert first.startswith(
        "DIFFERENT | mobilenet_v3_small (authored) vs mobilenet_v3_small (optimized): "
        "nodes: 34 removed"
    )
    assert "BatchNormalization   34    0     -34" in result.out
