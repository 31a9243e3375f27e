"""Excerpts (--module) and collapsed views (--depth) as valid ONNX models, without a browser; and
what render and view are given to draw (the model's own name, the fallback for huge graphs)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from _graph_helpers import mlp, model_of, residual_stack, run, scoped_node

from inspector.errors import InspectorError
from inspector.netron.drawable import drawable, model_file_name
from inspector.onnx.collapse import DOMAIN, collapse, collapsed_size, deepest_depth_within
from inspector.onnx.scopes import node_scopes
from inspector.onnx.subgraph import cut_modules, cut_nodes

MODEL = "mobilenet_v3_small"


@pytest.fixture(scope="module")
def mobilenet():
    """The authored MobileNetV3-Small export (BatchNorm with seeded statistics)."""
    from _export_helpers import give_batchnorm_statistics

    from inspector.export import cached_export, make_export_options
    from inspector.loading import load_model

    loaded = load_model(MODEL)
    give_batchnorm_statistics(loaded.module)
    return onnx.load(str(cached_export(loaded, make_export_options(graph="authored"))))


def _dims(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _with_outputs(model, names: list[str]):
    """The model with intermediate values as extra outputs (to check an excerpt against)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    return copy


def test_an_excerpt_is_the_module_with_its_boundary_values(mobilenet):
    excerpt = cut_modules(mobilenet, ["features.4"], label=MODEL)
    onnx.checker.check_model(excerpt, full_check=True)
    [source] = excerpt.graph.input
    [result] = excerpt.graph.output
    assert _dims(source) == ["batch", 24, 28, 28] and _dims(result) == ["batch", 40, 14, 14]
    ops = Counter(node.op_type for node in excerpt.graph.node)
    assert ops == {
        "Conv": 5,
        "BatchNormalization": 3,
        "HardSwish": 2,
        "ReduceMean": 1,
        "Relu": 1,
        "HardSigmoid": 1,
        "Mul": 1,
    }
    assert all("features.4" in node_scopes(node) for node in excerpt.graph.node)
    assert {i.name for i in excerpt.graph.initializer} >= {"features.4.block.1.0.weight"}
    # It computes what the module computes inside the whole model.
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    inside = run(_with_outputs(mobilenet, [source.name, result.name]), {"input": x})
    expected_in, expected_out = inside[-2], inside[-1]
    [got] = run(excerpt, {source.name: expected_in})
    np.testing.assert_allclose(got, expected_out, rtol=1e-5, atol=1e-5)


def test_several_modules_and_slash_paths(mobilenet):
    excerpt = cut_modules(mobilenet, ["features/4", "features.6"])
    onnx.checker.check_model(excerpt, full_check=True)
    assert len(excerpt.graph.input) == 2 and len(excerpt.graph.output) == 2
    scopes = {s for node in excerpt.graph.node for s in node_scopes(node)}
    assert {"features.4", "features.6"} <= scopes and "features.5" not in scopes


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("features.44", "did you mean features.4"),
        ("nothing", "its top-level modules are features, avgpool, classifier"),
    ],
)
def test_an_unknown_module_is_named_with_a_hint(mobilenet, path, hint):
    """From Python the parameter is named (the CLI's --module blocks.7 is tested below)."""
    expected = f"^module='{path}': {MODEL} has no module .*{hint}"
    with pytest.raises(InspectorError, match=expected):
        cut_modules(mobilenet, [path], label=MODEL)


def test_a_graph_without_module_names_cannot_be_cut_or_collapsed():
    plain = mlp()
    for node in plain.graph.node:
        del node.metadata_props[:]
    with pytest.raises(InspectorError, match="records no PyTorch module names"):
        cut_modules(plain, ["layers.0"], label="plain.onnx")
    with pytest.raises(InspectorError, match="records no PyTorch module names"):
        collapse(plain, 1, label="plain.onnx")


def test_cut_nodes_types_its_boundary_by_inference_when_the_file_has_no_shapes():
    model = mlp()
    del model.graph.value_info[:]
    excerpt = cut_nodes(model, [model.graph.node[1]])  # the Relu
    assert [(v.name, _dims(v)) for v in excerpt.graph.input] == [("h0", ["batch", 4])]
    assert [(v.name, _dims(v)) for v in excerpt.graph.output] == [("h1", ["batch", 4])]
    onnx.checker.check_model(excerpt, full_check=True)


def test_collapsed_view_is_one_function_per_module_and_computes_the_same(mobilenet):
    collapsed = collapse(mobilenet, 2, label=MODEL)
    onnx.checker.check_model(collapsed, full_check=True)
    calls = [node for node in collapsed.graph.node if node.domain == DOMAIN]
    assert [node.name for node in calls] == [f"features.{i}" for i in range(13)]
    assert len(collapsed.graph.node) == collapsed_size(mobilenet.graph, 2) == 18
    block = next(node for node in calls if node.name == "features.4")
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in block.attribute}
    assert attributes["type"] == b"InvertedResidual"
    assert attributes["output_shape"] == "batch×40×14×14".encode()
    assert attributes["params"] == 14202  # weights and BatchNorm statistics of the block
    function = next(f for f in collapsed.functions if f.name == "features/4")
    assert Counter(n.op_type for n in function.node)["BatchNormalization"] == 3
    x = np.random.default_rng(1).standard_normal((3, 3, 224, 224)).astype(np.float32)
    np.testing.assert_allclose(
        run(collapsed, {"input": x})[0], run(mobilenet, {"input": x})[0], rtol=1e-5, atol=1e-6
    )


