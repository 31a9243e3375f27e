"""inspector diff: the engine on hand-made graphs (no torch), the command on files and models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from _graph_helpers import mlp, mlp_weights, model_of, scoped_node

from inspector.errors import InspectorError
from inspector.onnx.diff import diff_models
from inspector.onnx.diff.graph_index import GraphIndex, unique_node_names
from inspector.onnx.diff.matching import match_nodes


def test_a_model_equals_itself_and_runs_on_seeded_inputs():
    model = mlp()
    result = diff_models(model, model)
    assert result and result.equal and result.structure_equal
    assert str(result).startswith("EQUAL | net vs net: same interface, opsets, nodes and weights")
    assert len(result.runs) == 6  # 3 seeds at batch 1 and 3
    assert {run.batch_size for run in result.runs} == {1, 3}
    assert all(diff.max_abs_diff == 0 for run in result.runs for diff in run.outputs)


def test_a_changed_weight_is_named_with_its_difference():
    weights = mlp_weights()
    changed = dict(weights)
    changed["layers.2.weight"] = weights["layers.2.weight"].copy()
    changed["layers.2.weight"][1, 2] += 0.75
    result = diff_models(mlp(weights), mlp(changed), labels=("before", "after"))
    assert not result
    [weight] = result.initializers
    assert (weight.name, weight.kind, weight.mismatched) == ("layers.2.weight", "values", 1)
    assert weight.max_abs_diff == pytest.approx(0.75)
    [node] = result.nodes
    assert (node.kind, node.op, node.module) == ("changed", "Gemm", "layers.2")
    assert node.reasons == ("B: layers.2.weight has other values (max abs diff 0.75)",)
    assert result.node_state("layers.2/Gemm") == "changed"
    assert result.node_state("layers.0/Gemm") == "unchanged"
    assert not result.outputs_equal  # a weight that large changes the outputs
    assert str(result).startswith("DIFFERENT | before vs after: nodes: 1 changed; initializers: 1")


def test_a_change_within_tolerance_is_no_change():
    weights = mlp_weights()
    nudged = {name: array * np.float32(1 + 1e-6) for name, array in weights.items()}
    assert diff_models(mlp(weights), mlp(nudged))
    assert not diff_models(mlp(weights), mlp(nudged), atol=0, rtol=0, run=False)


def test_a_removed_node_marks_its_neighbours_and_rewires_nothing():
    result = diff_models(mlp(relu=True), mlp(relu=False), run=False)
    assert [(n.kind, n.op, n.module) for n in result.nodes] == [("removed", "Relu", "layers.1")]
    # Both Gemms sat next to the lost Relu; the second now reads the first directly, as it
    # read it through the Relu before: that is not a change of its own.
    assert result.node_state("layers.0/Gemm") == "removed-neighbour"
    assert result.node_state("layers.2/Gemm") == "removed-neighbour"
    assert [(c.op, c.a, c.b, c.delta) for c in result.ops] == [
        ("Gemm", 2, 2, 0),
        ("Relu", 1, 0, -1),
    ]
    assert result.modules() == [
        {"module": "layers.1", "added": [], "removed": ["Relu"], "changed": []}
    ]


def test_an_added_node_is_added():
    result = diff_models(mlp(), mlp(extra_neg=True), run=False)
    assert [(n.kind, n.op, n.module) for n in result.nodes] == [("added", "Neg", "head")]
    assert result.node_state("head/Neg") == "added"


def test_rewired_inputs_are_a_change():
    weights = mlp_weights()
    straight = [
        scoped_node("Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["h0"], "layers.0"),
        scoped_node("Relu", ["h0"], ["h1"], "layers.1"),
        scoped_node("Add", ["h1", "h0"], ["y"], "head"),
    ]
    crossed = [*straight[:2], scoped_node("Add", ["h1", "x"], ["y"], "head")]
    result = diff_models(model_of(straight, weights), model_of(crossed, weights), run=False)
    [node] = result.nodes
    assert node.kind == "changed" and node.op == "Add"
    assert node.reasons == ("B: comes from input x instead of node layers.0/Gemm",)


def test_attributes_compare_with_their_defaults():
    weights = mlp_weights()
    plain = scoped_node("Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["y"], "layers.0")
    explicit = scoped_node(
        "Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["y"], "layers.0", alpha=1.0
    )
    other = scoped_node(
        "Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["y"], "layers.0", transB=1
    )
    assert diff_models(model_of([plain], weights), model_of([explicit], weights), run=False)
    result = diff_models(model_of([plain], weights), model_of([other], weights))
    assert result.nodes[0].reasons == ("attribute transB: 0 -> 1",)
    assert not result.outputs_equal


def _leaky_chain(alphas: list[float], prefix: str) -> onnx.ModelProto:
    values = ["x", *(f"{prefix}{i}" for i in range(len(alphas) - 1)), "y"]
    nodes = [
        scoped_node("LeakyRelu", [values[i]], [values[i + 1]], "act", f"{prefix}n{i}", alpha=alpha)
        for i, alpha in enumerate(alphas)
    ]
    return model_of(nodes, {})


def test_pairs_survive_a_removed_node_in_a_run_of_same_ops():
    """Four LeakyRelus of one module, the second removed and every node renamed: one removal,
    not three changes (pairs are aligned on their attributes, not zipped in order)."""
    a = _leaky_chain([0.1, 0.2, 0.3, 0.4], "a")
    b = _leaky_chain([0.1, 0.3, 0.4], "b")
    match = match_nodes(GraphIndex(a.graph), GraphIndex(b.graph))
    assert match.pairs == {0: 0, 2: 1, 3: 2} and match.removed == [1] and not match.added
    result = diff_models(a, b)
    assert [(n.kind, n.a) for n in result.nodes] == [("removed", "an1")]
    assert not result.outputs_equal  # LeakyRelu(0.2) mattered for negative inputs


def test_different_inputs_are_reported_and_not_run():
    weights = mlp_weights(features=4)
    wide = {name: np.ones((8, 8)[: array.ndim], np.float32) for name, array in weights.items()}
    node = scoped_node("Gemm", ["x", "layers.0.weight", "layers.0.bias"], ["y"], "layers.0")
    a = model_of([node], {k: v for k, v in weights.items() if k.startswith("layers.0")})
    b = model_of([node], {k: v for k, v in wide.items() if k.startswith("layers.0")}, features=8)
    result = diff_models(a, b)
    assert result.runs is None
    assert result.runs_skipped == "input x is float32[batch,4] in A but float32[batch,8] in B"
    assert [(c.name, c.kind, c.a, c.b) for c in result.interface] == [
        ("x", "input", "float32[batch,4]", "float32[batch,8]"),
        ("y", "output", "float32[batch,4]", "float32[batch,8]"),
    ]
    assert {c.kind for c in result.initializers} == {"shape"}


def test_json_and_markdown_say_the_same():
    result = diff_models(mlp(), mlp(relu=False), labels=("a.onnx", "b.onnx"))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["equal"] is False and data["summary"] == result.summary()
    assert data["modules"] == [
        {"module": "layers.1", "added": [], "removed": ["Relu"], "changed": []}
    ]
    assert data["node_colours"] == {
        "layers.0/Gemm": "removed-neighbour",
        "layers.2/Gemm": "removed-neighbour",
    }
    assert len(data["outputs"]) == 6
    assert any(run["outputs"][0]["mismatched"] for run in data["outputs"])  # without the ReLU
    markdown = result.to_markdown()
    assert markdown.startswith("## `a.onnx` vs `b.onnx`: different")
    assert "| layers.1 | Relu |  |  |" in markdown


def test_unique_node_names_fill_in_empty_and_repeated_names():
    nodes = [
        onnx.helper.make_node("Relu", ["x"], ["a"], name=""),
        onnx.helper.make_node("Relu", ["a"], ["b"], name="same"),
        onnx.helper.make_node("Relu", ["b"], ["y"], name="same"),
    ]
    assert unique_node_names(nodes) == ["Relu_0", "Relu_1", "Relu_2"]


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    weights = mlp_weights()
    changed = {**weights, "layers.0.bias": weights["layers.0.bias"] + np.float32(0.5)}
    paths = {}
    for name, model in {"a": mlp(weights), "same": mlp(weights), "b": mlp(changed)}.items():
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(model, paths[name])
    return paths


def test_cli_exits_0_when_equal_and_1_when_different(cli, files):
    same = cli("diff", files["a"], files["same"])
    assert same.code == 0, same.err
    assert same.out.startswith("EQUAL | ")
    different = cli("diff", files["a"], files["b"], "--format", "json")
    assert different.code == 1
    data = different.json()
    assert [(c["name"], c["kind"]) for c in data["initializers"]] == [("layers.0.bias", "values")]
    assert data["outputs"] is not None


def test_cli_structure_only_does_not_run(cli, files):
    result = cli("diff", files["a"], files["b"], "--structure-only", "--format", "markdown")
    assert result.code == 1
    assert "outputs on seeded inputs" not in result.out.lower()
    assert "| layers.0.bias | values |" in result.out


def test_cli_tolerances_decide(cli, files):
    assert cli("diff", files["a"], files["b"], "--atol", "1", "--structure-only").code == 0
    assert cli("diff", files["a"], files["b"], "--atol", "0.1", "--structure-only").code == 1


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda f, t: [t / "missing.onnx", f["a"]], "no such file"),
        (lambda f, t: [f["a"], t / "empty.onnx"], "is empty"),
        (lambda f, t: [f["a"], t / "garbage.onnx"], "garbage.onnx"),
        (lambda f, t: [f["a"], t / "folder.onnx"], "is a folder"),
        (lambda f, t: [t / "fifo.onnx", f["a"]], "is not a regular file"),
        (lambda f, t: [f["a"], "no_such_model"], "unknown model 'no_such_model'"),
        (lambda f, t: [f["a"], f["b"], "--graph", "optimized"], "--graph applies to a MODEL"),
        (lambda f, t: [f["a"], f["b"], "--checkpoint", "x.pt"], "--checkpoint applies to a MODEL"),
        (
            lambda f, t: ["relu", "relu", *["--graph", "authored"] * 3],
            "--graph given 3 times",
        ),
        (lambda f, t: [f["a"], f["b"], "-o", t / "diff.jpg"], "must end in .png or .svg"),
        (lambda f, t: [f["a"], f["b"], "--atol", "-1"], "must be a number >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, files, tmp_path, make_args, message):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07not a protobuf model \xff\xff")
    (tmp_path / "folder.onnx").mkdir()
    os.mkfifo(tmp_path / "fifo.onnx")  # reading it would block forever
    before = sorted(tmp_path.iterdir())
    result = cli("diff", *make_args(files, tmp_path))
    assert result.code == 2, result.err
    assert result.err.startswith("inspector: error: ") and message in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert result.out == ""
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_diff_of_onnx_files_never_loads_torch(files):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inspector", "diff", files["a"], files["b"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "onnxruntime" in imported


def test_a_proto_too_large_to_run_is_refused(monkeypatch):
    import inspector.onnx.diff as diff_module

    monkeypatch.setattr(diff_module, "_MAX_PROTO_BYTES", 10)
    with pytest.raises(InspectorError, match="larger than 2 GB"):
        diff_models(mlp(), mlp())


def test_weights_with_the_same_values_under_other_names_are_not_a_change():
    weights = mlp_weights()
    renamed = {name.replace("layers.0", "first"): array for name, array in weights.items()}
    nodes = [
        scoped_node("Gemm", ["x", "first.weight", "first.bias"], ["h0"], "layers.0"),
        scoped_node("Relu", ["h0"], ["h1"], "layers.1"),
        scoped_node("Gemm", ["h1", "layers.2.weight", "layers.2.bias"], ["y"], "layers.2"),
    ]
    result = diff_models(mlp(weights), model_of(nodes, renamed), run=False)
    assert not result.nodes  # the Gemm reads the same values
    assert {(c.name, c.kind) for c in result.initializers} == {
        ("layers.0.weight", "removed"),
        ("layers.0.bias", "removed"),
        ("first.weight", "added"),
        ("first.bias", "added"),
    }


def test_help_loads_no_backend():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inspector", "diff", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--structure-only" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "onnx", "onnxruntime", "netron", "playwright"}