def test_depth_picks_the_level_of_modules(mobilenet):
    sizes = {depth: collapsed_size(mobilenet.graph, depth) for depth in (1, 2, 3)}
    assert sizes == {1: 4, 2: 18, 3: 28}
    assert deepest_depth_within(mobilenet.graph, 20) == 2
    assert deepest_depth_within(mobilenet.graph, 3) is None
    names = [n.name for n in collapse(mobilenet, 1).graph.node if n.domain == DOMAIN]
    assert names == ["features", "classifier"]  # avgpool is one node: it stays itself


def test_a_module_used_twice_is_split_into_its_calls_without_a_cycle():
    """`shared` runs before and after `middle`: one node for both calls would be a cycle."""
    nodes = [
        scoped_node("Relu", ["x"], ["a"], "shared", name="first_call"),
        scoped_node("Neg", ["a"], ["b"], "middle", name="neg"),
        scoped_node("Sigmoid", ["b"], ["c"], "middle", name="sigmoid"),
        scoped_node("Relu", ["c"], ["d"], "shared", name="second_call_relu"),
        scoped_node("Abs", ["d"], ["y"], "shared", name="second_call_abs"),
    ]
    model = model_of(nodes, {})
    collapsed = collapse(model, 1)
    onnx.checker.check_model(collapsed, full_check=True)
    assert [n.op_type for n in collapsed.graph.node] == ["Relu", "middle", "shared"]
    x = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(run(collapsed, {"x": x})[0], run(model, {"x": x})[0])


def test_residual_blocks_collapse_with_their_skip_connection():
    model = residual_stack(5)
    collapsed = collapse(model, 1)
    assert [n.op_type for n in collapsed.graph.node] == ["blocks"]
    two = collapse(model, 2)
    assert [n.name for n in two.graph.node] == [f"blocks.{i}" for i in range(5)]
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(run(two, {"x": x})[0], run(model, {"x": x})[0])


# --- what render and view draw -----------------------------------------------------------------


def test_file_names_netron_shows():
    assert model_file_name("mobilenet_v3_small") == "mobilenet_v3_small.onnx"
    assert model_file_name("my_models.py:Net") == "Net.onnx"
    assert model_file_name("pkg.mod:make_net") == "make_net.onnx"
    assert model_file_name("dir/exercise_model.onnx") == "exercise_model.onnx"


def test_drawable_serves_the_file_itself_under_its_name(tmp_path):
    path = tmp_path / "3f9a0c.onnx"
    onnx.save(mlp(), path)
    with drawable(path, name="mlp.onnx") as drawing:
        assert (drawing.path, drawing.name, drawing.notes) == (path, "mlp.onnx", ())


def test_drawable_writes_excerpts_and_collapsed_views_and_removes_them(tmp_path):
    path = tmp_path / "stack.onnx"
    onnx.save(residual_stack(4), path)
    with drawable(path, name="stack.onnx", modules=["blocks.1"], depth=3) as drawing:
        assert drawing.name == "stack.blocks.1.depth3.onnx"
        derived = onnx.load(str(drawing.path))
        assert derived.graph.name == "stack"
        assert {n.op_type for n in derived.graph.node} == {"Neg", "Relu", "Add"}
        folder = drawing.path.parent
    assert not folder.exists()


def test_a_huge_graph_is_drawn_collapsed_and_says_so(tmp_path):
    path = tmp_path / "stack.onnx"
    onnx.save(residual_stack(20), path)  # 60 nodes
    with drawable(path, name="stack.onnx", limit=30) as drawing:
        [note] = drawing.notes
        assert "stack.onnx has 60 nodes, past 30" in note
        assert "collapsed at --depth 2, 20 nodes (--full draws every node)" in note
        assert len(onnx.load(str(drawing.path)).graph.node) == 20
    with drawable(path, name="stack.onnx", limit=30, full=True) as drawing:
        assert drawing.path == path and not drawing.notes
    plain = residual_stack(20)
    for node in plain.graph.node:
        del node.metadata_props[:]
    onnx.save(plain, path)
    with drawable(path, name="stack.onnx", limit=30) as drawing:
        assert drawing.path == path and "no module names" in drawing.notes[0]


def test_an_unknown_module_is_a_user_error_before_anything_is_served(cli, tmp_path):
    path = tmp_path / "stack.onnx"
    onnx.save(residual_stack(3), path)
    result = cli("view", path, "--module", "blocks.7", "--no-browser")
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == (
        "inspector: error: --module blocks.7: stack.onnx has no module 'blocks.7'; "
        "did you mean blocks.2, blocks.1, blocks.0?"
    )


def test_view_serves_a_cached_export_under_the_models_name(cli, monkeypatch):
    """The export cache names files by hash; Netron shows the file name, so serve the model's."""
    import urllib.request

    import inspector.netron.serve as serve_module

    served = []

    def fake_browser(url):
        with urllib.request.urlopen(url, timeout=20) as page:
            served.append(page.read().decode())
        return True

    def ctrl_c():
        raise KeyboardInterrupt

    monkeypatch.setattr(serve_module.webbrowser, "open", fake_browser)
    monkeypatch.setattr(serve_module, "wait_for_ctrl_c", ctrl_c)
    result = cli("view", "conv_bn_relu")
    assert result.code == 0, result.err
    assert "Netron is serving conv_bn_relu.onnx at http://127.0.0.1:" in result.out
    [page] = served
    assert 'content="/data/conv_bn_relu.onnx"' in page
